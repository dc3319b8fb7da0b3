"""ProGAN family (Karras et al. 2018, "Progressive Growing of GANs"): a convolutional G and D that grow.

G: pixel-normalized z -> equalized fc to (W0, h0, w0) -> conv3x3; then per resolution: nearest upsample x2,
two conv3x3, each LeakyReLU(0.2) + pixel norm; a 1x1 ToImage per resolution. D mirrors it: a 1x1 FromImage per
resolution, per resolution two conv3x3 + 2x2 average pool, then minibatch stddev, conv3x3 and two fc layers
(projection on a label embedding when conditional). Equalized learning rate everywhere. While a stage fades in
G's output is (1 - alpha) * upsample(ToImage of the stage below) + alpha * ToImage(new block), and D's features
are the same blend of the new block's and the FromImage of the downsampled input (ganforge.models.growing).

With `progressive.enabled: false` it is a plain equalized-LR DCGAN-like pair at the data's size. The losses and
regularizers are the config's (`loss.name`, `loss.regularizers`): the paper used WGAN-GP with a drift term.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.models.base import FAMILIES, DataSpec, Family, ModelConfig, NoiseInputs
from ganforge.models.growing import (
    GrowingSampler,
    ProgressiveConfig,
    StageModule,
    growing_adversarial_phases,
    set_stage_on_step,
    stage_sizes,
    stage_widths,
    upsample_to,
    validate_growing_model,
)
from ganforge.nn.progressive import downsample_to, fade_in
from ganforge.nn.style import DEpilogue, EqualizedConv2d, EqualizedLinear, normalize_2nd_moment
from ganforge.train.phases import OptimizerSpec, PhaseContext, PhaseSpec, adversarial_optimizers


@dataclass
class ProGANConfig(ModelConfig):
    family: str = "progan"  # progressive growing of a convolutional G and D (ProGAN)
    latent_dim: int = 128  # size of z (pixel-normalized, so only its direction matters)
    channels: int = 32  # G and D width at full resolution; doubles per halving of resolution
    max_channels: int = 256  # cap on any layer's width
    mbstd_group_size: int = 4  # minibatch stddev group size in D's last block
    progressive: ProgressiveConfig = field(default_factory=lambda: ProgressiveConfig(enabled=True))  # the stages

    def validate(self) -> None:
        super().validate()
        for name in ("channels", "max_channels", "mbstd_group_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        validate_growing_model(self, "progan")


def _conv(c_in: int, c_out: int, kernel: int = 3) -> EqualizedConv2d:
    return EqualizedConv2d(in_channels=c_in, out_channels=c_out, kernel_size=kernel, activation="lrelu")


class PixelNormConv(nn.Module):
    """conv3x3 (equalized, lrelu) then pixel norm: each pixel's feature vector to unit second moment."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = _conv(c_in, c_out)

    def forward(self, x: Tensor) -> Tensor:
        return normalize_2nd_moment(self.conv(x))


