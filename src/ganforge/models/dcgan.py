"""DCGAN family: the classic DCGAN (Radford et al. 2016) at any power-of-two-ish size, and seed 001's.

`dcgan`: G projects z to a (W*2^k, h0, w0) map and doubles it k times with 4x4 stride-2 transposed convs
(batch norm + ReLU), ending in tanh; D mirrors it with stride-2 convs and LeakyReLU(0.2), no batch norm on
its first layer. Channels and resolution come from the data; non-square sizes work.

`seed001`: exactly seed 001's Keras model: Dense -> 7x7x256, ConvT 128 (5x5, stride 1), ConvT 64 (stride 2),
ConvT C (stride 2, tanh), with ReLU then batch norm; D: Conv 64 / 128 (5x5, stride 2), LeakyReLU then batch
norm, Dense 1 on logits. Keras defaults are kept (LeakyReLU slope 0.3, batch-norm eps 1e-3, momentum 0.99).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ganforge.errors import ConfigError
from ganforge.models.base import (
    FAMILIES,
    AdversarialFamily,
    DataSpec,
    Discriminator,
    Generator,
    ModelConfig,
    init_dcgan_weights,
    num_upsamplings,
)
from ganforge.nn.spectral import apply_spectral_norm


@dataclass
class DCGANConfig(ModelConfig):
    family: str = "dcgan"  # classic DCGAN
    g_channels: int = 64  # G width at full resolution (ngf); doubles per halving of resolution
    d_channels: int = 64  # D width at full resolution (ndf); doubles per halving of resolution
    max_channels: int = 512  # cap on any layer's width
    d_batchnorm: bool = True  # batch norm in D (off for WGAN-GP, whose penalty is per-sample)
    # How G doubles its resolution: "transposed" (DCGAN: 4x4 stride-2 transposed conv) or "resize" (nearest-
    # neighbour upsampling, then a 3x3 conv: Odena et al. 2016's resize-convolution, no uneven kernel overlap)
    g_upsample: str = "transposed"
    # G's output squashing: "tanh" (DCGAN) or "clamp" (hard tanh: identity in [-1, 1], flat outside). tanh reaches
    # the data's -1 background only asymptotically, so G leaves a faint haze where MNIST-like data are exactly 0;
    # a clamp reaches it at finite pre-activations. Measured at full length (RESULTS.md, issue 15, section 2g): the
    # haze goes, but the Inception FID does not fall (level on MNIST, worse on Fashion-MNIST's soft shading)
    g_output: str = "tanh"

    def validate(self) -> None:
        super().validate()
        for name in ("g_channels", "d_channels", "max_channels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be > 0, got {getattr(self, name)}")
        if self.g_upsample not in G_UPSAMPLES:
            raise ConfigError(f"model.g_upsample must be one of {', '.join(G_UPSAMPLES)}, got {self.g_upsample!r}")
        if self.g_output not in G_OUTPUTS:
            raise ConfigError(f"model.g_output must be one of {', '.join(G_OUTPUTS)}, got {self.g_output!r}")


G_UPSAMPLES = ("transposed", "resize")  # DCGAN's transposed conv, or nearest-neighbour upsampling + 3x3 conv
G_OUTPUTS = {"tanh": nn.Tanh, "clamp": nn.Hardtanh}  # G's last activation, by model.g_output


def upsample_conv(c_in: int, c_out: int, *, how: str, bias: bool) -> nn.Module:
    """A layer that doubles height and width: 4x4 stride-2 transposed conv, or nearest x2 then 3x3 conv."""
    if how == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias))
    return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)


class DCGANGenerator(Generator):
    def __init__(self, *, config: DCGANConfig, spec: DataSpec) -> None:
        super().__init__(config=config, spec=spec)
        if not spec.is_image:
            raise ConfigError("the dcgan family needs image data; use model.family=mlp for points")
        channels, height, width = spec.shape
        k = num_upsamplings((height, width))
        self.start = (height >> k, width >> k)
        widths = [min(config.g_channels * 2 ** (k - i), config.max_channels) for i in range(k + 1)]
        self.project = nn.Sequential(  # z -> (widths[0], h0, w0): the 4x4 "ConvT from 1x1" of DCGAN
            nn.Linear(config.latent_dim, widths[0] * self.start[0] * self.start[1], bias=False),
        )
        self.project_norm = nn.Sequential(nn.BatchNorm2d(widths[0]), nn.ReLU(True))
        blocks: list[nn.Module] = []
        for i in range(k):
            last = i == k - 1
            out = channels if last else widths[i + 1]
            blocks.append(upsample_conv(widths[i], out, how=config.g_upsample, bias=last))
            blocks += [G_OUTPUTS[config.g_output]()] if last else [nn.BatchNorm2d(out), nn.ReLU(True)]
        if k == 0:  # tiny images: a single 3x3 conv to the output channels
            blocks = [nn.Conv2d(widths[0], channels, 3, 1, 1), G_OUTPUTS[config.g_output]()]
        self.blocks = nn.Sequential(*blocks)
        init_dcgan_weights(self)
        if config.g_spectral_norm:
            apply_spectral_norm(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.project(self.condition(z, labels)).view(z.shape[0], -1, *self.start)  # (B, W0, h0, w0)
        return self.blocks(self.project_norm(h))  # (B, C, H, W)


def dcgan_trunk(config: DCGANConfig):
    def build(in_shape: tuple[int, ...]) -> nn.Module:
        channels, height, width = in_shape
        k = num_upsamplings((height, width))
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(k):
            c_out = min(config.d_channels * 2**i, config.max_channels)
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not (config.d_batchnorm and i > 0)))
            if config.d_batchnorm and i > 0:  # DCGAN: no batch norm on D's input layer
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        if k == 0:
            layers += [nn.Conv2d(c_in, config.d_channels, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
        trunk = nn.Sequential(*layers)  # (B, W_k, h0, w0)
        init_dcgan_weights(trunk)
        return trunk

    return build


@dataclass
class Seed001Config(ModelConfig):
    family: str = "seed001"  # seed 001's Keras DCGAN for 28x28 MNIST
    latent_dim: int = 100  # seed 001: NOISE_DIM = 100
    # Ablation switches (benchmarks/seed001_ablation.py); the defaults are the seed's model exactly. As written the
    # recipe collapses on MNIST; the `seed001-fixed` preset changes only what the ablation found responsible.
    d_batchnorm: bool = True  # batch norm after each D conv (seed); False: none (the TF DCGAN tutorial's D has none)
    d_norm_order: str = "act-bn"  # D's conv blocks: "act-bn" (seed: LeakyReLU, then batch norm) or "bn-act"
    g_norm_order: str = "act-bn"  # G's conv blocks: "act-bn" (seed: ReLU, then batch norm) or "bn-act" (DCGAN)
    init: str = "default"  # weights: "default" (torch's layer defaults) or "dcgan" (N(0, 0.02), Radford et al.)
    d_dropout: float = 0.0  # dropout after each D block (seed: none; the TF DCGAN tutorial's D: 0.3)

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.d_dropout < 1.0:
            raise ConfigError(f"model.d_dropout must be in [0, 1), got {self.d_dropout}")
        for name in ("d_norm_order", "g_norm_order"):
            if getattr(self, name) not in NORM_ORDERS:
                raise ConfigError(f"model.{name} must be one of {', '.join(NORM_ORDERS)}, got {getattr(self, name)!r}")
        if self.init not in ("default", "dcgan"):
            raise ConfigError(f"model.init must be 'default' or 'dcgan', got {self.init!r}")


NORM_ORDERS = ("act-bn", "bn-act")  # activation then batch norm (seed 001), or batch norm then activation


def _block(conv: nn.Module, act: nn.Module, norm: nn.Module | None, order: str) -> list[nn.Module]:
    """conv -> act -> norm ("act-bn") or conv -> norm -> act ("bn-act"); no norm: conv -> act."""
    if norm is None:
        return [conv, act]
    return [conv, act, norm] if order == "act-bn" else [conv, norm, act]


class Seed001Generator(Generator):
    def __init__(self, *, config: Seed001Config, spec: DataSpec) -> None:
        super().__init__(config=config, spec=spec)
        if not spec.is_image or spec.shape[1] % 4 or spec.shape[2] % 4:
            raise ConfigError(f"seed001 needs images with sides divisible by 4 (e.g. 28x28), got {spec.shape}")
        channels, height, width = spec.shape
        self.start = (height // 4, width // 4)
        self.dense = nn.Sequential(nn.Linear(config.latent_dim, 256 * self.start[0] * self.start[1]), nn.ReLU())
        order = config.g_norm_order
        self.convs = nn.Sequential(
            *_block(nn.ConvTranspose2d(256, 128, 5, 1, 2), nn.ReLU(), _keras_bn(128), order),  # (B, 128, H/4, W/4)
            *_block(nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1), nn.ReLU(), _keras_bn(64),
                    order),  # (B, 64, H/2, W/2)
            nn.ConvTranspose2d(64, channels, 5, 2, 2, output_padding=1), nn.Tanh(),  # (B, C, H, W)
        )
        if config.init == "dcgan":
            init_dcgan_weights(self)
        if config.g_spectral_norm:
            apply_spectral_norm(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.dense(self.condition(z, labels)).view(z.shape[0], 256, *self.start)
        return self.convs(h)


def seed001_trunk(config: Seed001Config):
    def build(in_shape: tuple[int, ...]) -> nn.Module:
        bn, order = (_keras_bn if config.d_batchnorm else lambda c: None), config.d_norm_order

        def drop() -> list[nn.Module]:  # none at 0: the seed's layer indices, so its checkpoints load
            return [nn.Dropout(config.d_dropout)] if config.d_dropout > 0 else []

        trunk = nn.Sequential(
            *_block(nn.Conv2d(in_shape[0], 64, 5, 2, 2), nn.LeakyReLU(0.3), bn(64), order),  # (B, 64, H/2, W/2)
            *drop(),
            *_block(nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.3), bn(128), order),  # (B, 128, H/4, W/4)
            *drop(),
        )
        if config.init == "dcgan":
            init_dcgan_weights(trunk)
        return trunk

    return build


def seed001_discriminator(config: Seed001Config, spec: DataSpec) -> Discriminator:
    D = Discriminator(config=config, spec=spec, trunk=seed001_trunk(config))
    if config.init == "dcgan":  # the head too; under spectral norm its stored (original) weight is the one to set
        head = D.head
        weight = head.parametrizations.weight.original if parametrize.is_parametrized(head, "weight") else head.weight
        with torch.no_grad():
            nn.init.normal_(weight, 0.0, 0.02)
            nn.init.zeros_(head.bias)
    return D


def _keras_bn(channels: int) -> nn.BatchNorm2d:
    # Keras BatchNormalization defaults: epsilon 1e-3, moving-average momentum 0.99 (= torch momentum 0.01).
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


FAMILIES.register("dcgan")(
    AdversarialFamily(
        name="dcgan",
        config_class=DCGANConfig,
        generator=lambda cfg, spec: DCGANGenerator(config=cfg, spec=spec),
        discriminator=lambda cfg, spec: Discriminator(config=cfg, spec=spec, trunk=dcgan_trunk(cfg)),
        description="classic DCGAN (Radford et al.), size and channels from the data",
    )
)
FAMILIES.register("seed001")(
    AdversarialFamily(
        name="seed001",
        config_class=Seed001Config,
        generator=lambda cfg, spec: Seed001Generator(config=cfg, spec=spec),
        discriminator=seed001_discriminator,
        description="seed 001's Keras DCGAN: Dense->7x7x256, ConvT 128/64/C, batch 256, Adam 1e-4",
    )
)
