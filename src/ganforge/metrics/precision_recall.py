"""Improved precision and recall (Kynkäänniemi et al. 2019), k = 3.

Each set's manifold is the union of balls around its samples, each ball reaching that sample's k-th nearest
neighbour in the same set. precision = share of fake samples inside the real manifold (quality);
recall = share of real samples inside the fake manifold (diversity). "Inside" includes the boundary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ganforge.metrics.base import METRICS
from ganforge.metrics.neighbours import as_features, centred, knn_radii, squared_distance_blocks

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def manifold_coverage(queries: Tensor, points: Tensor, radii_sq: Tensor) -> float:
    """Share of queries within radius of at least one point (radii_sq: (N,) squared radii of the points)."""
    inside = [(d2 <= radii_sq[None, :]).any(1) for d2 in squared_distance_blocks(queries, points)]
    return torch.cat(inside).double().mean().item()


def precision_recall(real, fake, *, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of (M, D) fake features against (N, D) real features."""
    real, fake = centred(as_features(real), as_features(fake))
    precision = manifold_coverage(fake, real, knn_radii(real, k))
    recall = manifold_coverage(real, fake, knn_radii(fake, k))
    return precision, recall


@METRICS.register("precision")
def _precision(ctx: EvalContext) -> dict[str, float]:
    return {"precision": ctx.precision_recall()[0]}


@METRICS.register("recall")
def _recall(ctx: EvalContext) -> dict[str, float]:
    return {"recall": ctx.precision_recall()[1]}
