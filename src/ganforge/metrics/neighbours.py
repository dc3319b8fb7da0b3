"""k-nearest-neighbour balls in feature space: the shared machinery of precision/recall and density/coverage.

Distances are squared Euclidean in float32, computed in row blocks with one matrix product each (features are
centred first, which keeps the ‖a‖² + ‖b‖² − 2 a·b cancellation small), so memory stays at block × N.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

BLOCK = 1024  # query rows per distance block: BLOCK x N floats in memory at a time


def as_features(x) -> Tensor:
    t = torch.as_tensor(x).to(torch.float32)
    if t.ndim != 2:
        raise ValueError(f"expected (N, D) features, got shape {tuple(t.shape)}")
    return t


def squared_distance_blocks(queries: Tensor, points: Tensor, block: int = BLOCK) -> Iterator[Tensor]:
    """Yield (b, N) squared distances from consecutive blocks of queries (Q, D) to points (N, D)."""
    points_sq = (points * points).sum(1)
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        d2 = (q * q).sum(1, keepdim=True) + points_sq[None, :] - 2.0 * (q @ points.T)
        yield d2.clamp_min_(0.0)


def knn_radii(points: Tensor, k: int) -> Tensor:
    """(N,) squared distance from each point to its k-th nearest *other* point of the same set."""
    if not 1 <= k < len(points):
        raise ValueError(f"k-NN radii need 1 <= k < number of points, got k={k} for {len(points)} points")
    # Each row includes the point itself at distance 0, so the k-th neighbour is the (k+1)-th smallest.
    return torch.cat([d2.kthvalue(k + 1, dim=1).values for d2 in squared_distance_blocks(points, points)])


def centred(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Both sets shifted by a's mean: distances are unchanged, rounding error is smaller."""
    mean = a.mean(0, keepdim=True)
    return a - mean, b - mean
