"""Toy 2D distributions: the PacGAN / VEEGAN mode-collapse benchmark sets and a swiss roll.

Protocol constants exactly as the papers: ring = 8 Gaussians on the unit circle with std 0.01;
grid = 25 Gaussians at {-4, -2, 0, 2, 4}^2 with std 0.05.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganforge.data.base import DATASETS, TensorData

RING_STD = 0.01  # std of each ring mode (VEEGAN / PacGAN)
GRID_STD = 0.05  # std of each grid mode (VEEGAN / PacGAN)


def ring_centers(num_modes: int = 8, radius: float = 1.0) -> Tensor:
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return (torch.stack([angles.cos(), angles.sin()], dim=1) * radius).float()  # (K, 2)


def grid_centers() -> Tensor:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(axis, axis)  # (25, 2)


def gaussian_mixture(centers: Tensor, std: float, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """n points from an equal-weight mixture; returns (points (n, 2), mode index (n,))."""
    modes = torch.randint(len(centers), (n,), generator=generator)
    points = centers[modes] + std * torch.randn(n, centers.shape[1], generator=generator)
    return points, modes


def _generator(cfg) -> torch.Generator:
    # The dataset is a fixed sample: seeded apart from the training seed, so every run sees the same points.
    return torch.Generator().manual_seed(1234)


@DATASETS.register("ring")
def ring(cfg) -> TensorData:
    points, modes = gaussian_mixture(ring_centers(), RING_STD, cfg.num_points, _generator(cfg))
    return TensorData(points, modes, 8, "ring")


@DATASETS.register("grid")
def grid(cfg) -> TensorData:
    points, modes = gaussian_mixture(grid_centers(), GRID_STD, cfg.num_points, _generator(cfg))
    return TensorData(points, modes, 25, "grid")


@DATASETS.register("spiral")
def spiral(cfg) -> TensorData:
    """A 2D swiss roll (scikit-learn's formula), scaled to about [-1, 1]^2."""
    g = _generator(cfg)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(cfg.num_points, generator=g))
    points = torch.stack([t * t.cos(), t * t.sin()], dim=1) / 15.0
    points = points + 0.02 * torch.randn(points.shape, generator=g)
    return TensorData(points.float(), None, 0, "spiral")
