"""Image-to-image and super-resolution datasets, registered by name (data.name), options under data.task.

Batch keys (what the families read): the target images are always "x" (pix2pix's B, CycleGAN's domain B, SR's
high-res images); the inputs are an extra, "a" for translation (A) and "x_lowres" for super-resolution.

- paired        data.root: A|B side by side in each file, or two subfolders A/ and B/ with matching file names
- unpaired      data.root with subfolders A/ and B/ (any sizes, counts may differ), or two datasets:
                data.task.source (domain A) and data.task.domain_b (domain B), e.g. mnist and fashion-mnist
- sr            low-res/high-res pairs made from any dataset (data.task.source; `folder` with data.root) by
                downsampling (bicubic or area, x2/x4), with random crops when data.task.crop is set
- mnist-edges   edge maps -> MNIST digits (paired; labels kept)
- mnist-m       MNIST-M-style colour digits (A) <-> MNIST (B), unpaired: A is drawn from the first half of
                MNIST's split and B from the second, so no A image has its own digit in B; data.channels=3
                gives B as 3-channel gray (needed for CycleGAN's identity loss)
- sr-photos     SR crops of scikit-image's bundled photos; split train and test use disjoint photos

Everything is a pure function of the config (data.task.seed for photo patches, crops and shuffles).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

from ganforge.data.base import DATASETS, TensorData, image_size_of, load_dataset, resize_images, set_channels
from ganforge.data.derived import mnist_edges, mnist_m_style, skimage_photos, sr_pairs
from ganforge.data.paired import load_paired_folders, load_side_by_side, load_unpaired_folders
from ganforge.errors import DataError

__all__ = ["SR_PHOTO_CROP", "mnist_m_task", "unpaired_rows"]

SR_PHOTO_CROP = 64  # sr-photos: high-res crop side when data.task.crop is unset


def _size(cfg) -> tuple[int, int] | None:
    return image_size_of(cfg, None) if cfg.image_size is not None else None


def _root(cfg, name: str) -> Path:
    if not cfg.root:
        raise DataError(f"dataset {name!r} needs a folder: pass --data-root DIR")
    return Path(cfg.root).expanduser()


def _split_dirs(root: Path, split: str) -> tuple[Path, Path] | None:
    """root/A + root/B, or CycleGAN's root/trainA + root/trainB (testA/testB for split test); None if neither."""
    for a, b in ((f"{split}A", f"{split}B"), ("A", "B")):
        if (root / a).is_dir() and (root / b).is_dir():
            return root / a, root / b
    return None


def _source(cfg, name: str | None, what: str):
    if not name:
        raise DataError(f"{what} needs data.task.source: the dataset to build it from (e.g. mnist, folder)")
    if name in IMAGE_TASKS:
        raise DataError(f"data.task.source {name!r} is itself an image-to-image dataset; name a plain one")
    return load_dataset(dataclasses.replace(cfg, name=name, limit=None))


@DATASETS.register("paired")
def paired(cfg) -> TensorData:
    root = _root(cfg, "paired")
    dirs = _split_dirs(root, cfg.split)
    kwargs = dict(size=_size(cfg), channels=cfg.channels, resize=cfg.resize)
    pairs = load_paired_folders(*dirs, **kwargs) if dirs else load_side_by_side(root, **kwargs)
    return TensorData(pairs.b, None, 0, "paired", extras={"a": pairs.a})


def unpaired_rows(n_a: int, n_b: int, *, seed: int) -> tuple[Tensor, Tensor]:
    """Row indices (N,) into A and B with N = max(n_a, n_b): every image used, rows paired at random.

    The trainer draws "a" and "x" with one index, so each set is shuffled on its own (the smaller one cycled)
    and row i holds two unrelated images.
    """
    n = max(n_a, n_b)
    g = torch.Generator().manual_seed(seed)
    rows_a = (torch.arange(n) % n_a)[torch.randperm(n, generator=g)]
    rows_b = (torch.arange(n) % n_b)[torch.randperm(n, generator=g)]
    return rows_a, rows_b


@DATASETS.register("unpaired")
def unpaired(cfg) -> TensorData:
    task = cfg.task
    if task.source or task.domain_b:
        if not (task.source and task.domain_b):
            raise DataError("unpaired from datasets needs both data.task.source (A) and data.task.domain_b (B)")
        a = _source(cfg, task.source, "unpaired").data
        b = _source(cfg, task.domain_b, "unpaired").data
    else:
        root = _root(cfg, "unpaired")
        dirs = _split_dirs(root, cfg.split)
        if dirs is None:
            raise DataError(f"unpaired data needs subfolders A/ and B/ (or {cfg.split}A/ and {cfg.split}B/) "
                            f"under {root}, or data.task.source and data.task.domain_b")
        loaded = load_unpaired_folders(*dirs, size=_size(cfg), channels=cfg.channels, resize=cfg.resize)
        a, b = loaded.a, loaded.b
    if a.shape[-2:] != b.shape[-2:]:
        raise DataError(f"domains A and B have different image sizes ({tuple(a.shape[-2:])} and "
                        f"{tuple(b.shape[-2:])}); set data.image_size")
    rows_a, rows_b = unpaired_rows(len(a), len(b), seed=task.seed)
    return TensorData(b[rows_b].contiguous(), None, 0, "unpaired", extras={"a": a[rows_a].contiguous()})


