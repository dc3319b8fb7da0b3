"""Integration: a mode-collapse remedy changes what it should, through the real trainer and the real metric.

On the 25-mode grid (VEEGAN / PacGAN protocol), a small minimax GAN trained briefly collapses onto a few
modes; the same network and steps with PacGAN packing (D judges 4 samples at once) spreads over many more.
Seeds are fixed, but the assertions are on the direction with a wide margin, never on exact floats: observed
on seeds 0..5 (800 steps), minimax captured 0-6 modes and PacGAN4 13-20.
"""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from ganforge.config import config_from_dict, merge
from ganforge.data.toy2d import GRID_STD, grid_centers
from ganforge.metrics.toy_modes import mode_metrics
from ganforge.sampling import generate
from ganforge.saved import load_generator
from ganforge.train.trainer import train

SEEDS = (0, 1)
STEPS = 800


def grid_modes(run_dir, *, seed: int, remedy: dict | None = None) -> dict[str, float]:
    """Train a small minimax MLP GAN on the grid (+ `remedy`, config sections) and score 2,500 samples."""
    raw = tiny_config(
        data={"name": "grid", "num_points": 10_000},
        model={"family": "mlp", "latent_dim": 2, "g_hidden": 64, "g_layers": 3, "d_hidden": 64, "d_layers": 2},
        loss={"name": "minimax"},
        train={"steps": STEPS, "seed": seed, "batch_size": 64, "log_every": STEPS, "sample_every": STEPS,
               "checkpoint_every": STEPS},
        health={"enabled": False},
    )
    cfg = config_from_dict(merge(raw, remedy or {}))
    result = train(cfg, run_dir)
    assert result.step == STEPS
    points = generate(load_generator(run_dir), 2500, seed=seed)  # (2500, 2)
    assert points.shape == (2500, 2) and torch.isfinite(points).all()
    return mode_metrics(points, grid_centers(), GRID_STD)


@pytest.mark.slow
def test_pacgan_captures_more_grid_modes_than_minimax(tmp_path):
    minimax = [grid_modes(tmp_path / f"minimax-{s}", seed=s)["modes"] for s in SEEDS]
    packed = [grid_modes(tmp_path / f"pacgan4-{s}", seed=s, remedy={"model": {"d_pack": 4}})["modes"] for s in SEEDS]
    # The minimax GAN has collapsed onto a small part of the grid ...
    assert max(minimax) <= 10, f"minimax was expected to collapse on this setting: {minimax} modes"
    # ... and packing, the only change, spreads it: per seed, and on average by a wide margin.
    assert all(p > m for p, m in zip(packed, minimax)), f"PacGAN4 {packed} vs minimax {minimax} modes per seed"
    assert sum(packed) / len(packed) >= sum(minimax) / len(minimax) + 6, \
        f"PacGAN4 {packed} vs minimax {minimax} modes"
