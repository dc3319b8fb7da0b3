"""Minibatch layers, PacGAN packing and spectral normalization on constructed inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ganforge.errors import ConfigError
from ganforge.nn.layers import MinibatchDiscrimination, MinibatchStdDev, Pack
from ganforge.nn.spectral import apply_spectral_norm

# --- MinibatchStdDev -----------------------------------------------------------------------------------


def test_minibatch_stddev_value() -> None:
    x = torch.empty(4, 2, 2, 2)
    x[:, 0] = torch.tensor([0.0, 2.0, 0.0, 2.0])[:, None, None]  # std 1
    x[:, 1] = torch.tensor([1.0, 1.0, 1.0, 5.0])[:, None, None]  # mean 2, var (1+1+1+9)/4 = 3
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (4, 3, 2, 2)
    assert torch.equal(out[:, :2], x)
    assert torch.allclose(out[:, 2], torch.full((4, 2, 2), (1.0 + math.sqrt(3.0)) / 2))


def test_minibatch_stddev_group_falls_back_to_divisor() -> None:
    # B = 6, group_size 4 -> groups of 3; sample i is in group i % 2
    x = torch.tensor([0.0, 1.0, 3.0, 1.0, 6.0, 1.0]).view(6, 1, 1, 1)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (6, 2, 1, 1)
    assert torch.allclose(out[0::2, 1].flatten(), torch.full((3,), math.sqrt(6.0)))  # values 0, 3, 6
    assert torch.allclose(out[1::2, 1].flatten(), torch.zeros(3), atol=1e-3)  # identical samples
    assert MinibatchStdDev(group_size=4)(torch.randn(1, 3, 2, 2)).shape == (1, 4, 2, 2)  # B = 1 works


def test_minibatch_stddev_channel_groups_and_features() -> None:
    x = torch.zeros(2, 4, 1, 1)
    x[:, 2] = torch.tensor([0.0, 2.0])[:, None, None]  # only the second channel group varies: std 1
    out = MinibatchStdDev(group_size=2, num_channels=2)(x)
    assert out.shape == (2, 6, 1, 1)
    assert torch.allclose(out[:, 4:].flatten(1), torch.tensor([[0.0, 0.5], [0.0, 0.5]]), atol=1e-3)
    feats = torch.tensor([[0.0, 1.0, 5.0], [2.0, 1.0, 5.0]])  # (B, F): stds 1, 0, 0 -> mean 1/3
    out = MinibatchStdDev(group_size=4)(feats)
    assert out.shape == (2, 4)
    assert torch.allclose(out[:, 3], torch.full((2,), 1.0 / 3), atol=1e-3)
    with pytest.raises(ValueError, match="num_channels"):
        MinibatchStdDev(num_channels=3)(torch.zeros(2, 4, 1, 1))


# --- MinibatchDiscrimination ---------------------------------------------------------------------------


def test_minibatch_discrimination_closed_form() -> None:
    mbd = MinibatchDiscrimination(in_features=2, num_kernels=2, kernel_dim=1)
    with torch.no_grad():
        mbd.T.weight.copy_(torch.eye(2))  # M = x: kernel k sees feature k
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    out = mbd(x)
    assert out.shape == (3, 4)
    e1, e2 = math.exp(-1), math.exp(-2)
    expected = torch.tensor([[1 + e1, 1 + e2], [2 * e1, 1 + e2], [1 + e1, 2 * e2]])  # sum over j != i
    assert torch.allclose(out[:, :2], x)
    assert torch.allclose(out[:, 2:], expected)
    out.sum().backward()
    assert mbd.T.weight.grad is not None and x.grad is not None


def test_minibatch_discrimination_identical_batch() -> None:
    mbd = MinibatchDiscrimination(in_features=3, num_kernels=5, kernel_dim=4)
    out = mbd(torch.ones(4, 3))
    assert out.shape == (4, 8)
    assert torch.allclose(out[:, 3:], torch.full((4, 5), 3.0))  # every other sample at distance 0


# --- Pack ----------------------------------------------------------------------------------------------


def test_pack_shapes_and_order() -> None:
    x = torch.randn(6, 3, 4, 4)
    out = Pack(m=2)(x)
    assert out.shape == (3, 6, 4, 4)
    assert torch.equal(out[1, :3], x[2]) and torch.equal(out[1, 3:], x[3])
    pts = torch.randn(6, 5)
    out = Pack(m=3)(pts)
    assert out.shape == (2, 15)
    assert torch.equal(out[1, 5:10], pts[4])
    assert torch.equal(Pack(m=1)(x), x)


def test_pack_errors() -> None:
    with pytest.raises(ConfigError, match="divisible by 2; got 5"):
        Pack(m=2)(torch.randn(5, 3))
    with pytest.raises(ConfigError):
        Pack(m=0)


# --- spectral norm -------------------------------------------------------------------------------------


def test_spectral_norm_of_known_matrix() -> None:
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.diag(torch.tensor([3.0, 1.0])))
    assert apply_spectral_norm(lin) is lin
    lin.train()
    for _ in range(5):  # each training forward runs one power iteration
        lin(torch.randn(1, 2))
    sn = lin.parametrizations.weight[0]
    original = lin.parametrizations.weight.original
    sigma = torch.dot(sn._u, original @ sn._v)
    assert sigma.item() == pytest.approx(3.0, rel=1e-4)
    assert torch.linalg.matrix_norm(lin.weight.detach(), ord=2).item() == pytest.approx(1.0, rel=1e-4)
    assert torch.allclose(lin.weight.detach(), torch.diag(torch.tensor([1.0, 1.0 / 3])), atol=1e-4)


def test_spectral_norm_wraps_every_linear_map() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ConvTranspose2d(4, 2, 3),
        nn.Flatten(),
        nn.Linear(2 * 4 * 4, 6),
        MinibatchDiscrimination(in_features=6, num_kernels=3, kernel_dim=2),
    )
    apply_spectral_norm(net)
    apply_spectral_norm(net)  # idempotent
    wrapped = [m for m in net.modules() if parametrize.is_parametrized(m, "weight")]
    assert wrapped == [net[0], net[2], net[4], net[5].T]
    assert all(len(m.parametrizations.weight) == 1 for m in wrapped)
    assert not parametrize.is_parametrized(net[1])
    assert net(torch.randn(2, 1, 4, 4)).shape == (2, 9)
    # the transposed conv is normalized over its (in, out, k, k) layout: dim 1 is the output
    net.train()
    for _ in range(30):
        net(torch.randn(2, 1, 4, 4))
    w = net[2].weight.detach().transpose(0, 1).reshape(2, -1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=1e-3)