def _sr(images: Tensor, labels: Tensor | None, num_classes: int, cfg, name: str) -> TensorData:
    task = cfg.task
    if task.crop is not None and task.crops_per_image > 1:
        images = images.repeat_interleave(task.crops_per_image, dim=0)
        labels = None if labels is None else labels.repeat_interleave(task.crops_per_image)
    low, high = sr_pairs(images, scale=task.scale, mode=task.downsample, crop=task.crop, seed=task.seed)
    return TensorData(high, labels, num_classes, name, extras={"x_lowres": low})


@DATASETS.register("sr")
def sr(cfg) -> TensorData:
    base = _first(_source(cfg, cfg.task.source, "sr"), cfg.limit)
    if not base.is_image:
        raise DataError(f"sr needs images; dataset {cfg.task.source!r} holds points")
    return _sr(base.data, base.labels, base.num_classes, cfg, f"sr-{cfg.task.source}")


@DATASETS.register("sr-photos")
def sr_photos(cfg) -> TensorData:
    crop = cfg.task.crop or SR_PHOTO_CROP
    photos = [set_channels(p[None], cfg.channels)[0] for p in skimage_photos(cfg.split)]
    n = cfg.task.crops_per_image
    g = torch.Generator().manual_seed(cfg.task.seed)
    crops = []
    for photo in photos:  # n random crops of each photo (of different sizes), then SR pairs of the crops
        h, w = photo.shape[-2:]
        ys, xs = torch.randint(h - crop + 1, (n,), generator=g), torch.randint(w - crop + 1, (n,), generator=g)
        crops += [photo[:, y:y + crop, x:x + crop] for y, x in zip(ys.tolist(), xs.tolist())]
    high = torch.stack(crops)
    if cfg.image_size is not None:
        high = resize_images(high, image_size_of(cfg, (crop, crop)))
    low, high = sr_pairs(high, scale=cfg.task.scale, mode=cfg.task.downsample)
    return TensorData(high, None, 0, "sr-photos", extras={"x_lowres": low})


def _first(data: TensorData, limit: int | None) -> TensorData:
    """The first `limit` rows before any derived work (load_dataset's own limit comes after the loader)."""
    if limit is not None:
        data.data = data.data[:limit]
        data.labels = None if data.labels is None else data.labels[:limit]
    return data


def _mnist(cfg, limit: int | None) -> TensorData:
    return _first(load_dataset(dataclasses.replace(cfg, name="mnist", limit=None)), limit)


@DATASETS.register("mnist-edges")
def mnist_edges_set(cfg) -> TensorData:
    digits = _mnist(cfg, cfg.limit)
    return TensorData(digits.data, digits.labels, 10, "mnist-edges", extras={"a": mnist_edges(digits.data)})


def mnist_m_task(digits: Tensor, labels: Tensor, *, seed: int, split: str) -> dict[str, Tensor]:
    """MNIST-M-style A from the first half of `digits`, plain MNIST B from the second half (unpaired).

    {"a", "a_labels", "b", "b_labels"}; A uses the photos of `split` (disjoint between train and test).
    """
    half = len(digits) // 2
    a = mnist_m_style(digits[:half], seed=seed, split=split)
    return {"a": a, "a_labels": labels[:half], "b": digits[half:2 * half], "b_labels": labels[half:2 * half]}


@DATASETS.register("mnist-m")
def mnist_m_set(cfg) -> TensorData:
    digits = _mnist(cfg, None if cfg.limit is None else 2 * cfg.limit)  # A and B halves
    task = mnist_m_task(digits.data, digits.labels, seed=cfg.task.seed, split=cfg.split)
    rows_a, rows_b = unpaired_rows(len(task["a"]), len(task["b"]), seed=cfg.task.seed)
    return TensorData(task["b"][rows_b], task["b_labels"][rows_b], 10, "mnist-m",
                      extras={"a": task["a"][rows_a], "a_labels": task["a_labels"][rows_a]})


IMAGE_TASKS = ("paired", "unpaired", "sr", "sr-photos", "mnist-edges", "mnist-m")
