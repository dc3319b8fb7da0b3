"""SRGAN and SRResNet (Ledig et al. 2017): single-image super-resolution x2 / x4 / x8.

G is SRResNet: residual blocks at the low resolution, then log2(scale) sub-pixel (PixelShuffle) x2 stages.
Two modes:
- `srresnet`: G alone, trained on a pixel loss (MSE, or L1). Maximises PSNR; outputs are smooth.
- `srgan`: the same pixel loss alone for `warmup_steps` (the paper starts SRGAN from a trained SRResNet), then
  a PatchGAN D joins and G minimises content + adv_weight * adversarial (+ pixel_weight * pixel) loss. The
  content loss compares features of the output and the target in a fixed network's space:
  `content: auto` takes torchvision's VGG19 (relu5_4, "VGG54") when its ImageNet weights are on disk
  (model.vgg_weights, or torch.hub's cache; never downloaded), else the data's domain classifier (MNIST,
  Fashion-MNIST; ganforge.metrics.domain) when the data are those digits, else D's own features. The run says
  which one it used (stderr, and the checkpoint's family_state.content).

Batch keys: "x_lowres" (the input) and "x" (the high-res target); the scale is their size ratio.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.models.base import FAMILIES, DataSpec, Family, ModelConfig
from ganforge.models.pix2pix import _no_gan_extras
from ganforge.models.sampler import TranslationSampler
from ganforge.nn.image2image import NORMS, PatchDiscriminator, SRResNetGenerator, patch_output_shape
from ganforge.train.phases import OptimizerSpec, PhaseContext, PhaseSpec, report_d_outputs

__all__ = ["CONTENT_PROVIDERS", "CONTENT_SOURCES", "ContentFeatures", "DomainFeatures", "SRGANConfig", "SRSampler",
           "content_loss", "pixel_loss", "sr_scale", "vgg19_weights_path"]

MODES = ("srresnet", "srgan")
CONTENT_SOURCES = ("auto", "vgg", "domain", "discriminator")
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's IMAGENET1K_V1 weights, as torch.hub caches them
VGG54_LAYERS = 36  # vgg19.features[:36] ends at relu5_4 (the paper's VGG54)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class SRGANConfig(ModelConfig):
    family: str = "srgan"  # super-resolution
    mode: str = "srgan"  # "srresnet": pixel loss only; "srgan": pixel warm-up, then content + adversarial
    g_blocks: int = 16  # residual blocks (the paper: 16)
    g_width: int = 64  # channels inside G
    g_norm: str = "batch"  # G normalization: batch (the paper) or none (EDSR)
    g_output: str = "linear"  # "linear" (clamped when sampled; EDSR) or "tanh" (can saturate and stop learning)
    d_base: int = 64  # PatchGAN channels in its first layer
    d_layers: int = 3  # PatchGAN stride-2 layers (receptive field 16, 34, 70, ... px of the high-res image)
    d_norm: str = "batch"  # PatchGAN normalization (the paper's D uses batch norm)
    pixel: str = "mse"  # pixel loss: "mse" (the paper; PSNR) or "l1"
    warmup_steps: int = 1000  # srgan: steps of pixel loss alone before D and the content loss start
    content: str = "auto"  # feature space of the content loss: auto, vgg, domain, discriminator (see module doc)
    vgg_weights: str | None = None  # path to torchvision's vgg19 ImageNet weights; None: torch.hub's cache
    content_weight: float = 1.0  # weight of the content (feature MSE) loss
    adv_weight: float = 1e-3  # weight of the adversarial loss (the paper: 1e-3)
    pixel_weight: float = 0.0  # srgan: pixel loss kept after the warm-up (0: content + adversarial only)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"model.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.content not in CONTENT_SOURCES:
            raise ConfigError(f"model.content must be one of {', '.join(CONTENT_SOURCES)}, got {self.content!r}")
        if self.pixel not in PIXEL_LOSSES:
            raise ConfigError(f"model.pixel must be one of {', '.join(PIXEL_LOSSES)}, got {self.pixel!r}")
        for name in ("g_norm", "d_norm"):
            if getattr(self, name) not in NORMS:
                raise ConfigError(f"model.{name} must be one of {', '.join(NORMS)}, got {getattr(self, name)!r}")
        if self.g_output not in ("linear", "tanh"):
            raise ConfigError(f"model.g_output must be 'linear' or 'tanh', got {self.g_output!r}")
        for name in ("g_width", "d_base", "d_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("g_blocks", "warmup_steps", "content_weight", "adv_weight", "pixel_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {getattr(self, name)}")


# --- losses -----------------------------------------------------------------------------------------------

PIXEL_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def pixel_loss(kind: str, output: Tensor, target: Tensor) -> Tensor:
    """Pixel-space reconstruction loss by name: "mse" (maximises PSNR) or "l1"."""
    return PIXEL_LOSSES[kind](output, target)


def content_loss(features_output: Tensor, features_target: Tensor) -> Tensor:
    """SRGAN's content loss: the mean squared distance of two images' features in a fixed network's space."""
    return (features_output - features_target).square().mean()


