"""The EMA of G's weights: its half-life in closed form, the ramp-up that shortens it early, and its wiring."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import tiny_config
from ganforge.config import config_from_dict
from ganforge.errors import ConfigError
from ganforge.train.ema import EMA
from ganforge.train.trainer import Trainer


def _pair(start: float, target: float) -> tuple[EMA, nn.Linear]:
    net = nn.Linear(3, 2)
    nn.init.constant_(net.weight, start)
    ema = EMA(net, halflife_kimg=1.0, rampup=0.0)
    nn.init.constant_(net.weight, target)
    return ema, net


def test_one_halflife_of_images_halves_the_distance():
    ema, net = _pair(0.0, 1.0)
    ema.update(net, 1000)  # 1,000 images = one half-life: halfway
    assert torch.allclose(ema.model.weight, torch.full((2, 3), 0.5))
    ema.update(net, 500)  # half a half-life: the remaining gap shrinks by 2 ** -0.5
    assert torch.allclose(ema.model.weight, torch.full((2, 3), 1.0 - 0.5 * 0.5**0.5))


def test_rampup_caps_the_halflife_at_a_fraction_of_the_images_seen():
    ema, net = _pair(0.0, 1.0)
    ema.rampup = 0.05
    ema.update(net, 64, images_seen=64)  # half-life 3.2 images: beta = 0.5 ** 20, the average jumps to G
    assert torch.allclose(ema.model.weight, torch.full((2, 3), 1.0 - 0.5**20))
    ema, net = _pair(0.0, 1.0)
    ema.rampup = 0.05
    ema.update(net, 1000, images_seen=100_000)  # 0.05 x 100k = 5k > 1k: the configured half-life applies
    assert torch.allclose(ema.model.weight, torch.full((2, 3), 0.5))
    ema, net = _pair(0.0, 1.0)
    ema.rampup = 0.05
    ema.update(net, 100, images_seen=10_000)  # cap 500 images: beta = 0.5 ** (100 / 500)
    assert torch.allclose(ema.model.weight, torch.full((2, 3), 1.0 - 0.5**0.2))


def test_trainer_ramps_up_only_when_asked(tmp_path):
    """After a few steps from the same start, the ramped average sits by G; the fixed one near the init."""
    distances = {}
    for rampup in (0.0, 0.05):
        raw = tiny_config(train={"ema_kimg": 10.0, "ema_rampup": rampup, "steps": 5})
        trainer = Trainer(config_from_dict(raw), tmp_path / f"r{rampup}")
        start = [p.detach().clone() for p in trainer.networks["G"].parameters()]
        for _ in range(5):
            trainer.run_step(measure=False)
            trainer.step += 1
        ema = list(trainer.emas["G"].model.parameters())
        g = list(trainer.networks["G"].parameters())
        moved = sum((b - a).norm() for a, b in zip(start, g))
        distances[rampup] = (sum((e - b).norm() for e, b in zip(ema, g)) / moved).item()
    assert distances[0.05] < 0.05  # half-life <= 16 images against 64-image steps: the average is ~G
    assert distances[0.0] > 0.9  # 10k-image half-life: 320 images barely move it off the init


def test_negative_rampup_is_refused():
    with pytest.raises(ConfigError, match="ema_rampup"):
        config_from_dict(tiny_config(train={"ema_rampup": -0.1}))
