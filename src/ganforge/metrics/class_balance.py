"""Class balance of generated images: does G draw each class of the dataset as often as the data has it?

The dataset's domain classifier (MNIST, Fashion-MNIST) labels every generated sample and every real one; the two
class histograms are compared. `class_kl` is KL(generated ‖ real), the Stacked-MNIST metric's divergence with the
real data's own shares in place of the uniform (finite however many classes G drops, since every real class has
images); `class_tv` is their total variation distance, the share of samples that would have to change class,
0 (the data's mix) to 1. A collapsed or mode-dropping G scores high on both while its FID can still look
moderate (seed 001's recipe after 50 epochs: 22% zeros and nines, 2% sixes, total variation 0.27).

Both sides go through the same classifier, so its errors largely cancel; a conditional G that draws its classes
uniformly scores the data's own imbalance (MNIST: class_tv ~0.02), not zero.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.special import xlogy

from ganforge.metrics.base import METRICS

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext


def class_shares(classes, num_classes: int) -> np.ndarray:
    """(num_classes,) share of each class among (N,) class indices."""
    c = torch.as_tensor(classes).long()
    if c.ndim != 1 or len(c) == 0 or c.min() < 0 or c.max() >= num_classes:
        raise ValueError(f"class shares need (N,) class indices in 0..{num_classes - 1}, got shape {tuple(c.shape)}")
    return torch.bincount(c, minlength=num_classes).double().numpy() / len(c)


def class_divergence(fake_shares: np.ndarray, real_shares: np.ndarray) -> tuple[float, float]:
    """(KL(fake ‖ real), total variation) of two class histograms (K,) (see class_shares)."""
    fake, real = np.asarray(fake_shares, dtype=np.float64), np.asarray(real_shares, dtype=np.float64)
    if fake.shape != real.shape or fake.ndim != 1:
        raise ValueError(f"class histograms must be two (K,) arrays, got {fake.shape} and {real.shape}")
    if np.any((fake > 0) & (real == 0)):
        raise ValueError("a class the generated samples have is missing from the real set: KL(fake ‖ real) is infinite")
    kl = xlogy(fake, np.divide(fake, real, out=np.ones_like(fake), where=real > 0)).sum()
    return float(kl), float(0.5 * np.abs(fake - real).sum())


@METRICS.register("classes")
def _classes(ctx: EvalContext) -> dict[str, float]:
    fake = ctx.fake_predictions()  # first: points are refused before any real set is loaded
    real = ctx.real_class_shares()
    kl, tv = class_divergence(class_shares(fake, len(real)), real)
    return {"class_kl": kl, "class_tv": tv}
