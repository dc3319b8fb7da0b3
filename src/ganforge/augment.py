"""Augmentations applied to every discriminator input, real and fake alike.

Because fakes are augmented too, each transform must be differentiable w.r.t. its input so G's gradient
flows back through it (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").
All randomness is drawn from torch's global RNG, so ganforge's seeding makes runs reproducible.

Interface: ``forward(x, step) -> x'`` with the same shape; ``step`` is the trainer's step counter, used by
schedules such as instance noise's annealing. ``observe(real_logits)`` receives D's logits on the reals
after each D step (ADA adapts its probability from them) and ``report(stats)`` logs an augment's state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.registry import Registry
from ganforge.regularizers import instantiate

__all__ = ["ADA", "AUGMENTS", "Augment", "AugmentPipeline", "DiffAugment", "InstanceNoise", "build_augment"]


class Augment(nn.Module):
    """Base class: ``forward(x, step)`` returns a transformed batch of the same shape."""

    def forward(self, x: Tensor, step: int) -> Tensor:
        raise NotImplementedError

    def observe(self, real_logits: Tensor) -> None:
        """D's logits on (augmented) reals, after each D step: what an adaptive augment (ADA) steers by."""

    def report(self, stats) -> None:
        """Report the augment's own state (ADA's p) to a StatsCollector once per measured step."""


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

    def observe(self, real_logits: Tensor) -> None:
        for aug in self.augments:
            aug.observe(real_logits)

    def report(self, stats) -> None:
        for aug in self.augments:
            aug.report(stats)


def build_augment(specs: Mapping[str, Mapping[str, Any] | None]) -> AugmentPipeline:
    """``{"diffaugment": {"policy": "color,translation"}, "instance_noise": {"std": 0.1}}`` -> pipeline."""
    return AugmentPipeline([instantiate(AUGMENTS, name, params) for name, params in specs.items()])


# --- ADA: adaptive discriminator augmentation (Karras et al. 2020) ----------------------------------------


def _rotation2d(theta: Tensor) -> Tensor:
    """(B,) angles -> (B, 3, 3) homogeneous 2-D rotations."""
    c, s = theta.cos(), theta.sin()
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return torch.stack([c, -s, z, s, c, z, z, z, o], dim=1).view(-1, 3, 3)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    o, z = torch.ones_like(sx), torch.zeros_like(sx)
    return torch.stack([sx, z, z, z, sy, z, z, z, o], dim=1).view(-1, 3, 3)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    o, z = torch.ones_like(tx), torch.zeros_like(tx)
    return torch.stack([o, z, tx, z, o, ty, z, z, o], dim=1).view(-1, 3, 3)


def _translate3d(t: Tensor) -> Tensor:
    """(B,) offsets added to R, G and B alike -> (B, 4, 4)."""
    m = torch.eye(4, device=t.device, dtype=t.dtype).repeat(t.shape[0], 1, 1)
    m[:, :3, 3] = t[:, None]
    return m


def _scale3d(s: Tensor) -> Tensor:
    m = torch.eye(4, device=s.device, dtype=s.dtype).repeat(s.shape[0], 1, 1)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def _rotate3d(axis: Tensor, theta: Tensor) -> Tensor:
    """Rotation by theta (B,) about a unit axis (3,) (Rodrigues), as (B, 4, 4)."""
    x, y, z = axis
    c, s = theta.cos(), theta.sin()
    cc = 1 - c
    rows = [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s,
            y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s,
            z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c]
    m = torch.eye(4, device=theta.device, dtype=theta.dtype).repeat(theta.shape[0], 1, 1)
    m[:, :3, :3] = torch.stack(rows, dim=1).view(-1, 3, 3)
    return m


