"""Built-in derived tasks: image-to-image and super-resolution pairs made offline from images already at hand.

- mnist_edges(digits) -> edge maps: edges -> digits is a small pix2pix task (like edges2shoes).
- mnist_m_style(digits, seed=...) -> MNIST-M-style colour digits (Ganin et al. 2016): digits -> MNIST-M is a
  small unpaired/paired domain-translation task; the photos come from scikit-image's wheel, never the network.
- sr_pairs(images, scale=...) -> (low-res, high-res) pairs for super-resolution.
- skimage_photos(split) -> the bundled colour photos, split into disjoint train and test sets.

Everything is a pure function of its inputs and `seed` (a private torch.Generator; the global RNG is left
alone), so a dataset built twice is the same dataset. Inputs and outputs are uint8 (N, C, H, W).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ganforge.data.base import resize_images, set_channels
from ganforge.errors import ConfigError, DataError

__all__ = ["PHOTO_SPLITS", "mnist_edges", "mnist_m_style", "skimage_photos", "sr_pairs"]

# Colour photos shipped in scikit-image's wheel (skimage/data). Split by photo, not by patch, so test images
# are blended over textures never seen in training. Left out: motorcycle_right.png (the stereo twin of
# motorcycle_left.png: it would leak into the other split), retina.jpg and hubble_deep_field.jpg (mostly
# black: blending over black gives back the plain digit), and the synthetic or grayscale images.
PHOTO_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut.png", "coffee.png", "motorcycle_left.png", "ihc.png"),
    "test": ("chelsea.png", "rocket.jpg"),
}
PHOTO_SCALE = 10  # photos are resized so their short side is this many digit sides (see mnist_m_style)
SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4.0  # a 0 -> 1 step reads 1


def _check_images(name: str, images: Tensor) -> Tensor:
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise DataError(f"{name} expects uint8 images (N, C, H, W), got {shape}"
                        + (f" of {images.dtype}" if isinstance(images, Tensor) else ""))
    return images


def _gray(name: str, images: Tensor) -> Tensor:
    images = _check_images(name, images)
    return images if images.shape[1] == 1 else set_channels(images, 1)  # (N, 1, H, W)


# --- edges -----------------------------------------------------------------------------------------------


def mnist_edges(images: Tensor, *, threshold: float = 0.3) -> Tensor:
    """Binary edge maps (N, 1, H, W), uint8 in {0, 255}, of grayscale (or RGB, taken as luma) images.

    Sobel gradient magnitude of the image in [0, 1], scaled so that a sharp 0 -> 1 step reads 1, thresholded
    at `threshold`: a pixel is an edge where the intensity changes by more than that across it. On MNIST
    this traces both sides of every stroke, giving outline drawings of the digits (a few pixels wide, like
    the HED edges of pix2pix's edges2shoes). Borders are replicated, so the frame is never an edge.
    Deterministic: no randomness at all.
    """
    if not 0.0 < threshold < 1.5:
        raise ConfigError(f"edge threshold must be in (0, 1.5), got {threshold}")
    gray = _gray("mnist_edges", images)
    kernels = torch.stack([SOBEL, SOBEL.t()])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    out = []
    for chunk in gray.split(4096):  # bounded memory for big sets
        x = F.pad(chunk.float().div_(255.0), (1, 1, 1, 1), mode="replicate")  # (n, 1, H+2, W+2)
        g = F.conv2d(x, kernels)  # (n, 2, H, W)
        edge = g.square().sum(1, keepdim=True).sqrt_() > threshold  # (n, 1, H, W)
        out.append(edge.to(torch.uint8).mul_(255))
    return torch.cat(out)


# --- bundled photos and MNIST-M --------------------------------------------------------------------------


def _photo_dir() -> Path:
    try:
        import skimage
    except ImportError as err:
        raise DataError("the bundled photos come from scikit-image: pip install scikit-image") from err
    return Path(skimage.__file__).parent / "data"


@lru_cache(maxsize=4)
def _load_photos(split: str) -> tuple[Tensor, ...]:
    names = PHOTO_SPLITS["train"] + PHOTO_SPLITS["test"] if split == "all" else PHOTO_SPLITS[split]
    root = _photo_dir()
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DataError(f"scikit-image's bundled photos {', '.join(missing)} are missing from {root}; "
                        "reinstall scikit-image (pip install --force-reinstall scikit-image)")
    photos = []
    for name in names:
        with Image.open(root / name) as img:
            photos.append(torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).contiguous())
    return tuple(photos)  # each (3, H, W) uint8


def skimage_photos(split: str = "train") -> list[Tensor]:
    """The colour photos of PHOTO_SPLITS[split] ("train", "test" or "all"), each uint8 (3, H, W), in list order.

    Read from the installed scikit-image package (its wheel bundles them); nothing is downloaded.
    """
    if split not in ("train", "test", "all"):
        raise ConfigError(f"photo split must be 'train', 'test' or 'all', got {split!r}")
    return [p.clone() for p in _load_photos(split)]


@lru_cache(maxsize=8)
def _patch_sources(split: str, short_side: int) -> tuple[Tensor, ...]:
    out = []
    for photo in _load_photos(split):
        h, w = photo.shape[-2:]
        f = short_side / min(h, w)
        out.append(resize_images(photo[None], (round(h * f), round(w * f)))[0])
    return tuple(out)


def mnist_m_style(images: Tensor, *, seed: int, split: str = "train") -> Tensor:
    """MNIST-M-style digits (N, 3, H, W) uint8: |patch - digit| per channel, as Ganin et al. (2016) made MNIST-M.

    Each digit (grayscale (N, 1, H, W); RGB is taken as luma) gets a random H x W patch of a random photo of
    PHOTO_SPLITS[split]; where the digit is black the patch shows unchanged, where it is white the patch is
    inverted, so the digit stays readable on any texture while colour and background vary. The photos are
    first resized to a short side of PHOTO_SCALE digit sides (280 pixels for 28x28 digits), so a patch holds
    a comparable amount of texture whatever the digit size. Use split="test" for a test set: its photos are
    disjoint from the training ones. The same (images, seed, split) always gives the same result.
    """
    digits = _gray("mnist_m_style", images)
    n, _, h, w = digits.shape
    if split not in PHOTO_SPLITS:
        raise ConfigError(f"MNIST-M split must be 'train' or 'test', got {split!r}")
    photos = _patch_sources(split, PHOTO_SCALE * max(h, w))
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(photos), (n,), generator=g)  # photo of each digit
    where = torch.rand(n, 2, generator=g)  # patch corner, as a fraction of the free range
    out = torch.empty((n, 3, h, w), dtype=torch.uint8)
    for k, photo in enumerate(photos):
        idx = (which == k).nonzero().flatten()
        if idx.numel() == 0:
            continue
        ph, pw = photo.shape[-2:]
        ys = (where[idx, 0] * (ph - h + 1)).long()  # (m,) in [0, ph - h]
        xs = (where[idx, 1] * (pw - w + 1)).long()
        rows = (ys[:, None] + torch.arange(h))[:, :, None]  # (m, h, 1)
        cols = (xs[:, None] + torch.arange(w))[:, None, :]  # (m, 1, w)
        patches = photo[:, rows, cols].transpose(0, 1)  # (m, 3, h, w)
        out[idx] = (patches.short() - digits[idx].short()).abs_().to(torch.uint8)  # digit broadcast over RGB
    return out


# --- super-resolution pairs -------------------------------------------------------------------------------


def _crop_size(crop: int | tuple[int, int] | None, h: int, w: int, scale: int) -> tuple[int, int]:
    if crop is None:  # the whole image, trimmed at the bottom/right to a multiple of scale
        size = ((h // scale) * scale, (w // scale) * scale)
        if min(size) == 0:
            raise DataError(f"{h}x{w} images are smaller than the SR scale {scale}")
        return size
    size = (crop, crop) if isinstance(crop, int) else tuple(crop)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ConfigError(f"SR crop must be a positive int or (H, W), got {crop!r}")
    if size[0] % scale or size[1] % scale:
        raise ConfigError(f"SR crop {size[0]}x{size[1]} must be a multiple of the scale {scale}")
    if size[0] > h or size[1] > w:
        raise DataError(f"SR crop {size[0]}x{size[1]} is larger than the {h}x{w} images")
    return size  # type: ignore[return-value]


def sr_pairs(
    images: Tensor,
    *,
    scale: int,
    mode: str = "bicubic",
    crop: int | tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """(low-res (N, C, h/scale, w/scale), high-res (N, C, h, w)) uint8 pairs for training SR models.

    High-res: a random crop x h x w of each image (crop, a multiple of scale; a fresh position per image,
    drawn from `seed`), or with crop=None the whole image trimmed at the bottom/right to a multiple of scale.
    Low-res: the high-res image downsampled by scale, with antialiased bicubic filtering (mode="bicubic",
    the usual SR benchmark degradation) or the mean of each scale x scale block (mode="area", exact and
    invertible by pixel replication on average). Draw crops again with another seed for another epoch.
    """
    images = _check_images("sr_pairs", images)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
        raise ConfigError(f"SR scale must be an integer >= 2, got {scale!r}")
    if mode not in ("bicubic", "area"):
        raise ConfigError(f"SR downsampling mode must be 'bicubic' or 'area', got {mode!r}")
    n, c, h, w = images.shape
    ch, cw = _crop_size(crop, h, w, scale)
    if crop is None:
        high = images[:, :, :ch, :cw].contiguous()
    else:
        g = torch.Generator().manual_seed(seed)
        ys = torch.randint(h - ch + 1, (n,), generator=g)
        xs = torch.randint(w - cw + 1, (n,), generator=g)
        rows = (ys[:, None] + torch.arange(ch))[:, None, :, None].expand(n, c, ch, cw)  # (N, C, ch, cw)
        cols = (xs[:, None] + torch.arange(cw))[:, None, None, :].expand(n, c, ch, cw)
        high = _crop(images, rows, cols)
    size = (ch // scale, cw // scale)
    if mode == "bicubic":
        low = resize_images(high, size)
    else:
        low = torch.cat([F.avg_pool2d(x.float(), scale).round_().clamp_(0, 255).to(torch.uint8)
                         for x in high.split(4096)])
    return low, high


def _crop(images: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """images[i, :, rows[i], cols[i]] for every i: per-image crops without a Python loop."""
    n, c = images.shape[:2]
    batch = torch.arange(n)[:, None, None, None]
    chan = torch.arange(c)[None, :, None, None]
    return images[batch, chan, rows, cols]  # (N, C, ch, cw)
