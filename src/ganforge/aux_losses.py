"""Auxiliary-head losses as tiny pure functions: ACGAN's class loss, InfoGAN's mutual-information terms.

Each returns a mean-over-the-batch scalar. InfoGAN's terms are the negative variational lower bound on
I(c; G(z, c)) up to the code's entropy, which is a constant (Chen et al. 2016, eq. 4): for a categorical
code the cross-entropy of Q's logits, for a continuous one the negative log-likelihood under Q's factored
Gaussian (the paper's choice), or a squared error (a Gaussian with a fixed unit std, up to a factor and a
constant).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

__all__ = ["acgan_d_class_loss", "class_loss", "gaussian_code_nll", "mse_code_loss"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def class_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of class logits (B, K) against classes (B,): ACGAN's L_C, InfoGAN's categorical term."""
    return F.cross_entropy(logits, labels.long())


def acgan_d_class_loss(real_logits: Tensor, real_labels: Tensor, fake_logits: Tensor, fake_labels: Tensor, *,
                       real_weight: float = 1.0, fake_weight: float = 1.0) -> Tensor:
    """D's ACGAN class loss: classify reals as their class and fakes as the class they were generated for."""
    return real_weight * class_loss(real_logits, real_labels) + fake_weight * class_loss(fake_logits, fake_labels)


def gaussian_code_nll(mean: Tensor, log_std: Tensor, value: Tensor) -> Tensor:
    """-log N(value; mean, exp(log_std)^2), summed over the codes (B, M), averaged over the batch."""
    nll = log_std + 0.5 * ((value - mean) * (-log_std).exp()).square() + _HALF_LOG_2PI
    return nll.sum(1).mean()


def mse_code_loss(mean: Tensor, value: Tensor) -> Tensor:
    """Squared error of Q's estimate, summed over the codes (B, M), averaged over the batch."""
    return (mean - value).square().sum(1).mean()
