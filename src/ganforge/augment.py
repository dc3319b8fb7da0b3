"""Augmentations applied to every discriminator input, real and fake alike.

Because fakes are augmented too, each transform must be differentiable w.r.t. its input so G's gradient
flows back through it (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").
All randomness is drawn from torch's global RNG, so ganforge's seeding makes runs reproducible.

Interface: ``forward(x, step) -> x'`` with the same shape; ``step`` is the trainer's step counter, used by
schedules such as instance noise's annealing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.registry import Registry
from ganforge.regularizers import instantiate

__all__ = ["AUGMENTS", "Augment", "AugmentPipeline", "DiffAugment", "InstanceNoise", "build_augment"]


class Augment(nn.Module):
    """Base class: ``forward(x, step)`` returns a transformed batch of the same shape."""

    def forward(self, x: Tensor, step: int) -> Tensor:
        raise NotImplementedError


AUGMENTS: Registry[type[Augment]] = Registry("augment")


# --- DiffAugment ops: each (B, C, H, W) -> (B, C, H, W), one random draw per sample -----------------------


def _per_sample(x: Tensor) -> Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)  # (B, 1, 1, 1) in [0, 1)


def brightness(x: Tensor) -> Tensor:
    return x + (_per_sample(x) - 0.5)  # add a per-sample offset in [-0.5, 0.5)


def saturation(x: Tensor) -> Tensor:
    gray = x.mean(dim=1, keepdim=True)  # (B, 1, H, W); a no-op for single-channel images
    return (x - gray) * (_per_sample(x) * 2.0) + gray  # scale distance from gray by [0, 2)


def contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (x - mean) * (_per_sample(x) + 0.5) + mean  # scale distance from the mean by [0.5, 1.5)


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio * size pixels in each axis, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)  # max shift per axis
    dy = torch.randint(-sh, sh + 1, (b, 1), device=x.device)  # (B, 1)
    dx = torch.randint(-sw, sw + 1, (b, 1), device=x.device)  # (B, 1)
    padded = F.pad(x, [sw, sw, sh, sh])  # (B, C, H + 2sh, W + 2sw), zeros outside the image
    rows = torch.arange(h, device=x.device) + sh + dy  # (B, H): source row of each output row
    cols = torch.arange(w, device=x.device) + sw + dx  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]  # (B, 1, 1)
    # Advanced indexing on (B, H', W', C) gathers each sample's window; indexing is differentiable.
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one ratio*H x ratio*W rectangle per image, centred anywhere (so it may be cut by the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1), device=x.device) - ch // 2  # (B, 1)
    left = torch.randint(0, w + (1 - cw % 2), (b, 1), device=x.device) - cw // 2  # (B, 1)
    ys = torch.arange(h, device=x.device)  # (H,)
    xs = torch.arange(w, device=x.device)  # (W,)
    in_rows = (ys >= top) & (ys < top + ch)  # (B, H)
    in_cols = (xs >= left) & (xs < left + cw)  # (B, W)
    hole = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W)
    return x * (~hole).unsqueeze(1).to(x.dtype)  # (B, 1, H, W) mask broadcast over channels


# Each policy name expands to the ops that the DiffAugment paper groups under it, applied in order.
_POLICY_OPS: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


@AUGMENTS.register("diffaugment")
class DiffAugment(Augment):
    """DiffAugment (Zhao et al. 2020) for images (B, C, H, W); ``policy=""`` is the identity."""

    def __init__(self, *, policy: str = "color,translation,cutout") -> None:
        super().__init__()
        names = [p.strip() for p in policy.split(",") if p.strip()]  # comma-separated, applied in order
        unknown = [n for n in names if n not in _POLICY_OPS]
        if unknown:
            raise ConfigError(
                f"unknown DiffAugment policy {', '.join(map(repr, unknown))}; valid: {', '.join(_POLICY_OPS)}"
            )
        self.policy = names
        self._ops = [op for n in names for op in _POLICY_OPS[n]]

    def forward(self, x: Tensor, step: int) -> Tensor:
        if x.dim() != 4:
            raise ConfigError(
                f"DiffAugment works on images (B, C, H, W), got shape {tuple(x.shape)}; "
                "for 2-D points use instance_noise"
            )
        for op in self._ops:
            x = op(x)
        return x.contiguous()

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)!r}"


@AUGMENTS.register("instance_noise")
class InstanceNoise(Augment):
    """Gaussian instance noise (Sønderby et al. 2016; Arjovsky & Bottou 2017), for any input shape.

    Blurring both distributions makes their supports overlap so D cannot separate them perfectly early on;
    the std decays linearly from ``std`` at step 0 to 0 at ``anneal_steps`` so the final model is unbiased.
    """

    def __init__(self, *, std: float = 0.1, anneal_steps: int | None = 10000) -> None:
        super().__init__()
        self.std = float(std)  # noise std at step 0, in the units of D's input (images in [-1, 1])
        self.anneal_steps = anneal_steps  # steps until the std reaches 0; None keeps it constant
        if not self.std >= 0.0:
            raise ConfigError(f"instance_noise std must be >= 0, got {std}")
        if anneal_steps is not None and (
            isinstance(anneal_steps, bool) or not isinstance(anneal_steps, int) or anneal_steps < 1
        ):
            raise ConfigError(
                f"instance_noise anneal_steps must be an integer >= 1 or None, got {anneal_steps!r}"
            )

    def std_at(self, step: int) -> float:
        if self.anneal_steps is None:
            return self.std
        return self.std * max(0.0, 1.0 - step / self.anneal_steps)

    def forward(self, x: Tensor, step: int) -> Tensor:
        std = self.std_at(step)
        if std == 0.0:
            return x
        return x + std * torch.randn_like(x)

    def extra_repr(self) -> str:
        return f"std={self.std}, anneal_steps={self.anneal_steps}"


class AugmentPipeline(Augment):
    """The chosen augments applied in config order; with none it is the identity."""

    def __init__(self, augments: list[Augment]) -> None:
        super().__init__()
        self.augments = nn.ModuleList(augments)

    def forward(self, x: Tensor, step: int) -> Tensor:
        for aug in self.augments:
            x = aug(x, step)
        return x


def build_augment(specs: Mapping[str, Mapping[str, Any] | None]) -> AugmentPipeline:
    """``{"diffaugment": {"policy": "color,translation"}, "instance_noise": {"std": 0.1}}`` -> pipeline."""
    return AugmentPipeline([instantiate(AUGMENTS, name, params) for name, params in specs.items()])
