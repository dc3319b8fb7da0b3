"""Walks through a noise sampler's latent space: linear or spherical interpolation, in z or in w.

`slerp` follows the great circle between two Gaussian latents (White 2016, "Sampling generative networks"):
a straight line between two draws of N(0, I) passes near the origin, where the prior has almost no mass, so
mid-way images of a linear path in z are washed out. In a style model's w space (StyleGAN's mapped latents,
which are not Gaussian) the linear path is the usual one. The result is written as an animated GIF (Pillow)
or one PNG strip, a row per path (torchvision).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from ganforge.errors import GanforgeError

__all__ = ["METHODS", "SPACES", "interpolate", "lerp", "slerp", "write_interpolation"]

METHODS = ("linear", "slerp")
SPACES = ("z", "w")


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """a + t (b - a) for each t: (T,) times (N, ...) -> (T, N, ...)."""
    t = t.view(-1, *([1] * a.ndim))
    return a.unsqueeze(0) + t * (b - a).unsqueeze(0)


def slerp(a: Tensor, b: Tensor, t: Tensor, *, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation of each row of a (N, ...) to b's: (T, N, ...).

    The angle and the norms are those of each row's flattened vector; the norm is interpolated linearly, so
    endpoints are exact and a path between vectors of different lengths stays smooth. Nearly parallel rows
    fall back to the linear path (the sine formula is 0/0 there).
    """
    flat_a, flat_b = a.flatten(1).double(), b.flatten(1).double()
    norm_a, norm_b = flat_a.norm(dim=1, keepdim=True), flat_b.norm(dim=1, keepdim=True)
    unit_a, unit_b = flat_a / norm_a.clamp_min(eps), flat_b / norm_b.clamp_min(eps)
    omega = (unit_a * unit_b).sum(1, keepdim=True).clamp(-1.0, 1.0).acos()  # (N, 1)
    sin = omega.sin()
    ts = t.double().view(-1, 1, 1)  # (T, 1, 1)
    parallel = sin.abs() < 1e-6
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    wa = torch.where(parallel, 1 - ts, ((1 - ts) * omega).sin() / safe_sin)
    wb = torch.where(parallel, ts, (ts * omega).sin() / safe_sin)
    direction = wa * unit_a + wb * unit_b  # (T, N, D)
    direction = direction / direction.norm(dim=2, keepdim=True).clamp_min(eps)
    norm = (1 - ts) * norm_a + ts * norm_b
    return (direction * norm).view(len(t), *a.shape).to(a.dtype)


