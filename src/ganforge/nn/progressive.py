"""Progressive growing (Karras et al. 2018, ProGAN): train at a low resolution, then add layers one stage
at a time, fading each new stage in so the networks are never shocked by an untrained block.

This module holds the schedule (a pure function of the step, so a resumed run lands on exactly the same
stage, alpha and batch size) and the two tensor helpers every progressive model needs; the model family
decides which blocks run at each stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import ConfigError

__all__ = ["ProgressiveSchedule", "downsample_to", "fade_in", "match_detail", "match_detail_samples"]


def _per_stage(name: str, value: int | Sequence[int], n: int, *, minimum: int) -> tuple[int, ...]:
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) != n:
        raise ConfigError(f"{name} needs one value per stage ({n}), got {len(values)}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ConfigError(f"{name} must be integers >= {minimum}, got {v!r}")
    return values


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Which stage (resolution) trains at a given step, and how far its fade-in has got.

    Stage i lasts ``fade_steps[i] + stable_steps[i]`` steps: during the first ``fade_steps[i]`` alpha rises
    linearly from 0 (at the stage's first step) towards 1; then alpha is 1. Stage 0 has nothing to fade
    from, so it has no fade phase: a scalar ``fade_steps`` applies to stages 1.. only, and a per-stage list
    must start with 0. After the last stage's steps the schedule stays in the last stage with alpha 1.

    ``stages``: resolutions as (H, W), lowest first, each no smaller than the one before (non-square
    works). ``batch_sizes``: one for all stages, or one per stage (smaller at high resolution).
    """

    stages: Sequence[tuple[int, int]]
    fade_steps: int | Sequence[int]
    stable_steps: int | Sequence[int]
    batch_sizes: int | Sequence[int] = 32
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stages = tuple((int(h), int(w)) for h, w in self.stages)
        if not stages:
            raise ConfigError("a progressive schedule needs at least one stage")
        for i, (h, w) in enumerate(stages):
            if h < 1 or w < 1:
                raise ConfigError(f"stage {i} resolution must be positive, got {h}x{w}")
            if i and (h < stages[i - 1][0] or w < stages[i - 1][1]):
                raise ConfigError(f"stage {i} ({h}x{w}) is smaller than stage {i - 1} {stages[i - 1]}")
        n = len(stages)
        if isinstance(self.fade_steps, int):
            if isinstance(self.fade_steps, bool) or self.fade_steps < 0:
                raise ConfigError(f"fade_steps must be an integer >= 0, got {self.fade_steps!r}")
            fade = (0,) + (self.fade_steps,) * (n - 1)
        else:
            fade = _per_stage("fade_steps", self.fade_steps, n, minimum=0)
            if fade[0] != 0:
                raise ConfigError(f"stage 0 has nothing to fade in from: fade_steps[0] must be 0, got {fade[0]}")
        stable = _per_stage("stable_steps", self.stable_steps, n, minimum=0)
        batch = _per_stage("batch_sizes", self.batch_sizes, n, minimum=1)
        if any(f + s == 0 for f, s in zip(fade, stable)):
            raise ConfigError("every stage needs at least one step (fade_steps + stable_steps >= 1)")
        starts = [0]
        for f, s in zip(fade, stable):
            starts.append(starts[-1] + f + s)
        for name, value in (("stages", stages), ("fade_steps", fade), ("stable_steps", stable),
                            ("batch_sizes", batch), ("_starts", tuple(starts))):
            object.__setattr__(self, name, value)  # frozen: normalize once, here

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def total_steps(self) -> int:
        """Steps until the last stage's stable phase ends (training may go on beyond, at the last stage)."""
        return self._starts[-1]

    def stage_start(self, stage: int) -> int:
        """The first step of ``stage`` (the step its fade-in begins)."""
        return self._starts[stage]

    def stage_at(self, step: int) -> tuple[int, float]:
        """(stage index, alpha) for a 0-based step; alpha in [0, 1], 1 outside fade-ins."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        stage = self.num_stages - 1
        for i in range(self.num_stages):
            if step < self._starts[i + 1]:
                stage = i
                break
        fade = self.fade_steps[stage]  # type: ignore[index]
        into = step - self._starts[stage]
        alpha = into / fade if into < fade else 1.0
        return stage, float(alpha)

    def resolution_at(self, step: int) -> tuple[int, int]:
        return self.stages[self.stage_at(step)[0]]

    def batch_size_at(self, step: int) -> int:
        return self.batch_sizes[self.stage_at(step)[0]]  # type: ignore[index]

    def is_fading(self, step: int) -> bool:
        return self.stage_at(step)[1] < 1.0


def fade_in(low: Tensor, high: Tensor, alpha: float | Tensor, *, mode: str = "nearest") -> Tensor:
    """Blend a new stage in: (1 - alpha) * upsample(low) + alpha * high, at high's (H, W).

    alpha=0 gives exactly the upsampled low-resolution path (the network before the stage was added),
    alpha=1 exactly the high-resolution path. ``mode`` is the upsampling (ProGAN: 'nearest'; 'bilinear'
    is smoother). low: (B, C, h, w), high: (B, C, H, W).
    """
    if low.dim() != 4 or high.dim() != 4 or low.shape[:2] != high.shape[:2]:
        raise ValueError(f"fade_in needs (B, C, h, w) and (B, C, H, W), got {tuple(low.shape)}, {tuple(high.shape)}")
    size = tuple(high.shape[2:])
    if tuple(low.shape[2:]) != size:
        kwargs = {} if mode in ("nearest", "nearest-exact", "area") else {"align_corners": False}
        low = F.interpolate(low, size=size, mode=mode, **kwargs)
    weight = alpha if isinstance(alpha, Tensor) else float(alpha)
    # torch.lerp computes start + w*(end - start) for w < 0.5 and end - (1 - w)*(end - start) otherwise,
    # so alpha=0 and alpha=1 return the two paths bit for bit.
    return torch.lerp(low, high, weight)


def downsample_to(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Real images (B, C, H, W) -> (B, C, h, w) at the current stage by area averaging.

    Integer factors (the usual case, also non-square: 8x12 -> 4x6) use ``avg_pool2d``, which every backend
    supports and whose backward is deterministic; other factors fall back to area interpolation (adaptive
    average pooling, unsupported on MPS for non-divisible sizes). Upsampling is refused.
    """
    if images.dim() != 4:
        raise ValueError(f"downsample_to expects (B, C, H, W), got {tuple(images.shape)}")
    h, w = images.shape[2:]
    th, tw = int(size[0]), int(size[1])
    if th < 1 or tw < 1 or th > h or tw > w:
        raise ValueError(f"cannot downsample {h}x{w} images to {th}x{tw}")
    if (th, tw) == (h, w):
        return images
    if h % th == 0 and w % tw == 0:
        return F.avg_pool2d(images, kernel_size=(h // th, w // tw))
    return F.interpolate(images, size=(th, tw), mode="area")


def match_detail(images: Tensor, size: tuple[int, int] | None) -> Tensor:
    """Images (B, C, H, W) reduced to the detail of a (h, w) stage and shown at (H, W) again: averaged down, then
    nearest-upsampled (as a growing generator's stage output is shown). ``size`` None: unchanged."""
    if size is None or tuple(size) == tuple(images.shape[-2:]):
        return images
    h, w = images.shape[-2:]
    low = downsample_to(images.float(), size)
    up = low.repeat_interleave(h // size[0], dim=2).repeat_interleave(w // size[1], dim=3)
    return up.round().to(torch.uint8) if images.dtype == torch.uint8 else up.to(images.dtype)


def match_detail_samples(samples, size: tuple[int, int] | None):
    """A metrics `Samples` of uint8 images through ``match_detail``; its cache name says which detail."""
    if size is None or not samples.is_image or tuple(size) == tuple(samples.data.shape[-2:]):
        return samples
    from dataclasses import replace

    name = None if samples.name is None else f"{samples.name}@{size[0]}x{size[1]}"
    return replace(samples, data=match_detail(samples.data, size), name=name)
