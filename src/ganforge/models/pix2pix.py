"""pix2pix (Isola et al. 2017): paired image-to-image translation A -> B with a conditional PatchGAN.

G is a U-Net (skip connections carry the input's edges and positions to the output); its only randomness is
dropout in the innermost decoder layers. D is a PatchGAN that sees the input and an output side by side
(channels concatenated) and returns one logit per overlapping patch of `patchgan_receptive_field(d_layers)`
pixels, so it judges local texture; the L1 term (weight `l1_weight`, 100 in the paper) gets the low
frequencies right. D's loss is halved, as in the paper, to slow D relative to G.

Batch keys: "a" (the input, e.g. edge maps) and "x" (the target B). The adversarial loss is the config's
`loss.name` (the paper's is the standard GAN loss: `nonsaturating`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.models.base import FAMILIES, DataSpec, Family, ModelConfig, init_dcgan_weights
from ganforge.models.sampler import TranslationSampler
from ganforge.nn.image2image import NORMS, PatchDiscriminator, UNetGenerator, patch_output_shape
from ganforge.train.phases import OptimizerSpec, PhaseContext, PhaseSpec, report_d_outputs

__all__ = ["Pix2PixConfig", "Pix2PixSampler", "auto_unet_depth", "l1_reconstruction"]

MAX_UNET_DEPTH = 8  # the paper's 256x256 -> 1x1


@dataclass
class Pix2PixConfig(ModelConfig):
    family: str = "pix2pix"  # paired translation A -> B
    g_base: int = 64  # U-Net channels at full resolution; doubling per level up to 8x
    g_depth: int = 0  # U-Net levels; 0: as many as the image size allows (up to 8; sides divisible by 2**depth)
    g_norm: str = "batch"  # U-Net normalization: batch, instance or none
    dropout: float = 0.5  # pix2pix's noise: dropout rate in the innermost decoder layers
    dropout_layers: int = 3  # how many innermost decoder layers have dropout
    d_base: int = 64  # PatchGAN channels in its first layer
    d_layers: int = 3  # PatchGAN stride-2 layers: receptive field 16, 34, 70, 142, 286 px for 1..5
    d_norm: str = "instance"  # PatchGAN normalization (instance: real and fake batches are scored apart)
    l1_weight: float = 100.0  # lambda of the L1 term against the target (the paper: 100)

    def validate(self) -> None:
        for name in ("g_base", "d_base", "d_layers", "dropout_layers"):
            if getattr(self, name) < (0 if name == "dropout_layers" else 1):
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.g_depth <= MAX_UNET_DEPTH:
            raise ConfigError(f"model.g_depth must be in [0, {MAX_UNET_DEPTH}] (0: automatic), got {self.g_depth}")
        for name in ("g_norm", "d_norm"):
            if getattr(self, name) not in NORMS:
                raise ConfigError(f"model.{name} must be one of {', '.join(NORMS)}, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.l1_weight < 0:
            raise ConfigError(f"model.l1_weight must be >= 0, got {self.l1_weight}")


def auto_unet_depth(height: int, width: int, *, maximum: int = MAX_UNET_DEPTH) -> int:
    """The most U-Net levels (<= maximum) whose 2**depth divides both sides: 2 for 28x28, 8 for 256x256."""
    depth = 0
    while depth < maximum and height % 2 ** (depth + 1) == 0 and width % 2 ** (depth + 1) == 0:
        depth += 1
    if depth == 0:
        raise ConfigError(f"a U-Net needs even image sides; got {height}x{width}")
    return depth


def l1_reconstruction(output: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error: pix2pix's L1 term (blurs less than L2)."""
    return (output - target).abs().mean()


def _depth(model: Pix2PixConfig, spec: DataSpec) -> int:
    return model.g_depth or auto_unet_depth(*spec.shape[-2:])


class Pix2PixSampler(TranslationSampler):
    """a2b: the U-Net on input images; sides that 2**depth does not divide are padded and cropped back."""

    task = "translate"
    directions = {"a2b": ("G", "a")}
    target_key = "x"

    def __init__(self, networks, *, config, spec) -> None:
        super().__init__(networks, config=config, spec=spec)
        self.multiple = self.nets["G"].divisor


