"""GAN-test accuracy (Shmelkov et al. 2018): a classifier trained on real data labels the generated samples of
a conditional GAN; the score is how often it agrees with the class that was asked for (quality per class)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def label_accuracy(predicted, requested) -> float:
    """Share of predicted labels (N,) equal to the requested ones (N,)."""
    p, r = torch.as_tensor(predicted).long(), torch.as_tensor(requested).long()
    if p.shape != r.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(
            f"label accuracy needs two (N,) label vectors, got {tuple(p.shape)} and {tuple(r.shape)}"
        )
    return (p == r).double().mean().item()


@METRICS.register("gan_test")
def _gan_test(ctx: EvalContext) -> dict[str, float]:
    ctx.require_images("GAN-test")
    requested = ctx.fake_labels()  # first: a missing-labels error should not wait for a classifier
    return {"gan_test_acc": label_accuracy(ctx.fake_predictions(), requested)}
