"""Kernel distance (KID; Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel.

k(x, y) = (x·y / d + 1)³, averaged over random subsets of both sets. Subsets are drawn as torch-fidelity
draws them (numpy RandomState(seed).choice without replacement, set 1 then set 2, per subset), so with the
same seed both give the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def polynomial_mmd2(x, y, *, degree: int = 3, coef: float = 1.0) -> float:
    """Unbiased MMD² between (m, d) samples x and y, kernel (x·y / d + coef) ** degree, in float64.

    Matrix products go through torch (its thread settings), not numpy's BLAS, whose spinning threads crawl on
    a busy machine.
    """
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    m, n, d = len(x), len(y), x.shape[1]

    def kernel_sums(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
        base = a @ b.T / d + coef
        k = base.clone()
        for _ in range(degree - 1):  # repeated products: several times faster than ** on big matrices
            k *= base
        return k.sum().item(), k.diagonal().sum().item()

    sum_xx, diag_xx = kernel_sums(x, x)
    sum_yy, diag_yy = kernel_sums(y, y)
    sum_xy, _ = kernel_sums(x, y)
    return (sum_xx - diag_xx) / (m * (m - 1)) + (sum_yy - diag_yy) / (n * (n - 1)) - 2.0 * sum_xy / (m * n)


def kernel_distance(
    features1,
    features2,
    *,
    num_subsets: int = 100,  # random subset pairs averaged
    subset_size: int = 1000,  # samples per subset, clipped to the smaller set
    seed: int = 0,  # RandomState seed for the subsets
) -> tuple[float, float]:
    """KID mean and std (over subsets) between (N1, D) and (N2, D) features, in float64."""
    x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"KID needs (N, D) features of one width, got {x.shape} and {y.shape}")
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {len(x)} and {len(y)}")
    rng = np.random.RandomState(seed)
    mmds = np.empty(num_subsets)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for i in range(num_subsets):
        xs = xt[torch.from_numpy(rng.choice(len(x), size, replace=False))]
        ys = yt[torch.from_numpy(rng.choice(len(y), size, replace=False))]
        mmds[i] = polynomial_mmd2(xs, ys)
    return float(mmds.mean()), float(mmds.std())


@METRICS.register("kid")
def _kid(ctx: EvalContext) -> dict[str, float]:
    mean, std = kernel_distance(ctx.fake_features(), ctx.real_features(), seed=ctx.seed)
    return {"kid": mean, "kid_std": std}
