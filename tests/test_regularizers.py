"""Regularizers against closed forms on critics whose input gradients are known exactly."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.regularizers import (
    REGULARIZERS,
    FeatureMatching,
    GradientPenalty,
    R1Penalty,
    R2Penalty,
    RegContext,
    Regularizer,
    WeightClipping,
    build_regularizers,
)


class LinearCritic(nn.Module):
    """D(x) = w . flatten(x) + b: its input gradient is w for every sample."""

    def __init__(self, w: list[float]) -> None:
        super().__init__()
        self.lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([w]))
            self.lin.bias.fill_(0.3)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.lin(x.flatten(1)).squeeze(1)  # (B,)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return x.flatten(1)  # identity features (B, F)


def quadratic(x: Tensor, y: Tensor | None = None) -> Tensor:
    """D(x) = 1/2 ||x||^2 per sample: its input gradient is x itself."""
    return 0.5 * x.flatten(1).square().sum(dim=1)


def ctx_for(D, real: Tensor, fake: Tensor, **kw) -> RegContext:
    return RegContext(D=D, real=real, fake=fake, labels=kw.get("labels"), fake_labels=kw.get("fake_labels"),
                      features=kw.get("features"))


def images(b: int = 3) -> tuple[Tensor, Tensor]:
    # (B, 1, 2, 1) "images" so flattening matters, 2 features per sample
    return torch.randn(b, 1, 2, 1), torch.randn(b, 1, 2, 1)


def test_gp_of_linear_critic_is_exact_and_trains_d() -> None:
    D = LinearCritic([3.0, 4.0])  # ||w|| = 5
    real, fake = images()
    gp = GradientPenalty(weight=10.0, target=1.0)
    assert gp.phase == "d" and gp.interval == 1
    penalty = gp(ctx_for(D, real, fake))
    assert penalty.item() == pytest.approx(10.0 * (5.0 - 1.0) ** 2)  # lambda (||w|| - k)^2 = 160
    penalty.backward()
    # d/dw lambda (||w|| - k)^2 = 2 lambda (||w|| - k) w / ||w|| = 16 w: the penalty reaches D's weights
    assert torch.allclose(D.lin.weight.grad, 16.0 * torch.tensor([[3.0, 4.0]]))


def test_gp_zero_centred_and_interval() -> None:
    D = LinearCritic([3.0, 4.0])
    real, fake = images()
    ctx = ctx_for(D, real, fake)
    assert GradientPenalty(weight=2.0, target=0.0)(ctx).item() == pytest.approx(50.0)  # 2 * ||w||^2
    assert GradientPenalty(weight=2.0, target=0.0, interval=4)(ctx).item() == pytest.approx(200.0)


def test_gp_mixes_per_sample_from_global_rng() -> None:
    # real = 1, fake = 0 so x_hat = alpha * 1; quadratic D has grad x_hat, norm alpha * sqrt(N) per sample
    b, n = 5, 4
    real, fake = torch.ones(b, 1, 2, 2), torch.zeros(b, 1, 2, 2)
    torch.manual_seed(123)
    penalty = GradientPenalty(weight=1.0, target=1.0)(ctx_for(quadratic, real, fake))
    torch.manual_seed(123)
    alpha = torch.rand(b)
    expected = ((alpha * n**0.5 - 1.0) ** 2).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    assert alpha.unique().numel() == b  # genuinely per-sample


def test_r1_of_linear_critic() -> None:
    D = LinearCritic([3.0, 4.0])
    real, fake = images()
    r1 = R1Penalty(gamma=10.0)
    penalty = r1(ctx_for(D, real, fake))
    assert penalty.item() == pytest.approx(10.0 / 2 * 25.0)  # gamma/2 ||w||^2
    penalty.backward()
    assert torch.allclose(D.lin.weight.grad, 10.0 * torch.tensor([[3.0, 4.0]]))  # d/dw = gamma w
    lazy = R1Penalty(gamma=10.0, interval=16)
    assert lazy.interval == 16
    assert lazy(ctx_for(D, real, fake)).item() == pytest.approx(16 * 125.0)


def test_r1_uses_reals_r2_uses_fakes() -> None:
    real = torch.tensor([[1.0, 2.0], [0.0, 2.0]])  # E||x||^2 = (5 + 4) / 2
    fake = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # E||x||^2 = (9 + 1) / 2
    ctx = ctx_for(quadratic, real, fake)
    assert R1Penalty(gamma=2.0)(ctx).item() == pytest.approx(4.5)
    assert R2Penalty(gamma=2.0)(ctx).item() == pytest.approx(5.0)


def test_labels_reach_conditional_d() -> None:
    seen = []

    def D(x: Tensor, y: Tensor | None) -> Tensor:
        seen.append(y)
        return quadratic(x)

    labels, fake_labels = torch.tensor([1, 0]), torch.tensor([0, 0])
    real, fake = torch.randn(2, 3), torch.randn(2, 3)
    for reg in [GradientPenalty(), R1Penalty(), R2Penalty()]:
        reg(ctx_for(D, real, fake, labels=labels, fake_labels=fake_labels))
    # GP judges interpolates under the real classes, R1 the reals, R2 the fakes under their own classes.
    assert len(seen) == 3 and seen[0] is labels and seen[1] is labels and seen[2] is fake_labels


def test_feature_matching_closed_form() -> None:
    D = LinearCritic([1.0, 1.0])
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)  # mean (1, 1)
    fm = FeatureMatching(weight=0.5)
    assert fm.phase == "g"
    penalty = fm(ctx_for(D, real, fake, features=D.features))
    assert penalty.item() == pytest.approx(0.5 * (1.0**2 + 2.0**2))
    penalty.backward()
    # d/dfake_i = -2 w (mean_real - mean_fake) / B = -0.5 * (1, 2)
    assert torch.allclose(fake.grad, torch.tensor([[-0.5, -1.0], [-0.5, -1.0]]))


def test_feature_matching_needs_features() -> None:
    with pytest.raises(ConfigError, match="features"):
        FeatureMatching()(ctx_for(quadratic, torch.zeros(2, 2), torch.zeros(2, 2)))


def test_weight_clipping_clamps_after_d_step() -> None:
    D = LinearCritic([3.0, -0.004])
    wc = WeightClipping(clip=0.01)
    assert wc(ctx_for(D, torch.zeros(2, 2), torch.zeros(2, 2))).item() == 0.0
    wc.after_d_step(D)
    assert torch.equal(D.lin.weight, torch.tensor([[0.01, -0.004]]))
    assert torch.equal(D.lin.bias, torch.tensor([0.01]))
    with pytest.raises(ConfigError):
        WeightClipping(clip=0.0)


def test_penalties_have_noop_after_d_step() -> None:
    D = LinearCritic([3.0, 4.0])
    R1Penalty().after_d_step(D)
    assert torch.equal(D.lin.weight, torch.tensor([[3.0, 4.0]]))


def test_build_regularizers_from_config() -> None:
    regs = build_regularizers({"gp": {"weight": 10}, "r1": {"gamma": 5, "interval": 16}, "weight_clip": None})
    assert isinstance(regs, nn.ModuleList)
    gp, r1, wc = regs
    assert isinstance(gp, GradientPenalty) and gp.weight == 10.0
    assert isinstance(r1, R1Penalty) and (r1.gamma, r1.interval) == (5.0, 16)
    assert isinstance(wc, WeightClipping) and all(isinstance(r, Regularizer) for r in regs)
    assert len(build_regularizers({})) == 0


def test_build_regularizers_errors() -> None:
    with pytest.raises(ConfigError, match=r"'wieght'.*valid: weight, target, interval"):
        build_regularizers({"gp": {"wieght": 10}})
    with pytest.raises(ConfigError) as e:
        build_regularizers({"r3": {}})
    for name in ["gp", "r1", "r2", "feature_matching", "weight_clip"]:
        assert name in str(e.value)
    assert sorted(REGULARIZERS) == sorted(["gp", "r1", "r2", "feature_matching", "weight_clip"])
    with pytest.raises(ConfigError, match="interval"):
        build_regularizers({"r1": {"interval": 0}})
    with pytest.raises(ConfigError):
        build_regularizers({"gp": {"weight": -1}})


class _ClassScaledD(torch.nn.Module):
    """logit = scale[y] * sum(x): the input gradient's norm depends on the class it is judged under."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([1.0, 3.0]))

    def forward(self, x, labels):
        return self.scale[labels] * x.flatten(1).sum(1)


