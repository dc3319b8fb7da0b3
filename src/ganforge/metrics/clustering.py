"""Clustering accuracy: agreement of unsupervised cluster ids with true classes after the best one-to-one
matching (Hungarian algorithm), as InfoGAN's categorical code and ClusterGAN are scored."""

from __future__ import annotations

import numpy as np
import torch


def cluster_accuracy(clusters, labels) -> float:
    """Share of samples whose cluster (N,) maps to their label (N,) under the best one-to-one cluster -> class map."""
    from scipy.optimize import linear_sum_assignment

    c, y = np.asarray(torch.as_tensor(clusters).long()), np.asarray(torch.as_tensor(labels).long())
    if c.shape != y.shape or c.ndim != 1 or len(c) == 0:
        raise ValueError(f"cluster accuracy needs two (N,) vectors, got {c.shape} and {y.shape}")
    size = int(max(c.max(), y.max())) + 1
    counts = np.zeros((size, size), dtype=np.int64)  # counts[cluster, class]
    np.add.at(counts, (c, y), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(c))
