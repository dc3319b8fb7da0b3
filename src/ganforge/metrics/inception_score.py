"""Inception Score (Salimans et al. 2016): exp E_x KL(p(y|x) ‖ p(y)), as mean and std over splits.

Computed from class probabilities: Inception logits where the network has them, else the domain classifier's
(a "domain IS", comparable only between models scored with the same classifier).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import xlogy

from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def inception_score(probs, *, splits: int = 10) -> tuple[float, float]:
    """IS mean and std over `splits` consecutive chunks of (N, K) class probabilities (rows sum to 1)."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise ValueError(f"IS needs (N, K) probabilities with N >= splits={splits}, got shape {p.shape}")
    scores = []
    for i in range(splits):
        part = p[i * len(p) // splits : (i + 1) * len(p) // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(axis=1).mean()  # 0 log 0 = 0
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


@METRICS.register("is")
def _is(ctx: EvalContext) -> dict[str, float]:
    mean, std = inception_score(ctx.fake_probs())
    return {"is": mean, "is_std": std}
