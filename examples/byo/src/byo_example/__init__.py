"""An example package for Basin: a residual MLP (:mod:`byo_example.models`) and a generated tabular
data set (:mod:`byo_example.data`). Nothing here imports Basin except the data set's return type."""
