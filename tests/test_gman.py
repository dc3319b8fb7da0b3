"""GMAN (model.family gman): the loss combinations against hand-computed values, the seeded random pick, config
checks, and short runs in which G learns, every discriminator is updated by its own optimizer, and resume is
exact."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import assert_checkpoints_equal
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.data import DATASETS
from ganforge.errors import ConfigError
from ganforge.models.gman import COMBINATIONS, random_pick
from ganforge.saved import load_generator, load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.trainer import train

RAW = {
    "data": {"name": "digits", "image_size": [8, 8]},
    "model": {"family": "gman", "latent_dim": 8, "g_channels": 16, "d_channels": 8, "num_discriminators": 3,
              "combine": "softmax", "softmax_lambda": 2.0},
    "train": {"batch_size": 64, "steps": 60, "log_every": 20, "sample_every": 60, "checkpoint_every": 60,
              "progress": False, "lr_g": 2e-3, "lr_d": 1e-3},
}


def _raw(model=None, **train_fields):
    return {**RAW, "model": {**RAW["model"], **(model or {})}, "train": {**RAW["train"], **train_fields}}


# ------------------------------------------------------------------------------------------ combinations


def test_combinations_by_hand():
    losses = torch.tensor([1.0, 2.0, 4.0])
    assert COMBINATIONS["mean"](losses).item() == pytest.approx(7 / 3)
    assert COMBINATIONS["max"](losses).item() == 4.0
    assert COMBINATIONS["random"](losses, pick=1).item() == 2.0
    e = [math.exp(0.5 * v) for v in (1, 2, 4)]  # lambda 0.5
    soft = sum(w * v for w, v in zip(e, (1, 2, 4))) / sum(e)
    assert COMBINATIONS["softmax"](losses, lam=0.5).item() == pytest.approx(soft, rel=1e-6)
    assert COMBINATIONS["softmax"](losses, lam=0.0).item() == pytest.approx(7 / 3)  # lambda 0: the mean
    assert COMBINATIONS["softmax"](losses, lam=200.0).item() == pytest.approx(4.0)  # large lambda: the max


def test_softmax_weights_are_constants_in_the_gradient():
    losses = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    COMBINATIONS["softmax"](losses, lam=0.5).backward()
    expected = torch.softmax(0.5 * torch.tensor([1.0, 2.0, 4.0]), 0)
    torch.testing.assert_close(losses.grad, expected)
    losses.grad = None
    COMBINATIONS["max"](losses).backward()
    assert losses.grad.tolist() == [0.0, 0.0, 1.0]  # only the harshest discriminator teaches G


def test_random_pick_is_seeded_by_step_and_covers_every_discriminator():
    picks = [random_pick(7, step, 5) for step in range(500)]
    assert picks == [random_pick(7, step, 5) for step in range(500)]
    counts = torch.bincount(torch.tensor(picks), minlength=5)
    assert counts.min() >= 70  # uniform: 100 each expected
    assert picks != [random_pick(8, step, 5) for step in range(500)]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.combine must be one of max, mean, random, softmax"):
        config_from_dict(_raw({"combine": "median"}))
    with pytest.raises(ConfigError, match="model.num_discriminators must be >= 1"):
        config_from_dict(_raw({"num_discriminators": 0}))
    with pytest.raises(ConfigError, match="n_critic"):
        train(config_from_dict(_raw(n_critic=2)), "/nonexistent-never-written")


# ------------------------------------------------------------------------------------------ training


def _mean_image_distance(images: torch.Tensor, real: torch.Tensor) -> float:
    return (images.float().mean(0) - real.float().mean(0)).abs().mean().item()


def test_gman_trains_every_discriminator_and_g_learns(tmp_path):
    run = train(config_from_dict(_raw()), tmp_path / "run").run_dir
    start = load_checkpoint(run / "checkpoints" / "step-00000000.pt")
    end = load_checkpoint(run)
    names = ["D0", "D1", "D2"]
    assert set(end["networks"]) == {"G", *names} and set(end["optimizers"]) == {"G", *names}
    for name in names:  # each D has its own optimizer, which stepped, and its weights moved
        assert end["optimizers"][name]["state"], name
        moved = [not torch.equal(start["networks"][name][k], v) for k, v in end["networks"][name].items()
                 if v.is_floating_point()]
        assert any(moved), name
    # The discriminators start from different weights (one G against k different critics).
    first = next(iter(k for k in start["networks"]["D0"] if k.endswith("weight")))
    assert not torch.equal(start["networks"]["D0"][first], start["networks"]["D1"][first])
    # G learned: its mean image is far closer to the data's than at initialisation (grey noise).
    real = DATASETS["digits"](config_from_dict(RAW).data).data
    before = load_sampler(run / "checkpoints" / "step-00000000.pt").generate(256, seed=0)
    after = load_generator(run)
    samples = load_sampler(run).generate(256, seed=0)
    assert after.num_classes == 0 and samples.shape == (256, 1, 8, 8)
    assert _mean_image_distance(samples, real) < 0.6 * _mean_image_distance(before, real)


def test_gman_random_pick_resumes_bitwise(tmp_path):
    raw = _raw({"combine": "random", "num_discriminators": 2}, steps=20, log_every=5, checkpoint_every=10)
    straight = train(config_from_dict(raw), tmp_path / "straight").run_dir
    train(config_from_dict({**raw, "train": {**raw["train"], "steps": 10}}), tmp_path / "split")
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "20"]) == 0
    assert_checkpoints_equal(load_checkpoint(straight), load_checkpoint(tmp_path / "split"),
                             sections=("networks", "ema", "optimizers"))