def test_r2_judges_fakes_under_their_own_classes():
    D = _ClassScaledD()
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    real_labels, fake_labels = torch.tensor([0, 0, 0, 0]), torch.tensor([1, 1, 1, 1])
    ctx = RegContext(D=D, real=real, fake=fake, labels=real_labels, fake_labels=fake_labels)
    # grad of scale[y] * sum(x) w.r.t. x is scale[y] everywhere: ||g||^2 = 4 * scale[y]^2 (4 pixels).
    r2 = R2Penalty(gamma=2.0)(ctx)
    assert r2.item() == pytest.approx(0.5 * 2.0 * 4 * 3.0**2)  # under the fakes' class 1, not the reals' class 0
    r1 = R1Penalty(gamma=2.0)(ctx)
    assert r1.item() == pytest.approx(0.5 * 2.0 * 4 * 1.0**2)


def test_training_passes_the_fakes_labels_to_r2(tmp_path, monkeypatch):
    from ganforge.config import config_from_dict
    from ganforge.train.trainer import train

    seen = []
    original = R2Penalty.forward

    def recording(self, ctx):
        seen.append((ctx.labels.clone(), ctx.fake_labels.clone()))
        return original(self, ctx)

    monkeypatch.setattr(R2Penalty, "forward", recording)
    raw = {"data": {"name": "digits", "image_size": [8], "limit": 128},
           "model": {"family": "dcgan", "latent_dim": 4, "g_channels": 4, "d_channels": 4, "conditional": True},
           "loss": {"regularizers": {"r2": {"gamma": 1.0}}},
           "train": {"batch_size": 32, "steps": 3, "progress": False, "log_every": 3}}
    train(config_from_dict(raw), tmp_path / "run")
    assert len(seen) == 3
    for real_labels, fake_labels in seen:
        assert not torch.equal(real_labels, fake_labels)  # drawn for G, not the real batch's
        assert fake_labels.min() >= 0 and fake_labels.max() < 10
