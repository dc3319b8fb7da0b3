"""Cluster labels: class labels a conditional GAN can train on when the data has none to use.

A self-conditioned GAN (Liu et al., "Diverse Image Generation via Self-Conditioned GANs", CVPR 2020) gives G
and D a cluster index of the real images instead of a human label, so G learns a mixture of discrete parts
instead of stretching one connected latent space over separate modes (the in-between images that keep an
unconditional model's precision low). The clusters here are k-means on the images' first principal components:
no labels and no pretrained network, so a model trained on them stays in the unconditional setting.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import ConfigError, DataError

PCA_DIMS = 50  # principal components k-means runs on: pixels' distances are dominated by noise beyond these
PCA_FIT_VALUES = 64_000_000  # a set with more values (MNIST has 47M) fits its PCA on a subset of this many values


def cluster_labels(data: Tensor, clusters: int, *, seed: int = 0) -> Tensor:
    """int64 (N,) cluster indices in [0, clusters) of uint8 images (N, C, H, W) or float points (N, D).

    k-means (scikit-learn, k-means++ start, the best of 3 starts) on at most PCA_DIMS principal components of the
    flattened examples scaled to [0, 1] (for sets over PCA_FIT_VALUES values, fitted on a seeded subset).
    Clusters are numbered by size, largest first, so the numbering does not depend on the solver's order. The
    same (data, clusters, seed) always gives the same labels.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 2:
        raise ConfigError(f"data.clusters must be an integer >= 2, got {clusters!r}")
    if len(data) < clusters:
        raise DataError(f"cannot make {clusters} clusters of {len(data)} examples")
    flat = data.flatten(1)
    divisor = 255.0 if data.dtype == torch.uint8 else 1.0
    dims = min(PCA_DIMS, flat.shape[1], len(flat))
    if dims == flat.shape[1]:
        features = flat.double().numpy() / divisor
    elif flat.numel() <= PCA_FIT_VALUES:
        features = PCA(dims, svd_solver="randomized", random_state=seed).fit_transform(flat.double().numpy() / divisor)
    else:  # a large set: fit on a seeded subset, project in chunks, so memory stays bounded
        fit_rows = torch.randperm(len(flat), generator=torch.Generator().manual_seed(seed))[
            : max(dims, PCA_FIT_VALUES // flat.shape[1])]
        pca = PCA(dims, svd_solver="randomized", random_state=seed).fit(flat[fit_rows].float().numpy() / divisor)
        features = np.concatenate([pca.transform(chunk.float().numpy() / divisor) for chunk in flat.split(4096)])
    found = KMeans(clusters, n_init=3, random_state=seed).fit_predict(features)
    found = torch.from_numpy(found).long()
    sizes = torch.bincount(found, minlength=clusters)
    if (sizes == 0).any():
        raise DataError(f"k-means left {int((sizes == 0).sum())} of {clusters} clusters empty: the data has fewer "
                        f"distinct examples than data.clusters; use fewer clusters")
    rank = torch.empty(clusters, dtype=torch.long)
    rank[torch.argsort(sizes, descending=True, stable=True)] = torch.arange(clusters)
    return rank[found]
