"""The sweep package: sweep specs, grid expansion into packs, the Ray Tune driver, resume, claims of
points in flight, ``basin reproduce`` and the ``basin`` command line.

"study" here is the user's word for a sweep study (the folder name the project was asked to have);
it is not an Optuna study — those live in the database, one per (sweep, optimizer, schedule), and
are written and read by the ``storage`` package.
"""
