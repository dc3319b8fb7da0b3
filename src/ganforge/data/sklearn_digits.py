"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, offline, upsampled for conv nets."""

from __future__ import annotations

import torch

from ganforge.data.base import DATASETS, TensorData, image_size_of, resize_images, set_channels


@DATASETS.register("digits")
def digits(cfg) -> TensorData:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    # Pixel values are 0..16; scale to 0..255 uint8 so every image dataset shares one format.
    images = torch.from_numpy(bunch.images).float().mul_(255.0 / 16.0).round_().to(torch.uint8).unsqueeze(1)
    images = resize_images(images, image_size_of(cfg, (32, 32)))  # (N, 1, H, W)
    images = set_channels(images, cfg.channels)
    labels = torch.from_numpy(bunch.target).long()
    return TensorData(images.contiguous(), labels, 10, "digits")
