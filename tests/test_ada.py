"""ADA (adaptive discriminator augmentation): the p heuristic, its state, and the transforms."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.augment import ADA, build_augment
from ganforge.config import config_from_dict
from ganforge.errors import ConfigError
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.stats import StatsCollector, read_metrics
from ganforge.train.trainer import train


def test_p_rises_when_d_is_sure_of_the_reals_and_falls_otherwise() -> None:
    ada = ADA(target=0.6, speed_kimg=1.0, interval=2, p=0.5)
    ada.observe(torch.full((100,), 3.0))  # r_t = 1 > target: D overfits, augment more
    assert float(ada.p) == 0.5  # adjusts only every `interval` observations
    ada.observe(torch.full((100,), 3.0))
    assert float(ada.p) == pytest.approx(0.5 + 200 / 1000)  # sign(r_t - target) * images / (speed_kimg * 1000)
    assert float(ada.last_rt) == 1.0
    for _ in range(2):
        ada.observe(torch.tensor([1.0, -1.0, -1.0, -1.0]))  # r_t = -0.5 < target
    assert float(ada.p) == pytest.approx(0.7 - 8 / 1000)
    for _ in range(40):
        ada.observe(torch.full((100,), -2.0))
    assert float(ada.p) == 0.0  # clamped to [0, max_p]
    fixed = ADA(p=0.3, adaptive=False)
    for _ in range(8):
        fixed.observe(torch.ones(10))
    assert float(fixed.p) == pytest.approx(0.3)


def test_state_round_trips_and_is_reported() -> None:
    ada = ADA(speed_kimg=0.01, interval=3)
    ada.observe(torch.ones(8))
    state = build_augment({"ada": {"speed_kimg": 0.01, "interval": 3}})
    state.augments[0].load_state_dict(ada.state_dict())
    restored = state.augments[0]
    for _ in range(2):
        ada.observe(torch.ones(8))
        restored.observe(torch.ones(8))
    assert float(ada.p) == float(restored.p) > 0  # the partial sums came back too
    stats = StatsCollector()
    ada.report(stats)
    assert stats.flush() == {"ada_p": pytest.approx(float(ada.p)), "ada_rt": 1.0}


def test_p_zero_is_the_identity_and_draws_nothing() -> None:
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert ADA(p=0.0)(x, 0) is x
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_full_pipeline_any_channels_non_square_differentiable(channels: int) -> None:
    torch.manual_seed(0)
    x = (torch.rand(6, channels, 8, 12) * 2 - 1).requires_grad_(True)
    y = ADA(p=1.0)(x, 0)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not torch.allclose(y, x)


def test_blit_transforms_only_move_pixels() -> None:
    """x-flips and quarter turns at p=1 permute pixels exactly (grid_sample hits pixel centres)."""
    torch.manual_seed(0)
    ada = ADA(p=1.0, color=False, translate=0, scale_std=0, rotate_max=0, aniso_std=0, frac_std=0)
    x = torch.randn(16, 1, 8, 8)
    y = ada(x, 0)
    assert torch.allclose(y.flatten(1).sort(1).values, x.flatten(1).sort(1).values, atol=1e-5)
    assert not torch.allclose(y, x)
    quarter = x.rot90(1, dims=(2, 3))
    flipped = x.flip(3)
    candidates = [x, flipped] + [x.rot90(k, dims=(2, 3)) for k in (1, 2, 3)] + \
        [flipped.rot90(k, dims=(2, 3)) for k in (1, 2, 3)]
    for i in range(16):  # each output is one of the 8 symmetries of its input
        assert any(torch.allclose(y[i], c[i], atol=1e-5) for c in candidates), i
    assert quarter.shape == x.shape


def test_colour_transforms_on_grey_keep_the_luma_maths() -> None:
    """Grey images: brightness adds, contrast scales, luma flip negates; hue and saturation do nothing."""
    torch.manual_seed(0)
    ada = ADA(p=1.0, geometric=False, contrast_std=0, brightness_std=0)  # only luma flip, hue, saturation left
    x = torch.rand(32, 1, 4, 4)
    y = ada(x, 0)
    flipped = torch.isclose(y, -x, atol=1e-5).flatten(1).all(1)
    kept = torch.isclose(y, x, atol=1e-5).flatten(1).all(1)
    assert bool((flipped | kept).all()) and flipped.any() and kept.any()


def test_config_errors() -> None:
    for params, message in (({"target": 2}, "target"), ({"speed_kimg": 0}, "speed_kimg"),
                            ({"interval": 0}, "interval"), ({"p": 1.5}, "p must be"),
                            ({"scale_std": -1}, "scale_std")):
        with pytest.raises(ConfigError, match=message):
            build_augment({"ada": params})
    with pytest.raises(ConfigError, match="images"):
        ADA(p=0.5)(torch.randn(4, 2), 0)


def test_every_family_steers_p_dcgan_run_logs_and_checkpoints_it(tmp_path) -> None:
    raw = {"data": {"name": "digits", "image_size": [16], "limit": 200},
           "model": {"family": "dcgan", "latent_dim": 8, "g_channels": 4, "d_channels": 4},
           "loss": {"augment": {"ada": {"speed_kimg": 0.05, "interval": 2}}},
           "train": {"batch_size": 16, "steps": 12, "log_every": 4, "sample_every": 100, "checkpoint_every": 100,
                     "progress": False, "cpu_threads": 1}}
    run = train(config_from_dict(raw), tmp_path / "run")
    ticks = [r for r in read_metrics(run.run_dir / "metrics.jsonl") if "event" not in r]
    assert len(ticks) == 3 and all("ada_p" in r and "ada_rt" in r for r in ticks)
    state = load_checkpoint(run.run_dir)["augment"]
    assert int(state["augments.0.observations"]) == 12
    p, rt = float(state["augments.0.p"]), float(state["augments.0.last_rt"])
    # p moved from 0 by whole steps of 2 x 16 images / 50: up while r_t > 0.6, never below 0
    assert p >= 0 and math.isclose(p / (32 / 50), round(p / (32 / 50)), abs_tol=1e-4)
    assert -1.0 <= rt <= 1.0
