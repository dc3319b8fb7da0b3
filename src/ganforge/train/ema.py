"""Exponential moving average of G's weights: one lerp per step, half-life given in images (StyleGAN)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds a frozen copy of G whose parameters trail G's; used for sampling and evaluation."""

    def __init__(self, generator: nn.Module, *, halflife_kimg: float) -> None:
        super().__init__()
        self.halflife_images = halflife_kimg * 1000.0
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, batch_size: int) -> None:
        # beta = 0.5 ** (batch / half-life): after `half-life` images, old weights count for one half.
        beta = 0.5 ** (batch_size / max(self.halflife_images, 1e-8))
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in generator.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.model.buffers(), generator.buffers()):
            b_ema.copy_(b)  # batch-norm statistics are copied, not averaged
