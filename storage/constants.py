"""Storage's numeric defaults, in one light module (it imports nothing): what the ``basin`` CLI shows in
its help and passes on, without importing numpy, pandas or the evidence code to read three numbers.

``DEFAULT_BOOT``     bootstrap draws behind every interval (``storage.evidence``; ``basin best --boot``)
``DEFAULT_TOL``      the coupling edge's absolute error tolerance above each α row's best: 2 points
                     (``storage.evidence.landscape``, ``storage.basin_shape``; ``basin best --coupling --tol``)
``FIT_TRAIN_ERROR``  a budget's best runs "fit their training data" when their final train error is at most
                     this; Appendix B.1's claim is about such runs (``storage.answers``; ``basin best --by budget``)
"""

DEFAULT_BOOT = 1000
DEFAULT_TOL = 0.02
FIT_TRAIN_ERROR = 0.02
