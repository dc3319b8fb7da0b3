"""StyleGAN2 building blocks and progressive-growing helpers, checked against definitions and hand maths."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.nn.progressive import ProgressiveSchedule, downsample_to, fade_in
from ganforge.nn.style import (
    ConstantInput,
    DBlock,
    DEpilogue,
    EqualizedConv2d,
    EqualizedLinear,
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    PathLengthPenalty,
    SynthesisBlock,
    ToImage,
    downsample2x,
    lazy_regularization_correction,
    mix_styles,
    modulated_conv2d,
    modulated_conv2d_reference,
    random_crossover,
    upsample2x,
)

# --- resampling ----------------------------------------------------------------------------------------


def test_upsample2x_is_bilinear_and_downsample2x_averages() -> None:
    x = torch.randn(2, 3, 3, 5)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(upsample2x(x), expected, atol=1e-6)
    y = torch.arange(2 * 4 * 6, dtype=torch.float32).view(1, 2, 4, 6)
    blocks = y.view(1, 2, 2, 2, 3, 2).mean(dim=(3, 5))  # 2x2 block means
    assert torch.allclose(downsample2x(y), blocks)
    with pytest.raises(ValueError, match="even"):
        downsample2x(torch.zeros(1, 1, 5, 6))


# --- equalized learning rate ---------------------------------------------------------------------------


def test_equalized_linear_runtime_scale_and_bias() -> None:
    torch.manual_seed(0)
    layer = EqualizedLinear(in_features=256, out_features=256, bias_init=1.0, lr_mul=0.01)
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.02)  # stored N(0, 1) / lr_mul
    assert layer.effective_weight().std().item() == pytest.approx(1 / 16, rel=0.02)  # 1 / sqrt(fan_in)
    assert torch.allclose(layer.effective_bias(), torch.ones(256))  # starts at bias_init despite lr_mul
    x = torch.randn(5, 256)
    expected = F.linear(x, layer.weight * (0.01 / 16), layer.bias * 0.01)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    # the stored weight's gradient is lr_mul / sqrt(fan_in) times the effective weight's
    layer(x).sum().backward()
    assert torch.allclose(layer.weight.grad, (0.01 / 16) * torch.ones(256, 1) * x.sum(0), rtol=1e-4)
    act = EqualizedLinear(in_features=4, out_features=3, activation="lrelu")
    x = torch.randn(7, 4)
    lin = F.linear(x, act.weight / 2.0, act.bias)
    assert torch.allclose(act(x), F.leaky_relu(lin, 0.2) * math.sqrt(2.0), atol=1e-6)


def test_equalized_conv_scale_resampling_and_errors() -> None:
    torch.manual_seed(0)
    conv = EqualizedConv2d(in_channels=3, out_channels=4, kernel_size=3, activation="lrelu")
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 6, 8)
    pre = F.conv2d(x, conv.weight / math.sqrt(27), conv.bias, padding=1)
    assert torch.allclose(conv(x), F.leaky_relu(pre, 0.2) * math.sqrt(2.0), atol=1e-5)
    down = EqualizedConv2d(in_channels=3, out_channels=4, kernel_size=3, down=2)
    assert torch.allclose(down(x), F.avg_pool2d(F.conv2d(x, down.weight / math.sqrt(27), padding=1), 2), atol=1e-5)
    up = EqualizedConv2d(in_channels=3, out_channels=4, kernel_size=1, up=2, bias=False)  # 1x1: conv, then resize
    assert torch.allclose(up(x), F.conv2d(upsample2x(x), up.weight / math.sqrt(3)), atol=1e-5)
    assert up(x).shape == (2, 4, 12, 16)
    with pytest.raises(ConfigError):
        EqualizedConv2d(in_channels=3, out_channels=4, kernel_size=2)
    with pytest.raises(ConfigError):
        EqualizedLinear(in_features=3, out_features=4, activation="relu")  # type: ignore[arg-type]


# --- mapping network, truncation, mixing ---------------------------------------------------------------


def test_mapping_network_shapes_normalization_and_labels() -> None:
    torch.manual_seed(0)
    mapping = MappingNetwork(z_dim=6, w_dim=5, num_layers=3)
    z = torch.randn(4, 6)
    w = mapping(z)
    assert w.shape == (4, 5)
    assert torch.allclose(mapping(3.0 * z), w, atol=1e-5)  # z normalized by its 2nd moment
    cond = MappingNetwork(z_dim=6, w_dim=5, num_layers=2, num_classes=3, embed_dim=2)
    labels = torch.tensor([0, 2, 1, 2])
    assert cond(z, labels).shape == (4, 5)
    assert torch.allclose(cond(z, F.one_hot(labels, 3).float()), cond(z, labels), atol=1e-6)
    assert not torch.allclose(cond(z, labels), cond(z, torch.zeros(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="labels"):
        cond(z)
    with pytest.raises(ValueError, match="unconditional"):
        mapping(z, labels)


def test_w_avg_update_maths_and_state() -> None:
    mapping = MappingNetwork(z_dim=2, w_dim=3, num_layers=1)
    assert torch.equal(mapping.w_avg, torch.zeros(3))
    mapping.w_avg.copy_(torch.tensor([1.0, 2.0, 3.0]))
    w = torch.tensor([[0.0, 0.0, 0.0], [2.0, 4.0, -6.0]], requires_grad=True)  # mean (1, 2, -3)
    mapping.update_w_avg(w, beta=0.75)
    assert torch.allclose(mapping.w_avg, torch.tensor([1.0, 2.0, 0.75 * 3 + 0.25 * -3]))
    mapping.update_w_avg(w.unsqueeze(1).expand(-1, 4, -1), beta=0.0)  # (B, num_ws, w_dim): plain mean
    assert torch.allclose(mapping.w_avg, torch.tensor([1.0, 2.0, -3.0]))
    assert "w_avg" in mapping.state_dict()


def test_truncation_maths() -> None:
    mapping = MappingNetwork(z_dim=2, w_dim=3, num_layers=1)
    mapping.w_avg.copy_(torch.tensor([1.0, -1.0, 0.5]))
    w = torch.randn(4, 3)
    assert torch.allclose(mapping.truncate(w, 0.0), mapping.w_avg.expand(4, 3))
    assert torch.allclose(mapping.truncate(w, 1.0), w)
    assert torch.allclose(mapping.truncate(w, 0.5), (w + mapping.w_avg) / 2)
    ws = torch.randn(4, 5, 3)
    out = mapping.truncate(ws, 0.0, cutoff=2)
    assert torch.allclose(out[:, :2], mapping.w_avg.expand(4, 2, 3))
    assert torch.equal(out[:, 2:], ws[:, 2:])
    with pytest.raises(ValueError, match="cutoff"):
        mapping.truncate(w, 0.5, cutoff=1)


def test_mix_styles_layout() -> None:
    w1, w2 = torch.zeros(2, 3), torch.ones(2, 3)
    out = mix_styles(w1, w2, 2, num_ws=5)
    assert out.shape == (2, 5, 3)
    assert torch.equal(out[:, :2], torch.zeros(2, 2, 3)) and torch.equal(out[:, 2:], torch.ones(2, 3, 3))
    assert torch.equal(mix_styles(w1, w2, 5, num_ws=5), torch.zeros(2, 5, 3))  # crossover = num_ws: no mixing
    per_sample = mix_styles(w1, w2.unsqueeze(1).expand(-1, 5, -1), torch.tensor([1, 4]), num_ws=5)
    assert per_sample[0, :, 0].tolist() == [0, 1, 1, 1, 1]
    assert per_sample[1, :, 0].tolist() == [0, 0, 0, 0, 1]


def test_random_crossover() -> None:
    assert random_crossover(6, prob=0.0) == 6
    points = random_crossover(6, prob=1.0, generator=torch.Generator().manual_seed(1), batch_size=200)
    assert isinstance(points, Tensor) and points.min() >= 1 and points.max() <= 5 and len(points.unique()) == 5
    a = random_crossover(6, prob=0.5, generator=torch.Generator().manual_seed(3), batch_size=50)
    b = random_crossover(6, prob=0.5, generator=torch.Generator().manual_seed(3), batch_size=50)
    assert torch.equal(a, b) and (a == 6).any() and (a < 6).any()
    assert 1 <= random_crossover(6, prob=1.0, generator=random.Random(0)) <= 5
    assert random_crossover(1, prob=1.0) == 1  # a single w cannot be mixed


# --- modulated convolution -----------------------------------------------------------------------------


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_matches_per_sample_reference(demodulate: bool, up: int, fused: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 6)
    weight = torch.randn(7, 4, 3, 3) / 6
    styles = torch.randn(3, 4)
    out = modulated_conv2d(x, weight, styles, demodulate=demodulate, padding=1, up=up, fused=fused)
    ref = modulated_conv2d_reference(x, weight, styles, demodulate=demodulate, padding=1, up=up)
    assert out.shape == (3, 7, 5 * up, 6 * up)
    assert torch.allclose(out, ref, atol=1e-5)
    # different samples really get different kernels
    assert not torch.allclose(modulated_conv2d(x[:1].expand(3, -1, -1, -1), weight, styles)[0],
                              modulated_conv2d(x[:1].expand(3, -1, -1, -1), weight, styles)[1])


def test_demodulation_gives_unit_variance() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 64, 12, 12)
    weight = torch.randn(32, 64, 3, 3)
    styles = torch.rand(8, 64) * 3 + 0.2  # far from 1, and different per channel
    out = modulated_conv2d(x, weight, styles, demodulate=True)  # padding 0: no zero border
    assert out.var().item() == pytest.approx(1.0, abs=0.06)
    plain = modulated_conv2d(x, weight, styles, demodulate=False)
    assert abs(plain.var().item() - 1.0) > 10  # without demodulation the scale is the weights'


def test_modulated_conv_module_starts_as_plain_conv() -> None:
    torch.manual_seed(0)
    mod = ModulatedConv2d(in_channels=3, out_channels=2, w_dim=4, demodulate=False)
    assert torch.allclose(mod.affine(torch.zeros(5, 4)), torch.ones(5, 3))  # affine bias initialized to 1
    x = torch.randn(5, 3, 4, 4)
    assert torch.allclose(mod(x, torch.zeros(5, 4)), F.conv2d(x, mod.weight / math.sqrt(27), padding=1), atol=1e-5)
    up = ModulatedConv2d(in_channels=3, out_channels=2, w_dim=4, up=2)
    assert up(torch.randn(2, 3, 2, 3), torch.randn(2, 4)).shape == (2, 2, 4, 6)
    with pytest.raises(ValueError, match="styles"):
        modulated_conv2d(x, mod.weight, torch.ones(4, 3))


def test_noise_injection_modes() -> None:
    torch.manual_seed(0)
    noise = NoiseInjection(size=(4, 6))
    x = torch.randn(2, 3, 4, 6)
    assert torch.equal(noise(x), x)  # strength starts at 0
    with torch.no_grad():
        noise.strength.fill_(2.0)
    assert torch.allclose(noise(x, noise_mode="const"), x + 2.0 * noise.noise_const)
    assert torch.equal(noise(x, noise_mode="none"), x)
    a, b = noise(x), noise(x)
    assert not torch.allclose(a, b)  # fresh noise each call
    assert torch.allclose((a - x)[:, 0], (a - x)[:, 2])  # one map, broadcast over channels
    given = torch.ones(2, 1, 4, 6)
    assert torch.allclose(noise(x, noise=given), x + 2.0)
    assert "noise_const" in noise.state_dict()
    with pytest.raises(ValueError, match="size"):
        NoiseInjection()(x, noise_mode="const")


# --- synthesis and discriminator stacks ----------------------------------------------------------------


def _synthesis(img_channels: int, architecture: str) -> tuple[ConstantInput, nn.ModuleList]:
    const = ConstantInput(channels=8, size=(2, 3))
    blocks = nn.ModuleList([
        SynthesisBlock(in_channels=8, out_channels=8, w_dim=6, img_channels=img_channels, first=True,
                       architecture=architecture, noise_size=(2, 3)),  # type: ignore[arg-type]
        SynthesisBlock(in_channels=8, out_channels=6, w_dim=6, img_channels=img_channels,
                       architecture=architecture, noise_size=(4, 6)),  # type: ignore[arg-type]
        SynthesisBlock(in_channels=6, out_channels=4, w_dim=6, img_channels=img_channels, is_last=True,
                       architecture=architecture, noise_size=(8, 12)),  # type: ignore[arg-type]
    ])
    return const, blocks


def _synthesize(const: ConstantInput, blocks: nn.ModuleList, ws: Tensor, noise_mode: str = "random") -> Tensor:
    x, img, i = const(ws.shape[0]), None, 0
    for block in blocks:
        x, img = block(x, img, ws.narrow(1, i, block.num_ws), noise_mode=noise_mode)
        i += block.num_conv  # the next block's first w is this block's ToImage w
    assert img is not None
    return img


@pytest.mark.parametrize("img_channels", [1, 3, 4])
@pytest.mark.parametrize("architecture", ["skip", "resnet"])
def test_non_square_synthesis_stack_and_backward(img_channels: int, architecture: str) -> None:
    torch.manual_seed(0)
    const, blocks = _synthesis(img_channels, architecture)
    num_ws = sum(b.num_conv for b in blocks) + 1
    assert num_ws == 6
    mapping = MappingNetwork(z_dim=5, w_dim=6, num_layers=2)
    ws = mix_styles(mapping(torch.randn(3, 5)), mapping(torch.randn(3, 5)), 3, num_ws)
    img = _synthesize(const, blocks, ws)
    assert img.shape == (3, img_channels, 8, 12)
    for block in blocks:  # noise strengths start at 0: make the modes distinguishable
        for m in block.modules():
            if isinstance(m, NoiseInjection):
                nn.init.constant_(m.strength, 0.5)
    assert torch.equal(_synthesize(const, blocks, ws, "const"), _synthesize(const, blocks, ws, "const"))
    assert not torch.allclose(_synthesize(const, blocks, ws), _synthesize(const, blocks, ws))
    _synthesize(const, blocks, ws).square().mean().backward()
    assert const.const.grad is not None and const.const.grad.abs().sum() > 0
    assert all(p.grad is not None for p in mapping.parameters())
    if architecture == "resnet":
        assert blocks[0].to_image is None and blocks[1].skip is not None
    with pytest.raises(ValueError, match="ws"):
        blocks[1](torch.zeros(3, 8, 2, 3), None, ws)


def test_synthesis_block_wiring() -> None:
    torch.manual_seed(0)
    x, img, ws = torch.randn(2, 4, 2, 3), torch.randn(2, 3, 2, 3), torch.randn(2, 3, 5)
    skip = SynthesisBlock(in_channels=4, out_channels=6, w_dim=5, img_channels=3)
    h = skip.conv1(skip.conv0(x, ws[:, 0], noise_mode="none"), ws[:, 1], noise_mode="none")
    out_x, out_img = skip(x, img, ws, noise_mode="none")
    assert torch.allclose(out_x, h, atol=1e-6)
    assert torch.allclose(out_img, upsample2x(img) + skip.to_image(h, ws[:, 2]), atol=1e-6)  # skip: images add up
    res = SynthesisBlock(in_channels=4, out_channels=6, w_dim=5, img_channels=3, architecture="resnet")
    assert res.num_ws == 2  # not the last block: no ToImage
    h = res.conv1(res.conv0(x, ws[:, 0], noise_mode="none"), ws[:, 1], noise_mode="none")
    out_x, out_img = res(x, None, ws[:, :2], noise_mode="none")
    assert out_img is None and torch.allclose(out_x, (h + res.skip(x)) / math.sqrt(2.0), atol=1e-6)


def test_to_image_any_channels() -> None:
    layer = ToImage(in_channels=5, out_channels=4, w_dim=3)
    assert layer(torch.randn(2, 5, 3, 7), torch.randn(2, 3)).shape == (2, 4, 3, 7)


@pytest.mark.parametrize("img_channels", [1, 3, 4])
def test_discriminator_stack_non_square(img_channels: int) -> None:
    torch.manual_seed(0)
    d = nn.Sequential(
        EqualizedConv2d(in_channels=img_channels, out_channels=8, kernel_size=1, activation="lrelu"),
        DBlock(in_channels=8, out_channels=8),
        DBlock(in_channels=8, out_channels=16, tmp_channels=12),
        DEpilogue(in_channels=16, size=(2, 3), mbstd_group_size=2),
    )
    img = torch.randn(4, img_channels, 8, 12, requires_grad=True)
    assert d[:2](img).shape == (4, 8, 4, 6)
    logits = d(img)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    assert img.grad is not None and all(p.grad is not None for p in d.parameters())
    with pytest.raises(ValueError, match="even"):
        DBlock(in_channels=8, out_channels=8)(torch.zeros(1, 8, 5, 6))
    cond = DEpilogue(in_channels=16, size=(2, 3), mbstd_num_channels=0, cmap_dim=4)
    assert cond(torch.randn(2, 16, 2, 3), torch.randn(2, 4)).shape == (2, 1)
    with pytest.raises(ValueError, match="cmap"):
        cond(torch.randn(2, 16, 2, 3))


def test_dblock_is_residual_average() -> None:
    block = DBlock(in_channels=2, out_channels=3)
    x = torch.randn(2, 2, 4, 4)
    expected = (block.conv1(block.conv0(x)) + block.skip(x)) / math.sqrt(2.0)
    assert torch.allclose(block(x), expected, atol=1e-6)
    skip = F.conv2d(F.avg_pool2d(x, 2), block.skip.weight / math.sqrt(2.0))
    assert torch.allclose(block.skip(x), skip, atol=1e-6)


# --- path length penalty, lazy regularization ----------------------------------------------------------


def test_path_length_penalty_against_hand_computation() -> None:
    torch.manual_seed(0)
    b, num_ws, w_dim, c, h, w = 3, 2, 4, 2, 3, 5
    a = torch.randn(c * h * w, num_ws * w_dim, dtype=torch.float64, requires_grad=True)
    ws = torch.randn(b, num_ws, w_dim, dtype=torch.float64, requires_grad=True)
    images = (ws.flatten(1) @ a.t()).view(b, c, h, w)  # linear G: the Jacobian is `a` for every sample
    noise = torch.randn(b, c, h, w, dtype=torch.float64) / math.sqrt(h * w)
    grads = (noise.flatten(1) @ a.detach()).view(b, num_ws, w_dim)  # J^T y, by hand
    lengths = grads.square().sum(2).mean(1).sqrt()  # (B,)
    plp = PathLengthPenalty(beta=0.9, weight=2.0).double()
    penalty = plp(images, ws, noise=noise)
    mean1 = 0.1 * lengths.mean()  # lerp from 0 towards the batch mean by 1 - beta
    assert plp.pl_mean.item() == pytest.approx(mean1.item())
    assert penalty.item() == pytest.approx((2.0 * (lengths - mean1).square().mean()).item())
    penalty.backward()  # differentiable w.r.t. G's parameters
    assert a.grad is not None and a.grad.abs().sum() > 0
    # a second step moves pl_mean by the same rule
    images = (ws.flatten(1) @ a.t()).view(b, c, h, w)
    plp(images, ws, noise=2 * noise)
    assert plp.pl_mean.item() == pytest.approx((0.9 * mean1 + 0.1 * 2 * lengths.mean()).item())
    assert "pl_mean" in plp.state_dict()
    frozen = plp.pl_mean.clone()
    plp(images, ws, noise=noise, update_mean=False)
    assert torch.equal(plp.pl_mean, frozen)


def test_path_length_random_noise_scale() -> None:
    a = torch.randn(2 * 4 * 6, 3)
    ws = torch.randn(2, 1, 3, requires_grad=True)
    images = (ws.flatten(1) @ a.t()).view(2, 2, 4, 6)
    torch.manual_seed(7)
    got = PathLengthPenalty().lengths(images, ws)
    torch.manual_seed(7)
    noise = torch.randn(2, 2, 4, 6) / math.sqrt(4 * 6)  # scaled by 1 / sqrt(H * W), not by C
    assert torch.allclose(got, (noise.flatten(1) @ a).norm(dim=1), atol=1e-5)


def test_lazy_regularization_correction() -> None:
    lr, (b1, b2) = lazy_regularization_correction(0.0025, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.002)
    assert b1 == 0.0 and b2 == pytest.approx(0.99**0.8)
    lr, (b1, b2) = lazy_regularization_correction(0.01, (0.5, 0.9), 16)
    assert lr == pytest.approx(0.01 * 16 / 17) and b1 == pytest.approx(0.5 ** (16 / 17))


# --- progressive growing -------------------------------------------------------------------------------


def test_progressive_schedule_boundaries() -> None:
    s = ProgressiveSchedule(stages=[(4, 6), (8, 12), (16, 24)], fade_steps=10, stable_steps=5, batch_sizes=[8, 4, 2])
    # stage 0: steps 0-4 (no fade); stage 1: 5-19 (fade 5-14); stage 2: from 20
    assert s.stage_at(0) == (0, 1.0) and s.stage_at(4) == (0, 1.0)
    assert s.stage_at(5) == (1, 0.0)
    assert s.stage_at(10) == (1, 0.5)
    assert s.stage_at(14) == (1, pytest.approx(0.9))
    assert s.stage_at(15) == (1, 1.0) and s.stage_at(19) == (1, 1.0)
    assert s.stage_at(20) == (2, 0.0)
    assert s.stage_at(s.total_steps) == (2, 1.0) and s.stage_at(10_000) == (2, 1.0)
    assert s.total_steps == 35 and s.stage_start(2) == 20
    assert s.resolution_at(12) == (8, 12) and s.batch_size_at(12) == 4 and s.batch_size_at(0) == 8
    assert s.is_fading(6) and not s.is_fading(16)
    # a pure function of the step: a "resumed" schedule, queried out of order, agrees
    again = ProgressiveSchedule(stages=[(4, 6), (8, 12), (16, 24)], fade_steps=10, stable_steps=5,
                                batch_sizes=[8, 4, 2])
    assert [again.stage_at(t) for t in (33, 7, 21)] == [s.stage_at(t) for t in (33, 7, 21)]
    per_stage = ProgressiveSchedule(stages=[(4, 4), (8, 8)], fade_steps=[0, 4], stable_steps=[3, 1])
    assert per_stage.stage_at(3) == (1, 0.0) and per_stage.stage_at(5) == (1, 0.5)
    with pytest.raises(ConfigError, match="fade_steps"):
        ProgressiveSchedule(stages=[(4, 4), (8, 8)], fade_steps=[2, 4], stable_steps=3)
    with pytest.raises(ConfigError, match="smaller"):
        ProgressiveSchedule(stages=[(8, 8), (4, 4)], fade_steps=2, stable_steps=3)
    with pytest.raises(ConfigError, match="one value per stage"):
        ProgressiveSchedule(stages=[(4, 4), (8, 8)], fade_steps=2, stable_steps=3, batch_sizes=[4])


def test_fade_in_ends_and_middle() -> None:
    low, high = torch.randn(2, 3, 2, 3), torch.randn(2, 3, 4, 6)
    up = F.interpolate(low, size=(4, 6), mode="nearest")
    assert torch.equal(fade_in(low, high, 0.0), up)
    assert torch.equal(fade_in(low, high, 1.0), high)
    assert torch.allclose(fade_in(low, high, 0.25), 0.75 * up + 0.25 * high, atol=1e-6)
    assert torch.allclose(fade_in(low, high, torch.tensor(0.5)), (up + high) / 2, atol=1e-6)
    smooth = fade_in(low, high, 0.0, mode="bilinear")
    assert torch.allclose(smooth, upsample2x(low), atol=1e-6)


def test_downsample_to_non_square() -> None:
    images = torch.arange(2 * 8 * 12, dtype=torch.float32).view(1, 2, 8, 12)
    half = downsample_to(images, (4, 6))
    assert torch.allclose(half, images.view(1, 2, 4, 2, 6, 2).mean(dim=(3, 5)))
    assert torch.allclose(downsample_to(images, (2, 3)), images.view(1, 2, 2, 4, 3, 4).mean(dim=(3, 5)))
    assert torch.allclose(downsample_to(images, (4, 3)), images.view(1, 2, 4, 2, 3, 4).mean(dim=(3, 5)))
    assert downsample_to(images, (8, 12)) is images
    assert downsample_to(torch.ones(1, 1, 6, 9), (4, 4)).allclose(torch.ones(1, 1, 4, 4))  # non-integer: area
    with pytest.raises(ValueError, match="cannot"):
        downsample_to(images, (16, 12))