@AUGMENTS.register("ada")
class ADA(Augment):
    """Adaptive discriminator augmentation (Karras et al. 2020, "Training GANs with Limited Data").

    Every transform of the non-leaking 'bgc' pipeline (blit: x-flip, 90-degree rotations, integer translation;
    geometric: isotropic scaling, rotation, anisotropic scaling, fractional translation; colour: brightness,
    contrast, luma flip, hue rotation, saturation) is applied to each image independently with probability p.
    Because every transform is invertible-in-distribution at p < ~0.8, D learns the real distribution rather
    than the augmented one, and G's outputs carry no augmentation ("non-leaking"). Geometric transforms are
    composed into one matrix per image and applied with one differentiable ``grid_sample`` (reflection
    padding); colour transforms are one 4x4 matrix per image on RGB (grey images: the matrix averaged over
    R, G, B as in the official code; a 4th channel such as alpha is left alone; other channel counts get
    brightness and contrast only).

    p adapts: the phases call ``observe(real_logits)`` with D's logits on augmented reals; every
    ``interval`` D steps r_t = E[sign(D(real))] is compared with ``target`` and p moves by
    sign(r_t - target) * (images seen) / (speed_kimg * 1000), so p can go from 0 to 1 in ``speed_kimg``
    thousand images. p, and the running sums, are buffers: the checkpoint keeps them and resume is exact.
    """

    def __init__(self, *, target: float = 0.6, speed_kimg: float = 500.0, interval: int = 4, p: float = 0.0,
                 adaptive: bool = True, max_p: float = 1.0, translate: float = 0.125, scale_std: float = 0.2,
                 rotate_max: float = 1.0, aniso_std: float = 0.2, frac_std: float = 0.125,
                 brightness_std: float = 0.2, contrast_std: float = 0.5, hue_max: float = 1.0,
                 saturation_std: float = 1.0, geometric: bool = True, color: bool = True) -> None:
        super().__init__()
        self.target = float(target)  # the r_t that p is steered towards (0.6 in the paper)
        self.speed_kimg = float(speed_kimg)  # thousands of images for p to move by 1 (500 in the paper)
        self.interval = interval  # D steps between adjustments of p (4 in the paper)
        self.adaptive = bool(adaptive)  # False: p stays at its initial value (fixed-p augmentation)
        self.max_p = float(max_p)  # upper bound on p (leaking starts near 0.8 for some transforms)
        self.translate = float(translate)  # integer translation: up to this fraction of the size per axis
        self.scale_std = float(scale_std)  # isotropic scale 2**N(0, scale_std)
        self.rotate_max = float(rotate_max)  # rotation uniform in +-rotate_max * pi
        self.aniso_std = float(aniso_std)  # anisotropic scale 2**N(0, aniso_std)
        self.frac_std = float(frac_std)  # fractional translation N(0, frac_std) * size
        self.brightness_std = float(brightness_std)  # brightness offset N(0, brightness_std)
        self.contrast_std = float(contrast_std)  # contrast 2**N(0, contrast_std)
        self.hue_max = float(hue_max)  # hue rotation uniform in +-hue_max * pi (RGB only)
        self.saturation_std = float(saturation_std)  # saturation 2**N(0, saturation_std) (RGB only)
        self.geometric, self.color = bool(geometric), bool(color)
        if not 0.0 <= self.target <= 1.0:
            raise ConfigError(f"ada target must be in [0, 1], got {target}")
        if not self.speed_kimg > 0:
            raise ConfigError(f"ada speed_kimg must be > 0, got {speed_kimg}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"ada interval must be an integer >= 1, got {interval!r}")
        if not 0.0 <= float(p) <= self.max_p <= 1.0:
            raise ConfigError(f"ada p must be in [0, max_p] and max_p in [0, 1], got p={p}, max_p={max_p}")
        for name in ("translate", "scale_std", "rotate_max", "aniso_std", "frac_std", "brightness_std",
                     "contrast_std", "hue_max", "saturation_std"):
            if getattr(self, name) < 0:
                raise ConfigError(f"ada {name} must be >= 0, got {getattr(self, name)}")
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("sign_sum", torch.zeros(()))  # sum of sign(D(real)) since the last adjustment
        self.register_buffer("sign_count", torch.zeros(()))  # how many logits that sum holds
        self.register_buffer("observations", torch.zeros((), dtype=torch.long))  # observe() calls so far
        self.register_buffer("last_rt", torch.zeros(()))  # r_t of the last adjustment (logged)
        self.p: Tensor
        self.sign_sum: Tensor
        self.sign_count: Tensor
        self.observations: Tensor
        self.last_rt: Tensor

    # --- the heuristic

    @torch.no_grad()
    def observe(self, real_logits: Tensor) -> None:
        """Accumulate sign(D(real)); every `interval` calls, move p towards r_t = target."""
        if not self.adaptive:
            return
        logits = real_logits.detach().float()
        signs = torch.stack([logits.sign().sum(), torch.tensor(float(logits.numel()), device=logits.device)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(signs)  # one p for all ranks, from the global batch
        self.sign_sum += signs[0].to(self.sign_sum.device)
        self.sign_count += signs[1].to(self.sign_count.device)
        self.observations += 1
        if int(self.observations) % self.interval:
            return
        rt = self.sign_sum / self.sign_count.clamp_min(1.0)
        step = (rt - self.target).sign() * self.sign_count / (self.speed_kimg * 1000.0)
        self.p.copy_((self.p + step).clamp(0.0, self.max_p))
        self.last_rt.copy_(rt)
        self.sign_sum.zero_()
        self.sign_count.zero_()

    def report(self, stats) -> None:
        stats.report("ada_p", self.p)
        stats.report("ada_rt", self.last_rt)

    # --- the pipeline

    def _chance(self, b: int, p: float, device) -> Tensor:
        return torch.rand(b, device=device) < p  # (B,) which images get this transform

    def _geometric(self, x: Tensor, p: float) -> Tensor:
        b, _, h, w = x.shape
        dev, dt = x.device, torch.float32
        eye = torch.eye(3, device=dev, dtype=dt).repeat(b, 1, 1)
        # G maps output pixel coordinates (origin at the image centre) to input coordinates; each transform
        # right-multiplies its inverse, as in the official pipeline.
        G = eye.clone()

        def maybe(m: Tensor, chance: Tensor) -> Tensor:
            return torch.where(chance[:, None, None], m, eye)

        one = torch.ones(b, device=dev, dtype=dt)
        flip = 1 - 2 * torch.randint(2, (b,), device=dev).to(dt)
        G = G @ maybe(_scale2d(flip, one), self._chance(b, p, dev))
        quarter = torch.randint(4, (b,), device=dev).to(dt) * (math.pi / 2)
        if h == w:  # a 90-degree turn of a non-square image would not fit its frame
            G = G @ maybe(_rotation2d(-quarter), self._chance(b, p, dev))
        t = (torch.rand(b, 2, device=dev) * 2 - 1) * self.translate
        G = G @ maybe(_translate2d((t[:, 0] * w).round(), (t[:, 1] * h).round()), self._chance(b, p, dev))
        s = torch.exp2(torch.randn(b, device=dev) * self.scale_std)
        G = G @ maybe(_scale2d(1 / s, 1 / s), self._chance(b, p, dev))
        p_rot = 1 - math.sqrt(max(0.0, 1 - p))  # applied twice (before and after aniso): total chance ~p
        theta = (torch.rand(b, device=dev) * 2 - 1) * math.pi * self.rotate_max
        G = G @ maybe(_rotation2d(-theta), self._chance(b, p_rot, dev))
        s = torch.exp2(torch.randn(b, device=dev) * self.aniso_std)
        G = G @ maybe(_scale2d(1 / s, s), self._chance(b, p, dev))
        theta = (torch.rand(b, device=dev) * 2 - 1) * math.pi * self.rotate_max
        G = G @ maybe(_rotation2d(-theta), self._chance(b, p_rot, dev))
        t = torch.randn(b, 2, device=dev) * self.frac_std
        G = G @ maybe(_translate2d(t[:, 0] * w, t[:, 1] * h), self._chance(b, p, dev))
        # Pixel coordinates -> grid_sample's [-1, 1] (align_corners=False: +-1 are the outer pixel edges).
        to_norm = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], device=dev))
        from_norm = torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], device=dev))
        theta_n = (to_norm @ G @ from_norm)[:, :2, :]  # (B, 2, 3)
        grid = F.affine_grid(theta_n.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _color(self, x: Tensor, p: float) -> Tensor:
        b, c = x.shape[:2]
        dev, dt = x.device, torch.float32
        eye = torch.eye(4, device=dev, dtype=dt).repeat(b, 1, 1)
        C = eye.clone()

        def maybe(m: Tensor, chance: Tensor) -> Tensor:
            return torch.where(chance[:, None, None], m, eye)

        C = maybe(_translate3d(torch.randn(b, device=dev) * self.brightness_std), self._chance(b, p, dev)) @ C
        C = maybe(_scale3d(torch.exp2(torch.randn(b, device=dev) * self.contrast_std)), self._chance(b, p, dev)) @ C
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)
        vv = torch.outer(luma, luma)  # projection on the luma axis (4, 4)
        if c in (1, 3, 4):  # the luma axis needs RGB (or grey, its average)
            flip = torch.randint(2, (b,), device=dev).to(dt)
            C = maybe(eye - 2 * vv * flip[:, None, None], self._chance(b, p, dev)) @ C
        if c in (3, 4):  # hue and saturation do nothing to grey
            theta = (torch.rand(b, device=dev) * 2 - 1) * math.pi * self.hue_max
            C = maybe(_rotate3d(luma[:3], theta), self._chance(b, p, dev)) @ C
            s = torch.exp2(torch.randn(b, device=dev) * self.saturation_std)
            C = maybe(vv + (eye - vv) * s[:, None, None], self._chance(b, p, dev)) @ C
        C = C.to(x.dtype)
        flat = x.reshape(b, c, -1)  # (B, C, H*W)
        if c == 1:
            grey = C[:, :3, :].mean(dim=1)  # (B, 4): the average row, acting on (v, v, v, 1)
            out = flat * grey[:, :3].sum(dim=1)[:, None, None] + grey[:, 3][:, None, None]
        elif c in (3, 4):
            out = C[:, :3, :3] @ flat[:, :3] + C[:, :3, 3:]
            if c == 4:
                out = torch.cat([out, flat[:, 3:]], dim=1)  # alpha untouched
        else:  # brightness and contrast: the same on every channel
            out = flat * C[:, 0, 0][:, None, None] + C[:, 0, 3][:, None, None]
        return out.reshape(x.shape)

    def forward(self, x: Tensor, step: int) -> Tensor:
        if x.dim() != 4:
            raise ConfigError(f"ADA works on images (B, C, H, W), got shape {tuple(x.shape)}")
        p = float(self.p)
        if p <= 0.0:
            return x  # nothing to do, and no random numbers drawn (a p=0 run equals a run without ADA)
        if self.geometric:
            x = self._geometric(x, p)
        if self.color:
            x = self._color(x, p)
        return x

    def extra_repr(self) -> str:
        return f"p={float(self.p):.4f}, target={self.target}, speed_kimg={self.speed_kimg}, interval={self.interval}"
