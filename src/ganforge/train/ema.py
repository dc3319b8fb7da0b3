"""Exponential moving average of G's weights: one lerp per step, half-life given in images (StyleGAN)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Holds a frozen copy of G whose parameters trail G's; used for sampling and evaluation."""

    def __init__(self, generator: nn.Module, *, halflife_kimg: float, rampup: float = 0.0) -> None:
        super().__init__()
        self.halflife_images = halflife_kimg * 1000.0
        self.rampup = rampup  # > 0: half-life at most rampup x images seen (StyleGAN2-ADA's ema_rampup)
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, batch_size: int, images_seen: int = 0) -> None:
        """Move the average towards G after a step of batch_size images; images_seen counts them, this batch too."""
        halflife = self.halflife_images
        if self.rampup > 0:  # a young run: the average spans a fixed fraction of its short history
            halflife = min(halflife, images_seen * self.rampup)
        # beta = 0.5 ** (batch / half-life): after `half-life` images, old weights count for one half.
        beta = 0.5 ** (batch_size / max(halflife, 1e-8))
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in generator.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.model.buffers(), generator.buffers()):
            b_ema.copy_(b)  # batch-norm statistics are copied, not averaged