class Pix2Pix(Family):
    name = "pix2pix"
    config_class = Pix2PixConfig
    description = "pix2pix: U-Net G + conditional PatchGAN D, adversarial + L1, paired A -> B"
    ema_networks = ("G",)
    sampler = Pix2PixSampler

    def networks(self, model: Pix2PixConfig, spec: DataSpec):
        c_a, c_b = spec.shape_of("a")[0], spec.shape[0]

        def generator() -> UNetGenerator:
            g = UNetGenerator(in_channels=c_a, out_channels=c_b, base=model.g_base, depth=_depth(model, spec),
                              norm=model.g_norm, dropout=model.dropout, dropout_layers=model.dropout_layers)
            init_dcgan_weights(g)  # the paper: N(0, 0.02)
            return g

        def discriminator() -> PatchDiscriminator:
            d = PatchDiscriminator(in_channels=c_a + c_b, base=model.d_base, n_layers=model.d_layers,
                                   norm=model.d_norm)
            init_dcgan_weights(d)
            return d

        return {"G": generator, "D": discriminator}

    def batch_keys(self, model):
        return ("x", "a")

    def check(self, cfg, spec: DataSpec) -> None:
        if "a" not in dict(spec.extra_shapes):
            return  # the trainer names the missing batch key
        shape_a = spec.shape_of("a")
        if len(shape_a) != 3 or shape_a[-2:] != spec.shape[-2:]:
            raise ConfigError(f"pix2pix needs inputs and targets of one size; got {shape_a} and {spec.shape}")
        depth = _depth(cfg.model, spec)
        if spec.shape[1] % 2**depth or spec.shape[2] % 2**depth:
            raise ConfigError(f"model.g_depth {depth} needs image sides divisible by {2**depth}, got "
                              f"{spec.shape[1]}x{spec.shape[2]}")
        patch_output_shape(spec.shape[1], spec.shape[2], cfg.model.d_layers)  # too small: a ConfigError
        _no_gan_extras(cfg, self.name)

    def optimizers(self, cfg):
        t = cfg.train
        return {"G": OptimizerSpec(("G",), lr=t.lr_g, betas=tuple(t.betas_g), weight_decay=t.weight_decay),
                "D": OptimizerSpec(("D",), lr=t.lr_d, betas=tuple(t.betas_d), weight_decay=t.weight_decay)}

    def phases(self, cfg):
        l1_weight = cfg.model.l1_weight

        def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            batch = next(ctx.batches)
            a, b = batch["a"], batch["x"]
            with ctx.autocast():
                fake = ctx.nets.train["G"](a)  # kept with its graph for G's phase (one G forward per step)
            ctx.scratch["pix2pix"] = (a, b, fake)
            D = ctx.nets.train["D"]
            with ctx.autocast():
                real_logits = D(torch.cat([a, b], 1)).float()  # (B, 1, h', w'): one logit per patch
                fake_logits = D(torch.cat([a, fake.detach()], 1)).float()
            if measure:
                report_d_outputs(ctx.stats, real_logits, fake_logits)
            return 0.5 * ctx.loss.d(real_logits, fake_logits)

        def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            a, b, fake = ctx.scratch.pop("pix2pix")
            D = ctx.nets.call["D"]
            with ctx.autocast():
                fake_logits = D(torch.cat([a, fake], 1)).float()
                real_logits = D(torch.cat([a, b], 1)).float() if ctx.loss.g_needs_real else fake_logits.detach()
            l1 = l1_reconstruction(fake.float(), b)
            ctx.stats.report("l1", l1)
            return ctx.loss.g(real_logits, fake_logits) + l1_weight * l1

        return [PhaseSpec("D", optimizer="D", loss=d_loss), PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D",))]


def _no_gan_extras(cfg, family: str) -> None:
    """The image-to-image families do not apply loss.regularizers / loss.augment: refuse them, not ignore them."""
    if cfg.loss.regularizers or cfg.loss.augment:
        raise ConfigError(f"model family {family!r} does not use loss.regularizers or loss.augment; remove them")


FAMILIES.register("pix2pix")(Pix2Pix())
