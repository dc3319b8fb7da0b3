"""DiffAugment / instance noise: shapes, differentiability, what each op does, annealing, config."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ganforge.augment import (
    AUGMENTS,
    AugmentPipeline,
    DiffAugment,
    InstanceNoise,
    build_augment,
    contrast,
    cutout,
    saturation,
    translation,
)
from ganforge.errors import ConfigError


def batch(b: int = 4, c: int = 3, h: int = 8, w: int = 8) -> Tensor:
    return torch.rand(b, c, h, w) + 0.5  # no zeros, so zero-filled pixels are recognisable


def test_diffaugment_keeps_shape_and_is_differentiable() -> None:
    x = batch().requires_grad_(True)
    out = DiffAugment()(x, step=0)
    assert out.shape == x.shape
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diffaugment_empty_policy_is_identity() -> None:
    x = batch()
    assert torch.equal(DiffAugment(policy="")(x, step=0), x)
    assert torch.equal(build_augment({})(x, step=3), x)


def test_diffaugment_is_reproducible_under_global_seed() -> None:
    x = batch()
    aug = DiffAugment()
    torch.manual_seed(7)
    a = aug(x, step=0)
    torch.manual_seed(7)
    b = aug(x, step=0)
    assert torch.equal(a, b)
    assert not torch.equal(a, aug(x, step=0))


def test_translation_is_a_zero_filled_shift() -> None:
    x = batch(b=6, h=16, w=8)  # max shift: 2 rows, 1 column
    out = translation(x)
    for i in range(x.shape[0]):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-1, 2):
                padded = torch.nn.functional.pad(x[i], [1, 1, 2, 2])
                shifted = padded[:, 2 + dy : 2 + dy + 16, 1 + dx : 1 + dx + 8]
                matches.append(torch.equal(out[i], shifted))
        assert sum(matches) == 1


def test_cutout_zeroes_one_rectangle() -> None:
    x = batch(b=8)
    out = cutout(x)  # 4x4 hole, possibly clipped by the border
    for i in range(x.shape[0]):
        hole = out[i] == 0  # (C, H, W)
        assert torch.equal(hole[0], hole[1])  # same hole in every channel
        rows, cols = hole[0].any(dim=1).sum().item(), hole[0].any(dim=0).sum().item()
        assert 2 <= rows <= 4 and 2 <= cols <= 4
        assert hole[0].sum().item() == rows * cols  # a rectangle
        assert torch.equal(out[i][~hole], x[i][~hole])


def test_color_ops() -> None:
    x = batch()
    gray = batch(c=1)
    assert torch.allclose(saturation(gray), gray)  # one channel: nothing to saturate
    y = contrast(x)  # keeps each image's mean
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5)
    color = DiffAugment(policy="color")(x, step=0)
    assert color.shape == x.shape and not torch.equal(color, x)


def test_diffaugment_rejects_points_and_bad_policy() -> None:
    with pytest.raises(ConfigError, match="instance_noise"):
        DiffAugment()(torch.randn(8, 2), step=0)
    with pytest.raises(ConfigError, match="valid: color, translation, cutout"):
        DiffAugment(policy="color,flip")


def test_instance_noise_std_decays_linearly_to_zero() -> None:
    noise = InstanceNoise(std=0.1, anneal_steps=100)
    assert noise.std_at(0) == pytest.approx(0.1)
    assert noise.std_at(50) == pytest.approx(0.05)
    assert noise.std_at(100) == 0.0 and noise.std_at(1000) == 0.0
    x = torch.zeros(20000, 2)  # 2-D points work
    assert noise(x, step=0).std().item() == pytest.approx(0.1, rel=0.05)
    assert noise(x, step=75).std().item() == pytest.approx(0.025, rel=0.05)
    assert torch.equal(noise(x, step=100), x)
    assert InstanceNoise(std=0.2, anneal_steps=None).std_at(10**9) == 0.2
    x = torch.zeros(3, 2, requires_grad=True)
    noise(x, step=0).sum().backward()
    assert torch.equal(x.grad, torch.ones(3, 2))
    with pytest.raises(ConfigError):
        InstanceNoise(anneal_steps=0)


def test_build_augment() -> None:
    pipe = build_augment({"diffaugment": {"policy": "translation"}, "instance_noise": {"std": 0.05}})
    assert isinstance(pipe, AugmentPipeline)
    assert [type(a) for a in pipe.augments] == [DiffAugment, InstanceNoise]
    assert pipe(batch(), step=0).shape == (4, 3, 8, 8)
    with pytest.raises(ConfigError, match=r"'sigma'.*valid: std, anneal_steps"):
        build_augment({"instance_noise": {"sigma": 0.1}})
    with pytest.raises(ConfigError, match="valid: ada, diffaugment, instance_noise"):
        build_augment({"adaptive": {}})
    assert sorted(AUGMENTS) == ["ada", "diffaugment", "instance_noise"]
