"""Each adversarial loss against a value computed by hand with math.log / math.exp."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.losses import LOSSES, AdversarialLoss, get_loss

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([-1.0, 0.5])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def bce(x: float, t: float) -> float:
    # -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], written from the definition
    s = 1.0 / (1.0 + math.exp(-x))
    return -(t * math.log(s) + (1.0 - t) * math.log(1.0 - s))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def close(t: torch.Tensor, expected: float) -> None:
    assert t.dim() == 0
    assert t.item() == pytest.approx(expected, rel=1e-6, abs=1e-6)


R, Fk = REAL.tolist(), FAKE.tolist()
R_MEAN, F_MEAN = mean(R), mean(Fk)

EXPECTED = {
    "minimax": (
        mean([bce(x, 1) for x in R]) + mean([bce(x, 0) for x in Fk]),
        mean([math.log(1 - 1 / (1 + math.exp(-x))) for x in Fk]),
    ),
    "nonsaturating": (
        mean([bce(x, 1) for x in R]) + mean([bce(x, 0) for x in Fk]),
        mean([-math.log(1 / (1 + math.exp(-x))) for x in Fk]),
    ),
    "wasserstein": (F_MEAN - R_MEAN, -F_MEAN),
    "hinge": (
        mean([max(0.0, 1 - x) for x in R]) + mean([max(0.0, 1 + x) for x in Fk]),
        -F_MEAN,
    ),
    "lsgan": (
        0.5 * mean([(x - 1) ** 2 for x in R]) + 0.5 * mean([x**2 for x in Fk]),
        0.5 * mean([(x - 1) ** 2 for x in Fk]),
    ),
    "ragan": (
        mean([bce(x - F_MEAN, 1) for x in R]) + mean([bce(x - R_MEAN, 0) for x in Fk]),
        mean([bce(x - R_MEAN, 1) for x in Fk]) + mean([bce(x - F_MEAN, 0) for x in R]),
    ),
    "ralsgan": (
        mean([(x - F_MEAN - 1) ** 2 for x in R]) + mean([(x - R_MEAN + 1) ** 2 for x in Fk]),
        mean([(x - R_MEAN - 1) ** 2 for x in Fk]) + mean([(x - F_MEAN + 1) ** 2 for x in R]),
    ),
}


def test_all_names_registered() -> None:
    assert LOSSES.names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_values_by_hand(name: str) -> None:
    loss = get_loss(name)
    assert isinstance(loss, AdversarialLoss)
    d_expected, g_expected = EXPECTED[name]
    close(loss.d(REAL, FAKE), d_expected)
    close(loss.g(REAL, FAKE), g_expected)
    # (B, 1) logits give the same scalar
    close(loss.d(REAL[:, None], FAKE[:, None]), d_expected)
    close(loss.g(REAL[:, None], FAKE[:, None]), g_expected)


def test_g_needs_real_only_for_relativistic() -> None:
    assert {n for n in LOSSES.names() if LOSSES[n].g_needs_real} == {"ragan", "ralsgan"}
    # the others really ignore real in G
    for n in ["minimax", "nonsaturating", "wasserstein", "hinge", "lsgan"]:
        g = get_loss(n).g
        assert torch.equal(g(REAL, FAKE), g(torch.full_like(REAL, 1e3), FAKE))


def test_saturating_vs_nonsaturating_gradient() -> None:
    # D confidently rejects the fakes: D(G(z)) = sigmoid(-12) ~ 6e-6.
    grads = {}
    for name in ["minimax", "nonsaturating"]:
        fake = torch.full((4,), -12.0, requires_grad=True)
        get_loss(name).g(REAL, fake).backward()
        grads[name] = fake.grad.abs().sum().item()
    assert grads["minimax"] < 1e-4  # sum of sigmoid(-12)/4: vanishes
    assert grads["nonsaturating"] > 0.99  # sum of sigmoid(12)/4 ~ 1


def test_numerically_stable_for_huge_logits() -> None:
    big = torch.tensor([200.0, -200.0], requires_grad=True)
    for name in LOSSES.names():
        loss = get_loss(name)
        total = loss.d(big, -big) + loss.g(big, -big)
        total.backward()
        assert torch.isfinite(total), name
        assert torch.isfinite(big.grad).all(), name
        big.grad = None


def test_one_sided_label_smoothing() -> None:
    loss = get_loss("nonsaturating", real_label=0.9)
    close(loss.d(REAL, FAKE), mean([bce(x, 0.9) for x in R]) + mean([bce(x, 0.0) for x in Fk]))
    # G is untouched by smoothing
    close(loss.g(REAL, FAKE), EXPECTED["nonsaturating"][1])
    # the optimum of the smoothed real term is at sigmoid(x) = 0.9, not at x -> inf
    x = torch.tensor([math.log(9.0)], requires_grad=True)  # sigmoid(log 9) = 0.9
    loss.d(x, torch.tensor([-30.0])).backward()
    assert abs(x.grad.item()) < 1e-6


def test_two_sided_label_smoothing() -> None:
    loss = get_loss("minimax", real_label=0.9, fake_label=0.1)
    close(loss.d(REAL, FAKE), mean([bce(x, 0.9) for x in R]) + mean([bce(x, 0.1) for x in Fk]))
    rag = get_loss("ragan", real_label=0.9, fake_label=0.1)
    close(
        rag.d(REAL, FAKE), mean([bce(x - F_MEAN, 0.9) for x in R]) + mean([bce(x - R_MEAN, 0.1) for x in Fk])
    )


def test_lsgan_targets() -> None:
    loss = get_loss("lsgan", real_label=0.9, fake_label=0.1)
    close(
        loss.d(REAL, FAKE), 0.5 * mean([(x - 0.9) ** 2 for x in R]) + 0.5 * mean([(x - 0.1) ** 2 for x in Fk])
    )
    close(loss.g(REAL, FAKE), EXPECTED["lsgan"][1])


@pytest.mark.parametrize("name", ["wasserstein", "hinge", "ralsgan"])
def test_unsmoothable_losses_refuse_labels(name: str) -> None:
    with pytest.raises(ConfigError, match="label"):
        get_loss(name, real_label=0.9)
    assert get_loss(name, real_label=1.0, fake_label=0.0) is LOSSES[name]


def test_bad_labels() -> None:
    with pytest.raises(ConfigError):
        get_loss("minimax", real_label=1.5)
    with pytest.raises(ConfigError):
        get_loss("lsgan", real_label=0.2, fake_label=0.5)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as e:
        get_loss("hinj")
    assert "hinj" in str(e.value)
    for name in EXPECTED:
        assert name in str(e.value)
