"""Density and coverage (Naeem et al. 2020), k = 5: precision and recall made robust to outliers.

With r_i the distance from real sample i to its k-th nearest real neighbour:
density  = 1/(kM) Σ_j #{i : ‖y_j − x_i‖ ≤ r_i}   (how many real balls each fake sample falls in; 1 ≈ matched)
coverage = 1/N Σ_i [min_j ‖x_i − y_j‖ ≤ r_i]      (share of real balls holding at least one fake sample)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ganforge.metrics.base import METRICS
from ganforge.metrics.neighbours import as_features, centred, knn_radii, squared_distance_blocks

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def density_coverage(real, fake, *, k: int = 5) -> tuple[float, float]:
    """(density, coverage) of (M, D) fake features against (N, D) real features."""
    real, fake = centred(as_features(real), as_features(fake))
    radii_sq = knn_radii(real, k)
    balls_hit = 0.0
    covered = torch.zeros(len(real), dtype=torch.bool)
    for d2 in squared_distance_blocks(fake, real):  # (b, N): fake rows, real columns
        inside = d2 <= radii_sq[None, :]
        balls_hit += inside.sum().item()
        covered |= inside.any(0)
    density = balls_hit / (k * len(fake))
    coverage = covered.double().mean().item()
    return density, coverage


@METRICS.register("density")
def _density(ctx: EvalContext) -> dict[str, float]:
    return {"density": ctx.density_coverage()[0]}


@METRICS.register("coverage")
def _coverage(ctx: EvalContext) -> dict[str, float]:
    return {"coverage": ctx.density_coverage()[1]}
