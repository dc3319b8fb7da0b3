"""Datasets as in-memory tensors: one file per source, each registered by name in DATASETS.

Every loader returns a `TensorData`: uint8 images (N, C, H, W) or float points (N, D), plus optional int64
labels. Small datasets live on the training device as one tensor, so the hot loop does no per-image work.
"""

from __future__ import annotations

from ganforge.data.base import DATASETS, TensorData, load_dataset, resize_images

# Importing the source modules registers their datasets.
from ganforge.data import toy2d, sklearn_digits, torchvision_sets, image_folder, stacked_mnist, image2image_sets  # noqa: E402,F401,E501  isort: skip

__all__ = ["DATASETS", "TensorData", "load_dataset", "resize_images"]
