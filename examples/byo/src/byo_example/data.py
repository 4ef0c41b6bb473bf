"""A generated, offline tabular data set: 4,000 rows, 20 features, 4 classes.

``sklearn.datasets.make_classification`` with a fixed ``random_state``, so every worker of a sweep
generates the same rows; a fixed stratified 60/40 split; features standardised with the training
rows' mean and std. Returned as a pair of ``torch.utils.data.Dataset`` (what most PyTorch code
has), which Basin reads once into tensors; the number of classes is the largest label + 1.
"""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


def tabular() -> tuple[TensorDataset, TensorDataset]:
    """The data-set function Basin calls (it may name ``data_dir`` and ``download``; this one needs neither)."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(n_samples=4000, n_features=20, n_informative=8, n_redundant=4, n_classes=4,
                               n_clusters_per_class=2, class_sep=1.0, flip_y=0.02, random_state=0)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.4, random_state=0, stratify=y)
    mean, std = x_tr.mean(0), x_tr.std(0)
    as_set = lambda a, b: TensorDataset(torch.tensor((a - mean) / std, dtype=torch.float32), torch.tensor(b))  # noqa: E731
    return as_set(x_tr, y_tr), as_set(x_te, y_te)
