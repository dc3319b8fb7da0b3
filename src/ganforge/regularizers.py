"""Discriminator regularizers, kept apart from the adversarial loss.

Each is an ``nn.Module`` (so any state would live in buffers and be saved with the state dict) whose
``forward(ctx)`` returns a scalar that is already weighted: the trainer adds it to the loss of the phase
named by ``phase``. ``interval`` is StyleGAN2's lazy regularization: the trainer computes the penalty only
on steps where ``step % interval == 0``, and ``forward`` multiplies by ``interval`` so the penalty's average
contribution per step does not depend on how often it runs.

Input gradients use ``torch.autograd.grad(..., create_graph=True)`` so the penalty backpropagates into D.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.registry import Registry, UnknownNameError
from ganforge.schema import coerce  # the config schema's own type check: a bad value names its key

__all__ = [
    "REGULARIZERS",
    "FeatureMatching",
    "GradientPenalty",
    "R1Penalty",
    "R2Penalty",
    "RegContext",
    "Regularizer",
    "WeightClipping",
    "build_regularizers",
    "instantiate",
]

T = TypeVar("T")


@dataclass
class RegContext:
    D: Callable[..., Tensor]  # D(x, y) -> logits (B,) or (B, 1); y is None for an unconditional D
    real: Tensor  # real batch (B, ...) exactly as fed to D
    fake: Tensor  # fake batch (B, ...); detached in the D phase, attached to G in the G phase
    labels: Tensor | None = None  # the real batch's class labels (B,) for a conditional D, else None
    fake_labels: Tensor | None = None  # the classes the fakes were generated for (B,), else None
    features: Callable[..., Tensor] | None = None  # D.features(x, y) -> (B, F) penultimate features


class Regularizer(nn.Module):
    """Base class: a weighted scalar added to one phase's loss, optionally a hook after D's step."""

    phase: str = "d"  # "d" or "g": the phase whose loss the penalty is added to
    interval: int = 1  # lazy regularization: run every `interval` steps, scaled by `interval`

    def forward(self, ctx: RegContext) -> Tensor:
        raise NotImplementedError

    def after_d_step(self, D: nn.Module) -> None:
        """Called by the trainer after every D optimizer step; most regularizers do nothing here."""


REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer")


def _check_nonnegative(name: str, value: float) -> float:
    value = float(value)
    if not value >= 0.0:  # also rejects NaN
        raise ConfigError(f"{name} must be >= 0, got {value}")
    return value


def _check_interval(interval: int) -> int:
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ConfigError(f"interval must be an integer >= 1, got {interval!r}")
    return interval


def _input_gradients(ctx: RegContext, x: Tensor, labels: Tensor | None) -> Tensor:
    """dD(x, labels)/dx per sample, flattened to (B, N), with a graph so a penalty on it trains D."""
    # Detach so the gradient is taken w.r.t. these exact inputs (not G's parameters), then track them.
    x = x.detach().requires_grad_(True)
    logits = ctx.D(x, labels)
    # Summing over the batch gives each sample's own gradient, since D scores samples independently
    # (up to batch statistics such as minibatch stddev, which the standard R1/GP formulations ignore).
    (grad,) = torch.autograd.grad(outputs=logits.sum(), inputs=x, create_graph=True)
    return grad.flatten(1)  # (B, N)


@REGULARIZERS.register("gp")
class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)||_2 - target)^2].

    x_hat = a * real + (1 - a) * fake with a ~ U[0, 1] drawn per sample from torch's global RNG.
    ``target=0`` gives the zero-centred variant (Thanh-Tung et al. 2019).
    """

    def __init__(self, *, weight: float = 10.0, target: float = 1.0, interval: int = 1) -> None:
        super().__init__()
        self.weight = _check_nonnegative("gp weight", weight)  # lambda
        self.target = _check_nonnegative("gp target", target)  # k, the gradient norm aimed for
        self.interval = _check_interval(interval)

    def forward(self, ctx: RegContext) -> Tensor:
        real, fake = ctx.real.detach(), ctx.fake.detach()
        if real.shape != fake.shape:
            raise ValueError(f"gp interpolates real and fake: shapes differ, {real.shape} vs {fake.shape}")
        # One mixing coefficient per sample, broadcast over all other dims: (B, 1, 1, ...)
        alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
        x_hat = torch.lerp(fake, real, alpha)  # alpha * real + (1 - alpha) * fake
        # A conditional D judges each interpolate under the real sample's class (the usual conditional WGAN-GP).
        norms = _input_gradients(ctx, x_hat, ctx.labels).norm(2, dim=1)  # (B,)
        return (self.weight * self.interval) * (norms - self.target).square().mean()

    def extra_repr(self) -> str:
        return f"weight={self.weight}, target={self.target}, interval={self.interval}"


