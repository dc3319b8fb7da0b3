"""Stacked-MNIST mode count and KL to uniform (PacGAN protocol; Metz et al. 2017, Lin et al. 2018).

Each sample stacks three MNIST digits as its channels: 1,000 modes. Every channel is classified by the MNIST
domain classifier; the digit triple is the mode. The protocol uses 26,000 samples: `modes` is the number of
modes with at least one sample, `stacked_kl` is KL(generated ‖ uniform over the 1,000 modes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.special import xlogy

from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext

NUM_MODES = 1000
PROTOCOL_SAMPLES = 26_000  # samples the PacGAN protocol scores


def stacked_modes(digits) -> tuple[float, float]:
    """(modes captured, KL to uniform) from (N, 3) predicted digits, one per channel."""
    d = torch.as_tensor(digits).long()
    if d.ndim != 2 or d.shape[1] != 3 or len(d) == 0 or d.min() < 0 or d.max() > 9:
        raise ValueError(f"stacked-MNIST needs (N, 3) digits in 0..9, got shape {tuple(d.shape)}")
    mode = d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]
    hist = torch.bincount(mode, minlength=NUM_MODES).double().numpy() / len(d)
    return float(np.count_nonzero(hist)), float(xlogy(hist, hist * NUM_MODES).sum())


@METRICS.register("stacked_mnist")
def _stacked_mnist(ctx: EvalContext) -> dict[str, float]:
    modes, kl = stacked_modes(ctx.stacked_digits())
    return {"stacked_modes": modes, "stacked_kl": kl}
