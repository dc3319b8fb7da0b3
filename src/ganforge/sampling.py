"""Noise -> samples: batched generation, sample grids (images or 2D scatter plots), PNG/NPZ export."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError


def class_cycle(num: int, num_classes: int) -> Tensor | None:
    """Classes 0, 1, 2, ... repeated to length num (None for an unconditional generator, num_classes 0)."""
    return torch.arange(num) % num_classes if num_classes else None


def default_classes(generator: nn.Module, num: int, *, seed: int = 0) -> Tensor | None:
    """The classes a conditional generator gets when none are asked for: 0, 1, 2, ... cycling; or, for a model
    trained on k-means clusters (its spec's class_counts), clusters drawn at random in their training proportions,
    from `seed` (an RNG of their own: the noise stays that of the same seed). None for an unconditional one."""
    counts = getattr(generator.spec, "class_counts", ())
    if not counts:
        return class_cycle(num, getattr(generator, "num_classes", 0))
    rng = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.tensor(counts, dtype=torch.float64), num, replacement=True, generator=rng)


@torch.no_grad()
def generate(generator: nn.Module, num: int, *, seed: int = 0, batch_size: int = 256,
             labels: Tensor | None = None, device: str | torch.device | None = None, **controls) -> Tensor:
    """`num` samples on the CPU, reproducible from `seed` (its own RNG: the global stream is untouched).

    Images come back as uint8 (N, C, H, W); points as float32 (N, D). Conditional generators get `labels`
    (N,) or, if None, default_classes (0, 1, 2, ... cycling; clusters in proportion). `controls` go to a
    sampler's forward (InfoGAN codes, truncation): tensors with one row per sample are sliced with the batches,
    anything else is passed as is.
    """
    device = device or next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    if labels is None:
        labels = default_classes(generator, num, seed=seed)
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        z = generator.sample_latent(n, generator=rng).to(device)
        y = None if labels is None else labels[start : start + n].to(device)
        batch_controls = {name: _rows(value, start, n, device) for name, value in controls.items()}
        out.append(to_output(generator(z, y, **batch_controls).float().cpu(), generator.spec.is_image))
    return torch.cat(out) if out else torch.empty(0)


def _rows(value, start: int, n: int, device) -> object:
    """This batch's rows of a control: tensors are sliced (also inside a dict, e.g. InfoGAN's codes), numbers kept."""
    if isinstance(value, Tensor):
        return value[start : start + n].to(device)
    if isinstance(value, dict):
        return {key: _rows(item, start, n, device) for key, item in value.items()}
    return value


def to_output(samples: Tensor, is_image: bool) -> Tensor:
    """Model space -> user space: [-1, 1] images to uint8; points unchanged."""
    if not is_image:
        return samples
    return samples.add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def points_image(points: Tensor, real_points: Tensor | None = None, *, size: int = 384) -> Tensor:
    """A scatter plot as an image (3, size, size): real data in grey, samples in red, no plotting library."""
    ref = real_points if real_points is not None else points
    finite = points[torch.isfinite(points).all(1)]
    lo = torch.minimum(ref.min(0).values, finite.min(0).values if len(finite) else ref.min(0).values)
    hi = torch.maximum(ref.max(0).values, finite.max(0).values if len(finite) else ref.max(0).values)
    pad = (hi - lo).clamp_min(1e-3) * 0.08
    lo, hi = lo - pad, hi + pad
    canvas = torch.ones(3, size, size)

    def plot(p: Tensor, color: tuple[float, float, float]) -> None:
        p = p[torch.isfinite(p).all(1)]
        xy = ((p - lo) / (hi - lo) * (size - 1)).round().long().clamp(0, size - 1)
        for dx in (0, 1):  # 2x2 dots stay visible in a downscaled view
            for dy in (0, 1):
                cols = (xy[:, 0] + dx).clamp(max=size - 1)
                rows = (size - 1 - xy[:, 1] - dy).clamp(min=0)
                for c in range(3):
                    canvas[c, rows, cols] = color[c]

    if real_points is not None:
        plot(real_points[:, :2].float(), (0.75, 0.75, 0.75))
    plot(points[:, :2].float(), (0.85, 0.1, 0.1))
    return canvas


def save_samples(samples: Tensor, path: Path, *, real_points: Tensor | None = None) -> Tensor:
    """A grid PNG of images in [-1, 1], or a scatter PNG of points; returns the image written, (C, H, W) in [0, 1]."""
    from torchvision.utils import make_grid, save_image  # here: torchvision doubles the CLI's start-up time

    path.parent.mkdir(parents=True, exist_ok=True)
    if samples.ndim == 4:
        image = make_grid(samples, nrow=int(math.ceil(math.sqrt(len(samples)))), normalize=True, value_range=(-1, 1))
    else:
        image = points_image(samples, real_points)
    save_image(image, path)
    return image


def write_outputs(samples: Tensor, out: Path, *, fmt: str, grid: bool, overwrite: bool,
                  nrow: int | None = None) -> list[Path]:
    """Write user-space samples (uint8 images or points) as PNG files, one grid PNG (`nrow` images a row; default
    a square), or one .npz."""
    from torchvision.utils import make_grid, save_image  # imported here: see save_samples

    is_image = samples.ndim == 4
    if fmt == "npz":
        target = out if out.suffix == ".npz" else out / "samples.npz"
        _refuse_existing(target, overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(target, **{"images" if is_image else "points": samples.numpy()})
        return [target]
    if fmt != "png":
        raise GanforgeError(f"unknown format {fmt!r}; valid: png, npz")
    if grid or not is_image:
        target = out if out.suffix == ".png" else out / "grid.png"
        _refuse_existing(target, overwrite)
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_image:
            save_image(make_grid(samples.float() / 255.0, nrow=nrow or int(math.ceil(math.sqrt(len(samples))))), target)
        else:
            save_image(points_image(samples), target)
        return [target]
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise GanforgeError(f"output directory {out} is not empty; pass --overwrite to write into it")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    width = max(6, len(str(len(samples))))
    for i, image in enumerate(samples):
        p = out / f"{i:0{width}d}.png"
        save_image(image.float() / 255.0, p)
        paths.append(p)
    return paths


def _refuse_existing(target: Path, overwrite: bool) -> None:
    if target.exists() and not overwrite:
        raise GanforgeError(f"{target} exists; pass --overwrite to replace it")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_MODE_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


def read_image_files(source: Path, channels: int) -> list[tuple[str, Tensor]]:
    """(name, uint8 (C, H, W)) for an image file or every image in a folder; all read before anything is written.

    A palette image counts as RGB (RGBA with transparency); an image whose channel count differs from the
    model's is an error naming the file, as is a file that cannot be read.
    """
    from PIL import Image, UnidentifiedImageError

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise GanforgeError(f"{source} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    elif source.exists():
        files = [source]
    else:
        raise GanforgeError(f"{source} not found")
    images = []
    for path in files:
        try:
            with Image.open(path) as im:
                im.load()
                if im.mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif im.mode in ("I;16", "I", "F"):
                    im = im.convert("L")
                found = _MODE_CHANNELS.get(im.mode)
                if found != channels:
                    raise GanforgeError(f"{path}: a {im.mode} image ({found or len(im.getbands())} channels); "
                                        f"this model takes {channels}-channel images")
                array = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as err:
            raise GanforgeError(f"cannot read image {path}: {err}") from None
        tensor = torch.from_numpy(array.copy())
        tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        images.append((path.stem, tensor.contiguous()))
    return images


def translate_files(sampler, source: Path, out: Path, *, direction: str | None = None,
                    overwrite: bool = False) -> list[Path]:
    """Run a translate/upscale sampler on an image or a folder; one PNG per input, named after it, in `out`.

    Every input is read and translated before the first file is written, so a bad input leaves nothing
    half-written; existing outputs are kept unless `overwrite`.
    """
    from torchvision.utils import save_image

    images = read_image_files(source, sampler.input_shape(direction)[0])
    targets = [out / f"{name}.png" for name, _ in images]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise GanforgeError(f"{existing[0]} exists; pass --overwrite to replace it")
    results = [sampler.translate(image[None], direction=direction)[0] for _, image in images]
    out.mkdir(parents=True, exist_ok=True)
    for target, result in zip(targets, results):
        save_image(result.float() / 255.0, target)
    return targets