@REGULARIZERS.register("r1")
class R1Penalty(Regularizer):
    """R1 (Mescheder et al. 2018): gamma/2 * E[||grad D(x_real)||^2], zero-centred on the data."""

    def __init__(self, *, gamma: float = 10.0, interval: int = 1) -> None:
        super().__init__()
        self.gamma = _check_nonnegative("r1 gamma", gamma)
        self.interval = _check_interval(interval)

    def _inputs(self, ctx: RegContext) -> tuple[Tensor, Tensor | None]:
        return ctx.real, ctx.labels

    def forward(self, ctx: RegContext) -> Tensor:
        sq_norms = _input_gradients(ctx, *self._inputs(ctx)).square().sum(dim=1)  # (B,)
        return (0.5 * self.gamma * self.interval) * sq_norms.mean()

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, interval={self.interval}"


@REGULARIZERS.register("r2")
class R2Penalty(R1Penalty):
    """R2 (Mescheder et al. 2018): the same penalty on generated samples, gamma/2 * E||grad D(x_fake)||^2."""

    def _inputs(self, ctx: RegContext) -> tuple[Tensor, Tensor | None]:
        return ctx.fake, ctx.fake_labels  # each fake under the class it was generated for


@REGULARIZERS.register("feature_matching")
class FeatureMatching(Regularizer):
    """Feature matching (Salimans et al. 2016), a G-phase term: weight * ||E f(real) - E f(fake)||_2^2.

    f is D's penultimate layer. G is pulled towards the real data's feature statistics instead of only
    chasing D's current output, which makes it harder for G to overtrain on one D.
    """

    phase = "g"

    def __init__(self, *, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = _check_nonnegative("feature_matching weight", weight)

    def forward(self, ctx: RegContext) -> Tensor:
        if ctx.features is None:
            raise ConfigError("feature_matching needs a discriminator that exposes features(x, y)")
        with torch.no_grad():  # the real statistics are a fixed target for G, not something to train
            real_mean = ctx.features(ctx.real, ctx.labels).mean(dim=0)  # (F,)
        fake_mean = ctx.features(ctx.fake, ctx.fake_labels).mean(dim=0)  # (F,)
        return self.weight * (real_mean - fake_mean).square().sum()

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


@REGULARIZERS.register("weight_clip")
class WeightClipping(Regularizer):
    """The original WGAN's Lipschitz constraint: clamp every D parameter to [-clip, clip] after each step.

    Not a penalty: ``forward`` returns 0 so it can sit in the same list as the penalties.
    """

    def __init__(self, *, clip: float = 0.01) -> None:
        super().__init__()
        self.clip = float(clip)
        if not self.clip > 0.0:
            raise ConfigError(f"weight_clip clip must be > 0, got {clip}")

    def forward(self, ctx: RegContext) -> Tensor:
        return ctx.real.new_zeros(())

    @torch.no_grad()
    def after_d_step(self, D: nn.Module) -> None:
        for p in D.parameters():
            p.clamp_(-self.clip, self.clip)

    def extra_repr(self) -> str:
        return f"clip={self.clip}"


def instantiate(registry: Registry[type[T]], name: str, params: Mapping[str, Any] | None) -> T:
    """Build ``registry[name](**params)`` from config, with ConfigErrors that name what is wrong."""
    try:
        cls = registry[name]
    except UnknownNameError as e:
        raise ConfigError(str(e)) from None
    params = dict(params or {})
    accepted = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.name != "self"
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{registry.kind} {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(accepted) or '(none)'}"
        )
    hints = typing.get_type_hints(cls.__init__)
    params = {k: coerce(v, hints[k], f"{name}.{k}") if k in hints else v for k, v in params.items()}
    return cls(**params)


def build_regularizers(specs: Mapping[str, Mapping[str, Any] | None]) -> nn.ModuleList:
    """``{"gp": {"weight": 10}, "r1": {"gamma": 5, "interval": 16}}`` -> ModuleList of regularizers."""
    return nn.ModuleList(instantiate(REGULARIZERS, name, params) for name, params in specs.items())