class ProGenerator(NoiseInputs, StageModule):
    """z (B, latent_dim) [+ labels] -> images (B, C, H, W); any C, square or not (sides from a >= 4 start)."""

    def __init__(self, *, config: ProGANConfig, spec: DataSpec) -> None:
        super().__init__()
        if not spec.is_image:
            raise ConfigError("the progan family needs image data; use model.family=mlp for points")
        self.config, self.spec = config, spec
        self.latent_dim = config.latent_dim
        self.num_classes = spec.num_classes if config.conditional else 0
        self.sizes = stage_sizes(spec)
        widths = stage_widths(config.channels, config.max_channels, len(self.sizes))
        h0, w0 = self.sizes[0]
        self.embed = nn.Embedding(self.num_classes, config.latent_dim) if self.num_classes else None
        self.project = EqualizedLinear(in_features=config.latent_dim, out_features=widths[0] * h0 * w0,
                                       activation="lrelu")
        self.blocks = nn.ModuleList([PixelNormConv(widths[0], widths[0])] + [
            nn.Sequential(PixelNormConv(widths[i - 1], widths[i]), PixelNormConv(widths[i], widths[i]))
            for i in range(1, len(self.sizes))])
        self.to_images = nn.ModuleList(
            EqualizedConv2d(in_channels=w, out_channels=spec.shape[0], kernel_size=1) for w in widths)
        self._init_stage(len(self.sizes))

    def forward(self, z: Tensor, labels: Tensor | None = None, *, stage_output: bool = False) -> Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: pass class labels")
            x = normalize_2nd_moment(x * self.embed(labels))
        stage, alpha = self.current()
        h = normalize_2nd_moment(self.project(x).view(z.shape[0], -1, *self.sizes[0]))  # (B, W0, h0, w0)
        h = self.blocks[0](h)
        previous = None
        for i in range(1, stage + 1):
            previous = h
            h = self.blocks[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        img = self.to_images[stage](h)
        if previous is not None and alpha < 1.0:
            img = fade_in(self.to_images[stage - 1](previous), img, alpha, mode="nearest")
        return img if stage_output else upsample_to(img, self.spec.shape[1:])



class ProDiscriminator(StageModule):
    """Images (B, C, H, W) [+ labels] -> logits (B,); larger images are averaged down to the current stage."""

    def __init__(self, *, config: ProGANConfig, spec: DataSpec) -> None:
        super().__init__()
        self.config, self.spec = config, spec
        self.num_classes = spec.num_classes if config.conditional else 0
        self.sizes = stage_sizes(spec)
        widths = stage_widths(config.channels, config.max_channels, len(self.sizes))
        self.from_images = nn.ModuleList(_conv(spec.shape[0], w, kernel=1) for w in widths)
        self.blocks = nn.ModuleList([nn.Identity()] + [
            nn.Sequential(_conv(widths[i], widths[i]), _conv(widths[i], widths[i - 1]), nn.AvgPool2d(2))
            for i in range(1, len(self.sizes))])
        cmap_dim = widths[0] if self.num_classes else 0
        self.embed = nn.Embedding(self.num_classes, cmap_dim) if self.num_classes else None
        self.epilogue = DEpilogue(in_channels=widths[0], size=self.sizes[0], mbstd_group_size=config.mbstd_group_size,
                                  cmap_dim=cmap_dim)
        self._init_stage(len(self.sizes))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        stage, alpha = self.current()
        if tuple(x.shape[-2:]) != self.sizes[stage]:
            x = downsample_to(x, self.sizes[stage])
        h = self.from_images[stage](x)
        if stage > 0:
            h = self.blocks[stage](h)
            if alpha < 1.0:
                h = fade_in(self.from_images[stage - 1](downsample_to(x, self.sizes[stage - 1])), h, alpha)
        for i in range(stage - 1, 0, -1):
            h = self.blocks[i](h)
        cmap = None
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            cmap = self.embed(labels)
        return self.epilogue(h, cmap).squeeze(1)


class ProGANFamily(Family):
    name = "progan"
    config_class = ProGANConfig
    description = "ProGAN: progressive growing with fade-in, pixel norm, equalized LR, minibatch stddev"
    ema_networks = ("G",)
    sampler = GrowingSampler  # noise -> images, reporting the stage's detail; no truncation (no w space)

    def networks(self, model: ProGANConfig, spec: DataSpec):
        return {"G": lambda: ProGenerator(config=model, spec=spec),
                "D": lambda: ProDiscriminator(config=model, spec=spec)}

    def optimizers(self, cfg) -> dict[str, OptimizerSpec]:
        return adversarial_optimizers(cfg)

    def phases(self, cfg) -> list[PhaseSpec]:
        return growing_adversarial_phases(cfg)

    def batch_keys(self, model: ModelConfig) -> tuple[str, ...]:
        return ("x", "y") if model.conditional else ("x",)

    def on_step(self, ctx: PhaseContext, step: int) -> None:
        set_stage_on_step(ctx, step)

    def check(self, cfg, spec: DataSpec) -> None:
        if cfg.model.conditional and not spec.num_classes:
            raise ConfigError("model.conditional needs labelled data; this dataset has no labels")
        if not spec.is_image:
            raise ConfigError("the progan family needs image data; use model.family=mlp for points")


FAMILIES.register("progan")(ProGANFamily())
