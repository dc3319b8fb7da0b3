"""Where evaluation data comes from: `--real DIR_OR_DATASET` and `--fake DIR_OR_NPZ`.

real: a dataset name of `ganforge.data.DATASETS`, optionally with its split (`mnist`, `mnist:test`), a
      folder of images, or an .npz like the fake ones.
fake: an .npz written by `ganforge generate --format npz` (key `images`: uint8 (N, C, H, W), or `points`:
      float (N, 2); optional `labels`: int (N,), the requested classes of a conditional generator), or a
      folder of images (class subfolders give labels).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import DataError


@dataclass
class Samples:
    data: Tensor  # uint8 images (N, C, H, W) in [0, 255], or float points (N, D)
    labels: Tensor | None = (
        None  # int64 (N,): true classes (real) or requested classes (generated); None if none
    )
    name: str | None = (
        None  # identity in reference-statistics cache keys ("mnist", "folder-<digest>"); None: no cache
    )
    split: str = ""  # "train" / "test" for datasets that have splits
    num_classes: int = 0  # number of classes (0 when unlabelled)

    @property
    def is_image(self) -> bool:
        return self.data.dtype == torch.uint8 and self.data.ndim == 4

    def __len__(self) -> int:
        return len(self.data)


def content_digest(data: Tensor) -> str:
    """Short sha256 of a tensor's bytes and shape: the cache identity of a folder or file of samples."""
    h = hashlib.sha256(str((tuple(data.shape), str(data.dtype))).encode())
    h.update(data.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def subset(samples: Samples, num: int | None, *, seed: int = 0) -> Samples:
    """A seeded random subset of num samples (all of them when num is None or not smaller)."""
    if num is None or num >= len(samples):
        return samples
    if num < 1:
        raise ValueError(f"subset size must be >= 1, got {num}")
    idx = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))[:num].sort().values
    name = None if samples.name is None else f"{samples.name}[{num}@{seed}]"
    labels = None if samples.labels is None else samples.labels[idx]
    return Samples(samples.data[idx], labels, name, samples.split, samples.num_classes)


def read_npz(path: str | Path) -> Samples:
    """Samples from an .npz holding `images` (uint8 (N, C, H, W)) or `points` (float (N, D)), and `labels`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {path} as .npz: {err}") from None
    if "images" in arrays:
        data = arrays["images"]
        if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1] not in (1, 3, 4):
            raise DataError(
                f"{path}: 'images' must be uint8 (N, C, H, W) with C in 1, 3, 4, got {data.dtype} "
                f"{data.shape}"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(data))
    elif "points" in arrays:
        data = arrays["points"]
        if not np.issubdtype(data.dtype, np.floating) or data.ndim != 2:
            raise DataError(f"{path}: 'points' must be float (N, D), got {data.dtype} {data.shape}")
        tensor = torch.from_numpy(data.astype(np.float32))
    else:
        raise DataError(f"{path} holds neither 'images' nor 'points' (keys: {', '.join(arrays) or 'none'})")
    labels = arrays.get("labels")
    if labels is not None:
        if labels.ndim != 1 or len(labels) != len(tensor) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"{path}: 'labels' must be integers (N,) with N = {len(tensor)}, got {labels.dtype} "
                f"{labels.shape}"
            )
        labels = torch.from_numpy(labels.astype(np.int64))
    num_classes = int(labels.max()) + 1 if labels is not None and len(labels) else 0
    return Samples(tensor, labels, f"npz-{content_digest(tensor)}", "", num_classes)


def read_folder(path: str | Path) -> Samples:
    from ganforge.data.folder import load_image_folder

    loaded = load_image_folder(path)
    return Samples(
        loaded.images, loaded.labels, f"folder-{content_digest(loaded.images)}", "", len(loaded.class_names)
    )


def resolve_real(
    spec: str,
    *,
    split: str = "train",
    limit: int | None = None,
    data_root: str | Path | None = None,
    download: bool = True,
    seed: int = 0,
) -> Samples:
    """Real samples from a dataset name (`name` or `name:split`), a folder of images or an .npz file.

    limit keeps a seeded random subset of that many samples (part of the cache key). data_root is where the
    dataset's files are (see ganforge.data); download allows fetching missing files.
    """
    from ganforge.data import DATASETS, load_dataset

    name, _, split_given = spec.partition(":")
    if name in DATASETS and name != "folder":
        from ganforge.config import DataConfig

        split = split_given or split
        cfg = DataConfig(
            name=name, root=None if data_root is None else str(data_root), download=download, split=split
        )
        cfg.validate()
        data = load_dataset(cfg)
        samples = Samples(data.data, data.labels, data.name, split, data.num_classes)
    elif Path(spec).expanduser().is_dir():
        samples = read_folder(Path(spec).expanduser())
    elif Path(spec).expanduser().is_file() and spec.endswith(".npz"):
        samples = read_npz(Path(spec).expanduser())
    else:
        names = ", ".join(n for n in DATASETS.names() if n != "folder")
        raise DataError(
            f"real data {spec!r} is neither a dataset ({names}; optionally name:split) nor a folder "
            "of images or an .npz file"
        )
    return subset(samples, limit, seed=seed)


def resolve_fake(spec: str | Path, *, limit: int | None = None) -> Samples:
    """Generated samples from an .npz (`ganforge generate --format npz`) or a folder of images.

    Fake sets are never cached by name (a new checkpoint writes new samples to the same path).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        samples = read_folder(path)
    elif path.is_file() and path.suffix == ".npz":
        samples = read_npz(path)
    else:
        raise DataError(f"generated samples {str(spec)!r} must be an .npz file or a folder of images")
    samples.name = None
    if limit is not None:
        samples = Samples(
            samples.data[:limit],
            None if samples.labels is None else samples.labels[:limit],
            None,
            "",
            samples.num_classes,
        )
    return samples


def training_samples(data) -> Samples:  # data: ganforge.data.TensorData
    """A run's training data as evaluation samples, at the size the model trains at.

    The name carries a digest of the content, so cached reference statistics of a resized or limited set never
    collide with the dataset's own; the part before "[" still names the dataset (domain classifier, toy modes).
    """
    return Samples(data.data, data.labels, f"{data.name}[{content_digest(data.data)}]", "train", data.num_classes)
