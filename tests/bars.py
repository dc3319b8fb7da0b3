"""A tiny labelled image set whose class can be read off the pixels, for the conditional and InfoGAN tests.

Class k of 4: an 8x8 image whose rows 2k and 2k+1 are bright (a horizontal bar), the rest dark, with noise.
`bar_class` reads the class of any image back (the brightest pair of rows), so a test can tell whether a
generator drew the class it was asked for without training a classifier.
"""

from __future__ import annotations

import torch

from ganforge.data import DATASETS, TensorData

NUM_CLASSES = 4
NAME = "test-bars"


def make_bars(num: int = 512, *, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num) % NUM_CLASSES
    images = torch.rand(num, 1, 8, 8, generator=g) * 40  # dark background noise in [0, 40)
    rows = torch.arange(8)[None, :]
    bright = (rows // 2 == labels[:, None]).float()  # (N, 8): the class's two rows
    images = images + bright[:, None, :, None] * (200 + torch.rand(num, 1, 8, 1, generator=g) * 55)
    return TensorData(data=images.clamp(0, 255).to(torch.uint8), labels=labels, num_classes=NUM_CLASSES, name=NAME)


def bar_class(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, 8, 8) images (uint8 or model space) -> (N,) the class whose rows are brightest."""
    rows = images.float().mean(dim=(1, 3))  # (N, 8)
    return rows.view(len(images), NUM_CLASSES, 2).mean(2).argmax(1)


def unlabelled_bars(cfg) -> TensorData:
    data = make_bars()
    return TensorData(data=data.data, labels=None, num_classes=0, name=UNLABELLED)


UNLABELLED = "test-bars-unlabelled"
if NAME not in DATASETS:
    DATASETS.register(NAME)(lambda cfg: make_bars())
    DATASETS.register(UNLABELLED)(unlabelled_bars)
