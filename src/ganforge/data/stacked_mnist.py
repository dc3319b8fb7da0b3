"""Stacked MNIST (Metz et al. 2017; PacGAN's protocol, Lin et al. 2018): three MNIST digits as R, G, B.

Each image stacks three MNIST images drawn uniformly at random (with replacement) from the chosen split as
its channels, so there are 10^3 = 1,000 modes. PacGAN trains on 128,000 such images; the triples come from a
generator seeded with `data.seed`, so the dataset is the same in every run with that seed. The label of an
image is its mode, 100 * red digit + 10 * green digit + blue digit (0..999), which
`ganforge.metrics.stacked_mnist` recovers from generated images with the MNIST classifier.
"""

from __future__ import annotations

import dataclasses

import torch

from ganforge.data.base import DATASETS, TensorData
from ganforge.errors import ConfigError

STACKED_SIZE = 128_000  # training images in PacGAN's protocol
NUM_MODES = 1000


def stack_digits(images: torch.Tensor, labels: torch.Tensor, triples: torch.Tensor) -> TensorData:
    """(N, 1, H, W) digits and (M, 3) rows of them -> (M, 3, H, W) stacked images labelled by mode."""
    stacked = images[triples.flatten()].reshape(len(triples), 3, *images.shape[-2:])  # (M, 3, H, W)
    digits = labels[triples]  # (M, 3)
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    return TensorData(stacked.contiguous(), modes.long(), NUM_MODES, "stacked-mnist")


@DATASETS.register("stacked-mnist")
def stacked_mnist(cfg) -> TensorData:
    from ganforge.data.torchvision_sets import mnist

    if cfg.channels not in (None, 3):
        raise ConfigError(f"stacked-mnist images have 3 channels (one digit each); data.channels {cfg.channels} "
                          "cannot be used")
    base = mnist(dataclasses.replace(cfg, name="mnist", channels=None, limit=None))  # resized once, 1 channel
    g = torch.Generator().manual_seed(cfg.seed)
    triples = torch.randint(len(base), (STACKED_SIZE, 3), generator=g)
    if cfg.limit is not None:  # only build what will be used (the first `limit` images, as load_dataset keeps)
        triples = triples[: cfg.limit]
    return stack_digits(base.data, base.labels, triples)
