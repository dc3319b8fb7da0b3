"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B.

Two generators, G: A -> B and F: B -> A (ResNet-block or U-Net), and two PatchGAN discriminators, D_B (judges
B images: real ones against G's outputs) and D_A. G's phase (one optimizer over G and F) adds the adversarial
terms, the cycle-consistency L1 ||F(G(a)) - a|| + ||G(F(b)) - b|| weighted by `cycle_weight` (10), and the
identity L1 ||G(b) - b|| + ||F(a) - a|| weighted by `identity_weight * cycle_weight` (0.5 * 10), which keeps
colours when nothing needs changing. D's phase scores real images against fakes drawn from a 50-image history
per domain (ImagePool, family state: checkpointed, so a resumed run keeps its history). The paper's loss is
LSGAN (`loss.name: lsgan`); its learning rate is constant, then decays linearly to 0
(`train.lr_schedule: constant-linear`, `train.lr_decay_start: 0.5`).

Batch keys: "a" (domain A) and "x" (domain B); the two are unpaired (see ganforge.data.image2image_sets).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.models.base import FAMILIES, DataSpec, Family, ModelConfig, init_dcgan_weights
from ganforge.models.pix2pix import _no_gan_extras, auto_unet_depth, l1_reconstruction
from ganforge.models.sampler import TranslationSampler
from ganforge.nn.image2image import (
    NORMS,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    patch_output_shape,
)
from ganforge.train.phases import OptimizerSpec, PhaseContext, PhaseSpec, report_d_outputs

__all__ = ["CycleGANConfig", "CycleGANSampler", "cycle_consistency"]


@dataclass
class CycleGANConfig(ModelConfig):
    family: str = "cyclegan"  # unpaired translation A <-> B
    generator: str = "resnet"  # "resnet" (Johnson et al. blocks: CycleGAN's default) or "unet"
    g_base: int = 64  # generator channels at full resolution
    g_blocks: int = 9  # resnet: residual blocks at the lowest resolution (the paper: 6 for 128px, 9 for 256px)
    g_down: int = 2  # resnet: stride-2 downsamplings before the blocks
    g_upsample: str = "transpose"  # resnet: "transpose" (the paper) or "resize" (no checkerboard artefacts)
    g_depth: int = 0  # unet: levels; 0: as many as the image size allows
    g_norm: str = "instance"  # generator normalization: instance (the paper), batch or none
    d_base: int = 64  # PatchGAN channels in its first layer
    d_layers: int = 3  # PatchGAN stride-2 layers: receptive field 16, 34, 70, 142, 286 px for 1..5
    d_norm: str = "instance"  # PatchGAN normalization
    cycle_weight: float = 10.0  # lambda of the cycle-consistency L1 (both directions)
    identity_weight: float = 0.5  # identity L1 weight relative to cycle_weight (the paper: 0.5); 0 disables
    pool_size: int = 50  # fakes kept per domain for D (Shrivastava et al.); 0: D sees only the latest fakes

    def validate(self) -> None:
        if self.generator not in ("resnet", "unet"):
            raise ConfigError(f"model.generator must be 'resnet' or 'unet', got {self.generator!r}")
        if self.g_upsample not in ("transpose", "resize"):
            raise ConfigError(f"model.g_upsample must be 'transpose' or 'resize', got {self.g_upsample!r}")
        for name in ("g_norm", "d_norm"):
            if getattr(self, name) not in NORMS:
                raise ConfigError(f"model.{name} must be one of {', '.join(NORMS)}, got {getattr(self, name)!r}")
        for name in ("g_base", "d_base", "d_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("g_blocks", "g_down", "g_depth", "pool_size"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {getattr(self, name)}")
        if self.cycle_weight < 0 or self.identity_weight < 0:
            raise ConfigError("model.cycle_weight and model.identity_weight must be >= 0")


def cycle_consistency(reconstructed: Tensor, original: Tensor) -> Tensor:
    """||F(G(a)) - a||_1 (mean): the round trip must give the input back."""
    return l1_reconstruction(reconstructed, original)


def _generator(model: CycleGANConfig, spec: DataSpec, c_in: int, c_out: int):
    def build():
        if model.generator == "unet":
            depth = model.g_depth or auto_unet_depth(*spec.shape[-2:])
            g = UNetGenerator(in_channels=c_in, out_channels=c_out, base=model.g_base, depth=depth,
                              norm=model.g_norm, dropout=0.0)
        else:
            g = ResnetGenerator(in_channels=c_in, out_channels=c_out, base=model.g_base, n_blocks=model.g_blocks,
                                n_down=model.g_down, norm=model.g_norm, upsample=model.g_upsample)
        init_dcgan_weights(g)
        return g

    return build


def _discriminator(model: CycleGANConfig, channels: int):
    def build():
        d = PatchDiscriminator(in_channels=channels, base=model.d_base, n_layers=model.d_layers, norm=model.d_norm)
        init_dcgan_weights(d)
        return d

    return build


class CycleGANSampler(TranslationSampler):
    """a2b (G) and b2a (F). Previews show input | translation | round trip back (unpaired: no target)."""

    task = "translate"
    network_names = ("G", "F")
    directions = {"a2b": ("G", "a"), "b2a": ("F", "x")}
    target_key = ""  # unpaired data has no target

    def __init__(self, networks, *, config, spec) -> None:
        super().__init__(networks, config=config, spec=spec)
        self.multiple = self.nets["G"].divisor

    def preview(self, inputs: dict[str, Tensor]) -> Tensor:
        out = self.outputs(inputs)
        back = self(out, "b2a").float().cpu()
        return super().preview({**inputs, "target": back})


class CycleGAN(Family):
    name = "cyclegan"
    config_class = CycleGANConfig
    description = "CycleGAN: G A->B, F B->A, two PatchGANs, LSGAN + cycle + identity L1, 50-image pools"
    ema_networks = ("G", "F")
    sampler = CycleGANSampler

    def networks(self, model: CycleGANConfig, spec: DataSpec):
        c_a, c_b = spec.shape_of("a")[0], spec.shape[0]
        return {"G": _generator(model, spec, c_a, c_b), "F": _generator(model, spec, c_b, c_a),
                "D_A": _discriminator(model, c_a), "D_B": _discriminator(model, c_b)}

    def batch_keys(self, model):
        return ("x", "a")

    def state(self, cfg, spec: DataSpec):
        return {"pool_a": ImagePool(size=cfg.model.pool_size), "pool_b": ImagePool(size=cfg.model.pool_size)}

    def check(self, cfg, spec: DataSpec) -> None:
        if "a" not in dict(spec.extra_shapes):
            return
        shape_a, model = spec.shape_of("a"), cfg.model
        if len(shape_a) != 3 or shape_a[-2:] != spec.shape[-2:]:
            raise ConfigError(f"cyclegan needs domains of one image size; got {shape_a} and {spec.shape}")
        if model.identity_weight and shape_a[0] != spec.shape[0]:
            raise ConfigError(f"the identity loss needs domains with the same channels (A has {shape_a[0]}, B "
                              f"{spec.shape[0]}); set model.identity_weight=0 or data.channels")
        h, w = spec.shape[-2:]
        if model.generator == "resnet":
            k = 2**model.g_down
            if h % k or w % k or min(h, w) // k < 2:
                raise ConfigError(f"model.g_down {model.g_down} needs sides divisible by {k} and at least {2 * k}; "
                                  f"got {h}x{w}")
        patch_output_shape(h, w, model.d_layers)
        _no_gan_extras(cfg, self.name)

    def optimizers(self, cfg):
        t = cfg.train
        return {"G": OptimizerSpec(("G", "F"), lr=t.lr_g, betas=tuple(t.betas_g), weight_decay=t.weight_decay),
                "D": OptimizerSpec(("D_A", "D_B"), lr=t.lr_d, betas=tuple(t.betas_d), weight_decay=t.weight_decay)}

    def phases(self, cfg):
        model = cfg.model
        cycle_w, identity_w = model.cycle_weight, model.identity_weight * model.cycle_weight

        def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            batch = next(ctx.batches)
            a, b = batch["a"], batch["x"]
            G, F = ctx.nets.train["G"], ctx.nets.train["F"]
            D_A, D_B = ctx.nets.call["D_A"], ctx.nets.call["D_B"]
            with ctx.autocast():
                fake_b, fake_a = G(a), F(b)
                rec_a, rec_b = F(fake_b), G(fake_a)
                logits_b, logits_a = D_B(fake_b).float(), D_A(fake_a).float()
                if ctx.loss.g_needs_real:
                    real_b, real_a = D_B(b).float(), D_A(a).float()
                else:
                    real_b, real_a = logits_b.detach(), logits_a.detach()
                adversarial = ctx.loss.g(real_b, logits_b) + ctx.loss.g(real_a, logits_a)
                cycle = cycle_consistency(rec_a.float(), a) + cycle_consistency(rec_b.float(), b)
                loss = adversarial + cycle_w * cycle
                if identity_w:
                    identity = l1_reconstruction(G(b).float(), b) + l1_reconstruction(F(a).float(), a)
                    loss = loss + identity_w * identity
                    ctx.stats.report("identity", identity)
            ctx.stats.report("cycle", cycle)
            ctx.scratch["cyclegan"] = (a, b, fake_a.detach(), fake_b.detach())
            return loss

        def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            a, b, fake_a, fake_b = ctx.scratch.pop("cyclegan")
            fake_a, fake_b = ctx.state["pool_a"].query(fake_a), ctx.state["pool_b"].query(fake_b)
            D_A, D_B = ctx.nets.train["D_A"], ctx.nets.train["D_B"]
            with ctx.autocast():
                real_logits_b, fake_logits_b = D_B(b).float(), D_B(fake_b).float()
                real_logits_a, fake_logits_a = D_A(a).float(), D_A(fake_a).float()
            if measure:
                report_d_outputs(ctx.stats, torch.cat([real_logits_a.flatten(), real_logits_b.flatten()]),
                                 torch.cat([fake_logits_a.flatten(), fake_logits_b.flatten()]))
            # Halved, as in the paper, so D learns more slowly than G.
            return 0.5 * (ctx.loss.d(real_logits_b, fake_logits_b) + ctx.loss.d(real_logits_a, fake_logits_a))

        return [PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D_A", "D_B")),
                PhaseSpec("D", optimizer="D", loss=d_loss)]


FAMILIES.register("cyclegan")(CycleGAN())
