"""Mode metrics for the 2D Gaussian-mixture benchmarks (VEEGAN / PacGAN protocol).

Each sample belongs to its nearest mode centre. A sample is high quality when it lies within `threshold`
(3) standard deviations of that centre; a mode is captured when at least one high-quality sample belongs to
it. The reverse KL is KL(generated ‖ true) between the histogram of all samples over their nearest modes and
the true, uniform, mode distribution (0 for a perfect spread, log K when every sample sits at one mode).
The mode spread guards the high-quality share against samples packed onto the centres (which score 100%): the RMS
distance of the high-quality samples to their centre over that of the modes' own Gaussians, sqrt(D) std. The data
score 0.97 (a Gaussian cut at 3 std); 0 means every sample sits on a centre.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from scipy.special import xlogy
from torch import Tensor

from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def mode_metrics(points, centers, std: float, *, threshold: float = 3.0) -> dict[str, float]:
    """{modes: captured modes (count), high_quality: share of high-quality samples, reverse_kl, mode_spread}.

    points (N, 2) samples; centers (K, 2) mode centres (`ganforge.data.toy2d.ring_centers()` ...); std the
    modes' standard deviation (RING_STD / GRID_STD).
    """
    x = torch.as_tensor(points, dtype=torch.float64)
    c = torch.as_tensor(centers, dtype=torch.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(x) == 0:
        raise ValueError(
            f"mode metrics need points (N, D) and centers (K, D), got {tuple(x.shape)} and {tuple(c.shape)}"
        )
    dist = torch.cdist(x, c)  # (N, K)
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= threshold * std
    num_modes = len(c)
    hist = torch.bincount(nearest, minlength=num_modes).double() / len(x)
    reverse_kl = xlogy(hist.numpy(), hist.numpy() * num_modes).sum()
    spread = nearest_dist[good].pow(2).mean().sqrt().item() / (std * x.shape[1] ** 0.5) if good.any() else 0.0
    return {
        "modes": float(torch.unique(nearest[good]).numel()),
        "high_quality": good.double().mean().item(),
        "reverse_kl": float(reverse_kl),
        "mode_spread": spread,
    }


def known_modes(name: str | None) -> tuple[Tensor, float] | None:
    """(centres, std) of a toy dataset by its registry name, or None for other datasets."""
    from ganforge.data import toy2d

    if name == "ring":
        return toy2d.ring_centers(), toy2d.RING_STD
    if name == "grid":
        return toy2d.grid_centers(), toy2d.GRID_STD
    return None


@METRICS.register("modes")
def _modes(ctx: EvalContext) -> dict[str, float]:
    centers, std = ctx.mode_centers()
    return mode_metrics(ctx.fake.data, centers, std)
