"""Adversarial losses as tiny pure functions on discriminator logits, chosen by name.

Every function takes ``(real_logits, fake_logits)`` of shape (B,) or (B, 1) and returns a mean-reduced
scalar. The D loss is minimised by D, the G loss by G. Log-probabilities are always written with
``softplus`` / BCE-with-logits, never ``log(sigmoid(x))``, which underflows to ``log(0) = -inf`` once
``|x|`` passes ~100 in float32 (and loses all precision long before).

A loss is a pair of functions (``AdversarialLoss``) looked up in ``LOSSES``; the trainer never branches on
the loss name. ``get_loss`` binds label-smoothing targets for the losses that have targets to smooth.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.registry import Registry, UnknownNameError

__all__ = ["LOSSES", "AdversarialLoss", "get_loss"]

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class AdversarialLoss:
    d: LossFn  # (real_logits, fake_logits) -> scalar D loss
    g: LossFn  # (real_logits, fake_logits) -> scalar G loss; real is ignored unless g_needs_real
    g_needs_real: bool  # relativistic losses compare fakes with reals, so the G step must run D(real) too
    # Whether ``d`` takes ``real_label`` / ``fake_label`` keywords (the targets label smoothing moves).
    # Losses without targets (wasserstein, hinge, ralsgan's fixed +-1 margins) cannot be smoothed.
    smoothable: bool = False


LOSSES: Registry[AdversarialLoss] = Registry("loss")


def _bce(logits: Tensor, target: float) -> Tensor:
    # BCE-with-logits against a constant target t is softplus(x) - t*x, computed stably by torch.
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


# --- standard GAN (Goodfellow et al. 2014) ---------------------------------------------------------------


def d_bce(real: Tensor, fake: Tensor, *, real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    # Sum, not average, of the two terms: seed 001's Keras code returns real_loss + fake_loss.
    return _bce(real, real_label) + _bce(fake, fake_label)


def g_minimax(real: Tensor, fake: Tensor) -> Tensor:
    # G minimises E[log(1 - D(G(z)))] = -E[softplus(fake)]. Its gradient, -sigmoid(fake), vanishes when D
    # confidently rejects fakes -- exactly the situation early in training (why "nonsaturating" exists).
    return -F.softplus(fake).mean()


def g_nonsaturating(real: Tensor, fake: Tensor) -> Tensor:
    # G maximises E[log D(G(z))] instead: loss softplus(-fake), gradient -sigmoid(-fake), which tends to -1
    # as fake -> -inf, so G still learns when D confidently rejects its samples.
    return F.softplus(-fake).mean()


# --- Wasserstein (Arjovsky et al. 2017): raw critic scores, needs a Lipschitz constraint (clip / GP) -----


def d_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def g_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    return -fake.mean()


# --- hinge (Lim & Ye 2017; SAGAN, BigGAN) -------------------------------------------------------------------


def d_hinge(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


g_hinge = g_wasserstein  # the hinge G loss is the Wasserstein one: -E[D(G(z))]


# --- least squares (Mao et al. 2017), a=0 (fake), b=1 (real), c=1 (what G wants D to say) ---------------


def d_lsgan(real: Tensor, fake: Tensor, *, real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    # The 1/2 factors are the paper's (eq. 2); the targets are b=real_label and a=fake_label.
    return 0.5 * (real - real_label).square().mean() + 0.5 * (fake - fake_label).square().mean()


def g_lsgan(real: Tensor, fake: Tensor) -> Tensor:
    # c = 1 stays fixed under smoothing: smoothing softens D's targets, not what G aims for.
    return 0.5 * (fake - 1.0).square().mean()


# --- relativistic average (Jolicoeur-Martineau 2018) ----------------------------------------------------
# D estimates "real is more realistic than the average fake": D_ra(x_r) = sigmoid(C(x_r) - E C(x_f)).


def d_ragan(real: Tensor, fake: Tensor, *, real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    return _bce(real - fake.mean(), real_label) + _bce(fake - real.mean(), fake_label)


def g_ragan(real: Tensor, fake: Tensor) -> Tensor:
    # Same game with the roles swapped: G gains from both fakes looking more real and reals less real.
    return _bce(fake - real.mean(), 1.0) + _bce(real - fake.mean(), 0.0)


def d_ralsgan(real: Tensor, fake: Tensor) -> Tensor:
    # RaLSGAN as written in the paper: margins +1 / -1 and no 1/2 factors (some implementations halve it).
    return (real - fake.mean() - 1.0).square().mean() + (fake - real.mean() + 1.0).square().mean()


def g_ralsgan(real: Tensor, fake: Tensor) -> Tensor:
    return (fake - real.mean() - 1.0).square().mean() + (real - fake.mean() + 1.0).square().mean()


def _add(name: str, loss: AdversarialLoss) -> None:
    LOSSES.register(name)(loss)


_add("minimax", AdversarialLoss(d=d_bce, g=g_minimax, g_needs_real=False, smoothable=True))
_add("nonsaturating", AdversarialLoss(d=d_bce, g=g_nonsaturating, g_needs_real=False, smoothable=True))
_add("wasserstein", AdversarialLoss(d=d_wasserstein, g=g_wasserstein, g_needs_real=False))
_add("hinge", AdversarialLoss(d=d_hinge, g=g_hinge, g_needs_real=False))
_add("lsgan", AdversarialLoss(d=d_lsgan, g=g_lsgan, g_needs_real=False, smoothable=True))
_add("ragan", AdversarialLoss(d=d_ragan, g=g_ragan, g_needs_real=True, smoothable=True))
_add("ralsgan", AdversarialLoss(d=d_ralsgan, g=g_ralsgan, g_needs_real=True))

# BCE targets must be probabilities; lsgan takes any real targets.
_PROBABILITY_TARGETS = {"minimax", "nonsaturating", "ragan"}


def get_loss(name: str, *, real_label: float = 1.0, fake_label: float = 0.0) -> AdversarialLoss:
    """The loss called ``name``, with D's targets moved to ``real_label`` / ``fake_label``.

    One-sided label smoothing (Salimans et al. 2016) is ``real_label=0.9``; two-sided also sets
    ``fake_label=0.1``. Losses with no targets to move raise ConfigError unless the labels are 1 and 0.
    """
    try:
        loss = LOSSES[name]
    except UnknownNameError as e:
        raise ConfigError(str(e)) from None
    real_label, fake_label = float(real_label), float(fake_label)
    if (real_label, fake_label) == (1.0, 0.0):
        return loss
    if not loss.smoothable:
        raise ConfigError(
            f"loss {name!r} has no label targets, so real_label/fake_label must stay 1.0/0.0 "
            f"(got {real_label}/{fake_label}); smoothable losses: "
            + ", ".join(n for n in LOSSES.names() if LOSSES[n].smoothable)
        )
    if name in _PROBABILITY_TARGETS and not (0.0 <= fake_label <= 1.0 and 0.0 <= real_label <= 1.0):
        raise ConfigError(f"loss {name!r}: real_label and fake_label must lie in [0, 1]")
    if not real_label > fake_label:
        # Equal or swapped targets leave D nothing to learn (or teach it backwards).
        raise ConfigError(f"real_label ({real_label}) must be greater than fake_label ({fake_label})")
    d = functools.partial(loss.d, real_label=real_label, fake_label=fake_label)
    return dataclasses.replace(loss, d=d)
