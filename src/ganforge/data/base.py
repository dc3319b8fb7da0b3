"""The common dataset type and the DATASETS registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.registry import Registry


@dataclass
class TensorData:
    """A whole dataset as tensors: what the trainer samples batches from."""

    data: Tensor  # uint8 images (N, C, H, W) in [0, 255], or float32 points (N, D)
    labels: Tensor | None  # int64 (N,) class indices, or None for unlabelled data
    num_classes: int  # number of classes (0 when unlabelled)
    name: str  # the dataset's registry name, for logs and metric cache keys
    # More per-example tensors, by batch key (N, ...): e.g. "a" input images of a translation task, "x_lowres".
    # uint8 ones are images (mapped to [-1, 1] like `data`); others pass through.
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.data.dtype == torch.uint8 and self.data.ndim == 4

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W) for images, (D,) for points."""
        return tuple(self.data.shape[1:])

    def __len__(self) -> int:
        return self.data.shape[0]

    def to_model_space(self, batch: Tensor) -> Tensor:
        """uint8 images -> float in [-1, 1] (the generator's tanh range); points pass through."""
        if batch.dtype == torch.uint8:
            return batch.float().div_(127.5).sub_(1.0)
        return batch


# A loader takes the data config and returns the whole dataset.
DATASETS: Registry[Callable[..., TensorData]] = Registry("dataset")


def load_dataset(cfg) -> TensorData:  # cfg: ganforge.config.DataConfig
    data = DATASETS[cfg.name](cfg)
    if cfg.limit is not None:
        data.data = data.data[: cfg.limit]
        data.labels = None if data.labels is None else data.labels[: cfg.limit]
        data.extras = {key: value[: cfg.limit] for key, value in data.extras.items()}
    if cfg.labels == "clusters":  # after the limit: the clusters are of the examples trained on
        from ganforge.data.clusters import cluster_labels

        data.labels, data.num_classes = cluster_labels(data.data, cfg.clusters, seed=cfg.seed), cfg.clusters
    return data


def image_size_of(cfg, default: tuple[int, int]) -> tuple[int, int]:
    """The [H, W] the config asks for ([S] means square), or the dataset's own size."""
    if cfg.image_size is None:
        return default
    size = list(cfg.image_size)
    return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])


def resize_images(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize uint8 (N, C, H, W) images with antialiased bicubic filtering; a no-op at the same size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    out = []
    for chunk in images.split(4096):  # bounded memory for big sets
        x = F.interpolate(chunk.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def set_channels(images: Tensor, channels: int | None) -> Tensor:
    """Convert uint8 images between 1 and 3 channels (luma for RGB->L, repetition for L->RGB)."""
    if channels is None or images.shape[1] == channels:
        return images
    if images.shape[1] == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if images.shape[1] in (3, 4) and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images[:, :3].float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    if images.shape[1] == 4 and channels == 3:
        return images[:, :3].contiguous()
    raise ValueError(f"cannot convert {images.shape[1]}-channel images to {channels} channels")