@torch.no_grad()
def interpolate(
    sampler,  # a noise sampler (ganforge.load_sampler of a generate model)
    *,
    steps: int = 16,  # images along each path, both endpoints included
    method: str | None = None,  # "linear" or "slerp"; None: slerp in z, linear in w
    space: str = "z",  # "z" (the noise) or "w" (a style model's mapped latent: needs to_w / from_w)
    from_seed: int = 0,  # seed of the path's start latents
    to_seed: int = 1,  # seed of its end latents
    rows: int = 1,  # independent paths (one row of the PNG strip each; all in one GIF frame)
    label: int | None = None,  # conditional models: the class of every path; None: row i gets class i
    truncation: float | None = None,  # style models: pull w towards its average (psi in [0, 1])
    refine=None,  # a ganforge.refine.Refinement: each z on the path refined on the run's D, as `generate` does
) -> Tensor:
    """Images along latent paths: uint8 (steps, rows, C, H, W)."""
    if getattr(sampler, "task", None) != "generate":
        raise GanforgeError(f"interpolate needs a noise-to-image model; this is a "
                            f"{getattr(sampler, 'task', type(sampler).__name__)} model")
    if not sampler.spec.is_image:
        raise GanforgeError("interpolate writes images; this model generates points")
    if steps < 2:
        raise GanforgeError(f"--steps must be >= 2 (the two endpoints), got {steps}")
    if rows < 1:
        raise GanforgeError(f"--rows must be >= 1, got {rows}")
    if space not in SPACES:
        raise GanforgeError(f"unknown space {space!r}; valid: {', '.join(SPACES)}")
    if refine is not None and (space != "z" or truncation not in (None, 1.0)):
        raise GanforgeError("latent refinement moves z: it takes --space z and no --truncation below 1 (pass "
                            "--refine-steps 0 for plain images)")
    method = method or ("slerp" if space == "z" else "linear")
    if method not in METHODS:
        raise GanforgeError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    controls = {}
    if truncation is not None:
        if not getattr(sampler, "supports_truncation", False):
            raise GanforgeError("--truncation needs a style model (this one has no truncation)")
        if not 0.0 <= truncation <= 1.0:
            raise GanforgeError(f"--truncation must be in [0, 1], got {truncation}")
        controls["truncation"] = truncation
    labels = _labels(sampler, label, rows)
    device = sampler.device
    z_a = sampler.sample_latent(rows, generator=torch.Generator().manual_seed(from_seed)).to(device)
    z_b = sampler.sample_latent(rows, generator=torch.Generator().manual_seed(to_seed)).to(device)
    t = torch.linspace(0.0, 1.0, steps)
    path = lerp if method == "linear" else slerp
    frames = []
    if space == "w":
        if not (hasattr(sampler, "to_w") and hasattr(sampler, "from_w")):
            raise GanforgeError("--space w needs a style model (a sampler with to_w/from_w); use --space z")
        w_a = sampler.to_w(z_a, labels, **controls)
        w_b = sampler.to_w(z_b, labels, **controls)
        for w in path(w_a, w_b, t.to(device)):
            frames.append(sampler.from_w(w))
    else:
        for z in path(z_a, z_b, t.to(device)):
            if refine is not None:  # each point refined as a sample is, so the ends are `generate`'s samples
                z = refine.latents(sampler, z, labels)
            with torch.no_grad():
                frames.append(sampler(z, labels, **controls))
    images = torch.stack([f.float().cpu() for f in frames])  # (steps, rows, C, H, W) in [-1, 1]
    return images.add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def _labels(sampler, label: int | None, rows: int) -> Tensor | None:
    classes = sampler.num_classes
    if label is None:
        return (torch.arange(rows) % classes).to(sampler.device) if classes else None
    if not classes:
        raise GanforgeError("--class needs a conditional model; this one is unconditional")
    if not 0 <= label < classes:
        raise GanforgeError(f"--class must be in [0, {classes - 1}], got {label}")
    return torch.full((rows,), label, dtype=torch.long, device=sampler.device)


def write_interpolation(images: Tensor, out: str | Path, *, fps: float = 8.0, overwrite: bool = False) -> Path:
    """uint8 (steps, rows, C, H, W) -> an animated GIF (a frame per step, there and back) or a PNG strip."""
    from ganforge.fileio import atomic_write_bytes

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".png"):
        raise GanforgeError(f"--out must end in .gif (animation) or .png (strip), got {out.name!r}")
    if out.exists() and not overwrite:
        raise GanforgeError(f"{out} exists; pass --overwrite to replace it")
    if fps <= 0:
        raise GanforgeError(f"--fps must be > 0, got {fps}")
    import io

    from torchvision.utils import make_grid

    steps, rows = images.shape[:2]
    buffer = io.BytesIO()
    if suffix == ".png":  # rows x steps: each row one path, left to right
        strip = make_grid(images.transpose(0, 1).flatten(0, 1), nrow=steps, padding=2)
        _pil(strip).save(buffer, format="PNG")
    else:
        nrow = max(1, int(math.ceil(math.sqrt(rows))))
        frames = [_pil(make_grid(frame, nrow=nrow, padding=2)) for frame in images]
        frames += frames[-2:0:-1]  # back again, so the loop has no jump
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                       duration=int(round(1000 / fps)))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def _pil(image: Tensor):
    """uint8 (C, H, W), 1 or 3 channels (4: RGBA) -> a PIL image."""
    from PIL import Image

    array = image.permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array)