# --- content feature spaces ---------------------------------------------------------------------------------


def vgg19_weights_path(configured: str | None) -> Path | None:
    """Where VGG19's weights are on disk (model.vgg_weights, else torch.hub's cache), or None: never downloaded."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.vgg_weights {path} is not a file")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return cached if cached.is_file() else None


class _VGGFeatures(nn.Module):
    """VGG19 up to relu5_4 on [-1, 1] images (1 or 3 channels): ImageNet normalisation inside."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = vgg19(weights=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.body = net.features[:VGG54_LAYERS]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        return self.body(((x + 1) / 2 - self.mean) / self.std)


class DomainFeatures(nn.Module):
    """The domain classifier's penultimate features on [-1, 1] images (luma, resized to 28x28)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.body = classifier.body

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] >= 3:
            x = (x[:, :3] * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, True)
        if x.shape[-2:] != (28, 28):
            x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
        return self.body(x)


class ContentFeatures(nn.Module):
    """Family state of an srgan run: which feature space its content loss uses, and that (frozen) network.

    Only the name travels in checkpoints (extra state); the network is rebuilt from disk and is not saved
    with every checkpoint. `source` is "vgg19", "domain-<dataset>" or "discriminator" (D's own features).
    """

    def __init__(self, source: str, extractor: nn.Module | None) -> None:
        super().__init__()
        self.source = source
        self._extractor = [extractor.eval().requires_grad_(False)] if extractor is not None else []  # unregistered

    @property
    def extractor(self) -> nn.Module | None:
        return self._extractor[0] if self._extractor else None

    def get_extra_state(self) -> dict[str, Any]:
        return {"source": self.source}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("source") != self.source:
            raise ValueError(f"the checkpoint's content loss used {state.get('source')!r}, this run {self.source!r}")

    def _apply(self, fn, *args, **kwargs):  # .to(device) moves the unregistered extractor too
        super()._apply(fn, *args, **kwargs)
        if self._extractor:
            self._extractor[0]._apply(fn, *args, **kwargs)
        return self

    def extra_repr(self) -> str:
        return f"source={self.source!r}"


# Feature networks for the content loss that live above the models layer (the domain classifiers belong to
# ganforge.metrics, which imports the models): name -> provider(cfg) -> (source name, network) or None when it
# does not apply to the config's data. ganforge.train.content fills it; the trainer imports that module.
CONTENT_PROVIDERS: dict[str, Callable[[Any], tuple[str, nn.Module] | None]] = {}


def _domain_sr_dataset(cfg) -> str:
    """The dataset an SR run's images come from (what a domain classifier must know)."""
    return cfg.data.task.source if cfg.data.name == "sr" else cfg.data.name


def build_content(cfg) -> ContentFeatures:
    """The content feature space the config asks for (see the module docstring), loaded from disk."""
    model = cfg.model
    choice = model.content
    if choice in ("auto", "vgg"):
        path = vgg19_weights_path(model.vgg_weights)
        if path is not None:
            return ContentFeatures("vgg19", _VGGFeatures(path))
        if choice == "vgg":
            raise ConfigError(f"model.content=vgg needs VGG19's weights on disk ({VGG19_FILE} in "
                              f"{Path(torch.hub.get_dir()) / 'checkpoints'}, or model.vgg_weights); none found")
    if choice in ("auto", "domain"):
        provider = CONTENT_PROVIDERS.get("domain")
        found = provider(cfg) if provider is not None else None
        if found is not None:
            return ContentFeatures(found[0], found[1])
        if choice == "domain":
            raise ConfigError("model.content=domain needs MNIST or Fashion-MNIST data (a domain classifier)")
    return ContentFeatures("discriminator", None)


# --- sampler and family -----------------------------------------------------------------------------------


def sr_scale(spec: DataSpec) -> int:
    """The upscaling factor: high-res size / low-res size (equal on both axes)."""
    h, w = spec.shape[-2:]
    lh, lw = spec.shape_of("x_lowres")[-2:]
    if h % lh or w % lw or h // lh != w // lw:
        raise ConfigError(f"super-resolution needs high-res {h}x{w} to be k times low-res {lh}x{lw}")
    return h // lh


class SRSampler(TranslationSampler):
    """Low-res images -> `scale` times larger ones; big inputs run in overlapping tiles."""

    task = "upscale"
    directions = {"up": ("G", "x_lowres")}
    target_key = "x"
    tile = 128  # input pixels per tile side (512 output pixels at x4)

    def __init__(self, networks, *, config, spec) -> None:
        super().__init__(networks, config=config, spec=spec)
        self.scale = self.nets["G"].scale

    def forward(self, x: Tensor, direction: str | None = None) -> Tensor:
        return super().forward(x, direction).clamp(-1.0, 1.0)  # a linear-output G may overshoot the data range


class SRGAN(Family):
    name = "srgan"
    config_class = SRGANConfig
    description = "SRGAN / SRResNet: residual G with PixelShuffle x2/x4, pixel then content + adversarial loss"
    ema_networks = ("G",)
    sampler = SRSampler

    def networks(self, model: SRGANConfig, spec: DataSpec):
        channels = spec.shape[0]
        nets = {"G": lambda: SRResNetGenerator(channels=channels, scale=sr_scale(spec), n_blocks=model.g_blocks,
                                               width=model.g_width, norm=model.g_norm, output=model.g_output)}
        if model.mode == "srgan":
            nets["D"] = lambda: PatchDiscriminator(in_channels=channels, base=model.d_base, n_layers=model.d_layers,
                                                   norm=model.d_norm)
        return nets

    def batch_keys(self, model):
        return ("x", "x_lowres")

    def check(self, cfg, spec: DataSpec) -> None:
        if "x_lowres" not in dict(spec.extra_shapes):
            return
        scale = sr_scale(spec)
        if scale not in (2, 4, 8):
            raise ConfigError(f"SRGAN upscales x2, x4 or x8; the data's ratio is x{scale}")
        if spec.shape_of("x_lowres")[0] != spec.shape[0]:
            raise ConfigError("low-res and high-res images must have the same channels")
        if cfg.model.mode == "srgan":
            patch_output_shape(spec.shape[1], spec.shape[2], cfg.model.d_layers)
        _no_gan_extras(cfg, self.name)

    def state(self, cfg, spec: DataSpec):
        if cfg.model.mode != "srgan":
            return {}
        content = build_content(cfg)
        print(f"srgan: content loss on {content.source} features", file=sys.stderr)
        return {"content": content}

    def optimizers(self, cfg):
        t = cfg.train
        specs = {"G": OptimizerSpec(("G",), lr=t.lr_g, betas=tuple(t.betas_g), weight_decay=t.weight_decay)}
        if cfg.model.mode == "srgan":
            specs["D"] = OptimizerSpec(("D",), lr=t.lr_d, betas=tuple(t.betas_d), weight_decay=t.weight_decay)
        return specs

    def phases(self, cfg):
        model = cfg.model
        adversarial = model.mode == "srgan"

        def features(ctx: PhaseContext, x: Tensor) -> Tensor:
            content = ctx.state["content"]
            return content.extractor(x) if content.extractor is not None else ctx.nets.eager["D"].features(x)

        def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            batch = next(ctx.batches)
            low, high = batch["x_lowres"], batch["x"]
            with ctx.autocast():
                sr = ctx.nets.train["G"](low).float()
            pixel = pixel_loss(model.pixel, sr, high)
            ctx.stats.report("pixel", pixel)
            if not adversarial or step < model.warmup_steps:
                return pixel  # SRResNet, or SRGAN's warm-up
            ctx.scratch["srgan"] = (high, sr.detach())
            with ctx.autocast():
                fake_logits = ctx.nets.call["D"](sr).float()
                real_logits = ctx.nets.call["D"](high).float() if ctx.loss.g_needs_real else fake_logits.detach()
                with torch.no_grad():
                    target_features = features(ctx, high)
                content = content_loss(features(ctx, sr).float(), target_features.float())
            ctx.stats.report("content", content)
            return (model.content_weight * content + model.adv_weight * ctx.loss.g(real_logits, fake_logits)
                    + model.pixel_weight * pixel)

        def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            high, sr = ctx.scratch.pop("srgan")
            D = ctx.nets.train["D"]
            with ctx.autocast():
                real_logits, fake_logits = D(high).float(), D(sr).float()
            if measure:
                report_d_outputs(ctx.stats, real_logits, fake_logits)
            return ctx.loss.d(real_logits, fake_logits)

        phases = [PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D",) if adversarial else ())]
        if adversarial:
            phases.append(PhaseSpec("D", optimizer="D", loss=d_loss, start=model.warmup_steps))
        return phases


FAMILIES.register("srgan")(SRGAN())
