"""What every model family shares: its config base, the G/D interfaces and the discriminator's head.

A family file defines a config dataclass (subclass of ModelConfig), its networks, and registers a `Family`
in FAMILIES that names its networks, optimizers, phases and sampler (see `Family`). The noise-to-sample
families share `AdversarialFamily`: `Generator.forward(z, labels)` and `Discriminator.forward(x, labels) ->
logits (B,)`, trained by the standard D-then-G phases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.models.sampler import NoiseSampler, Sampler
from ganforge.nn.layers import MinibatchDiscrimination, MinibatchStdDev, Pack
from ganforge.nn.spectral import apply_spectral_norm
from ganforge.registry import Registry
from ganforge.train.phases import (
    OptimizerSpec,
    PhaseContext,
    PhaseSpec,
    adversarial_optimizers,
    adversarial_phases,
)


@dataclass
class ModelConfig:
    family: str = "dcgan"  # architecture family: see ganforge.models.FAMILIES
    latent_dim: int = 100  # size of the noise vector z ~ N(0, I)
    conditional: bool = False  # G and D take class labels (cGAN: G embeds y, D uses a projection head)
    d_spectral_norm: bool = False  # spectral normalization on every D layer (Miyato et al. 2018)
    g_spectral_norm: bool = False  # spectral normalization on every G layer (SAGAN / BigGAN style)
    d_pack: int = 1  # PacGAN: D judges m samples at once (m=2 or 4 against mode collapse); 1 disables
    d_minibatch_discrimination: bool = False  # Salimans et al. 2016 features appended before D's head
    d_mbstd: bool = False  # minibatch standard deviation channel before D's head (ProGAN/StyleGAN)

    def validate(self) -> None:
        if self.latent_dim <= 0:
            raise ConfigError(f"model.latent_dim must be > 0, got {self.latent_dim}")
        if self.d_pack < 1:
            raise ConfigError(f"model.d_pack must be >= 1, got {self.d_pack}")


@dataclass(frozen=True)
class DataSpec:
    """What the models need to know about the data; saved with them so G rebuilds without the dataset."""

    shape: tuple[int, ...]  # one example of "x": (C, H, W) for images, (D,) for points
    num_classes: int = 0  # label classes available (0: unlabelled)
    # The other per-example tensors a batch holds, as (key, shape): e.g. (("a", (3, 64, 64)),) for a translation
    # family's input images. Empty for the noise-to-sample families.
    extra_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # Training examples per class when the classes are k-means clusters (data.labels: clusters): samples then draw
    # them in these proportions, as an unconditional model would. Empty: the dataset's classes, cycled in turn.
    class_counts: tuple[int, ...] = ()

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    def shape_of(self, key: str) -> tuple[int, ...]:
        """The shape of one example of batch key `key` ("x" or one of extra_shapes)."""
        if key == "x":
            return self.shape
        return dict(self.extra_shapes)[key]

    def to_dict(self) -> dict:
        """Plain data for a checkpoint (read back by from_dict)."""
        return {"shape": list(self.shape), "num_classes": self.num_classes,
                "extra_shapes": {k: list(v) for k, v in self.extra_shapes}, "class_counts": list(self.class_counts)}

    @classmethod
    def from_dict(cls, raw: dict) -> DataSpec:
        extra = raw.get("extra_shapes") or {}  # absent in format-1 checkpoints
        return cls(shape=tuple(int(s) for s in raw["shape"]), num_classes=int(raw["num_classes"]),
                   extra_shapes=tuple((k, tuple(int(s) for s in v)) for k, v in extra.items()),
                   class_counts=tuple(int(c) for c in raw.get("class_counts") or ()))  # absent before clusters


class NoiseInputs:
    """What a noise generator draws its inputs with: z ~ N(0, I) of `latent_dim`, labels uniform over
    `num_classes` (None when 0). Every G(z, labels) network of every family mixes this in."""

    latent_dim: int
    num_classes: int

    def sample_latent(self, n: int, *, device: torch.device | str = "cpu",
                      generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    def sample_labels(self, n: int, *, device: torch.device | str = "cpu",
                      generator: torch.Generator | None = None) -> Tensor | None:
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), device=device, generator=generator)


class Generator(NoiseInputs, nn.Module):
    """Maps z (B, latent_dim) [+ labels (B,)] to samples (B, *shape); images in [-1, 1]."""

    def __init__(self, *, config: ModelConfig, spec: DataSpec) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.latent_dim = config.latent_dim
        self.num_classes = spec.num_classes if config.conditional else 0
        # Conditional G: the class embedding is added to z's input projection (same dim as z).
        self.label_embedding = nn.Embedding(self.num_classes, self.latent_dim) if self.num_classes else None

    def condition(self, z: Tensor, labels: Tensor | None) -> Tensor:
        if self.label_embedding is None:
            return z
        if labels is None:
            raise ValueError("this generator is conditional: pass class labels")
        return z * self.label_embedding(labels)  # multiplicative conditioning (as PyTorch-GAN's cGAN)



class Discriminator(nn.Module):
    """Packing -> family trunk -> [minibatch stddev] -> flatten -> [minibatch discrimination] -> logit.

    The optional anti-collapse layers live here once, so every family gets them by config alone.
    """

    def __init__(self, *, config: ModelConfig, spec: DataSpec,
                 trunk: Callable[[tuple[int, ...]], nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.spec = spec
        self.num_classes = spec.num_classes if config.conditional else 0
        m = config.d_pack
        in_shape = (spec.shape[0] * m, *spec.shape[1:])
        self.pack = Pack(m=m) if m > 1 else nn.Identity()
        self.trunk = trunk(in_shape)
        self.mbstd = MinibatchStdDev(group_size=4, num_channels=1) if config.d_mbstd else nn.Identity()
        with torch.no_grad():
            probe = self.mbstd(self.trunk(torch.zeros(8, *in_shape)))
        features = probe[0].numel()
        self.minibatch = (
            MinibatchDiscrimination(in_features=features, num_kernels=50, kernel_dim=5)
            if config.d_minibatch_discrimination else nn.Identity()
        )
        head_in = features + (50 if config.d_minibatch_discrimination else 0)
        self.head = nn.Linear(head_in, 1)
        # Projection discriminator (Miyato & Koyama 2018): logit += <embed(y), features>.
        self.projection = nn.Embedding(self.num_classes, head_in) if self.num_classes else None
        if config.d_spectral_norm:
            apply_spectral_norm(self)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Penultimate features (B', F); B' = B / d_pack."""
        h = self.mbstd(self.trunk(self.pack(x)))
        return self.minibatch(h.flatten(1))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x, labels)
        logits = self.head(h).squeeze(1)  # (B',)
        if self.projection is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            labels = labels[:: self.config.d_pack]  # one label per packed group
            logits = logits + (self.projection(labels) * h).sum(1)
        return logits


class Family:
    """A model family, declared by name: networks, optimizers, batch keys, phases, EMAs, state, hook, sampler.

    The trainer, checkpoints and CLI only iterate these names, so a new family is one file (plus its losses)
    with no branch anywhere else. Subclass it and register an instance in FAMILIES:

        networks(model, spec)   {name: builder}; builders are called in order (weights initialise from the
                                global RNG, so the order is part of the run's seed)
        optimizers(cfg)         {name: OptimizerSpec}: which networks each updates, lr, betas, lr multipliers
        phases(cfg)             [PhaseSpec]: run in order every step
        batch_keys(model)       what a real batch must hold: "x", "y", "a", "b", "x_lowres", ...
        ema_networks            networks that keep an EMA of their weights (when train.ema_kimg > 0)
        state(cfg, spec)        {name: nn.Module}: more state a checkpoint keeps (an image pool, ADA's p)
        bind_data(cfg, data, state, networks)  once the data is loaded: e.g. a labelled subset, data-dependent init
        on_step(ctx, step)      called before each step's phases, e.g. a fade-in alpha derived from the step
        sampler                 the Sampler class a user runs: generate, translate, upscale or classify
    """

    name: str = ""  # the registry name (model.family)
    config_class: type[ModelConfig] = ModelConfig  # the `model` config section's dataclass
    description: str = ""  # one line for `ganforge presets` and the README table
    ema_networks: tuple[str, ...] = ()  # networks whose weights keep an EMA (sampled instead of the raw ones)
    sampler: type[Sampler] = Sampler  # what a user runs on the trained model (NoiseSampler, ...)

    def networks(self, model: ModelConfig, spec: DataSpec) -> dict[str, Callable[[], nn.Module]]:
        raise NotImplementedError

    def optimizers(self, cfg) -> dict[str, OptimizerSpec]:
        raise NotImplementedError

    def phases(self, cfg) -> list[PhaseSpec]:
        raise NotImplementedError

    def batch_keys(self, model: ModelConfig) -> tuple[str, ...]:
        return ("x",)

    def state(self, cfg, spec: DataSpec) -> dict[str, nn.Module]:
        return {}

    def bind_data(self, cfg, data, state: dict[str, nn.Module], networks: dict[str, nn.Module]) -> None:
        """Once, with the training data (a TensorData), the `state` modules and the networks, before the EMAs are
        made and before a resume restores the checkpoint over them.

        E.g. the seeded labelled subset of a semi-supervised family, or a data-dependent initialisation; what it
        does must depend only on the config, the data and the global RNG (seeded by train.seed)."""

    def on_step(self, ctx: PhaseContext, step: int) -> None:
        """Before each step's phases; must depend only on `step` and checkpointed state (exact resume)."""

    def check(self, cfg, spec: DataSpec) -> None:
        """Reject a config that cannot train on this data (ConfigError naming the problem)."""


class AdversarialFamily(Family):
    """One G (z, labels) -> samples and one D (x, labels) -> logits, trained by `adversarial_phases`."""

    ema_networks = ("G",)

    def __init__(self, *, name: str, config_class: type[ModelConfig], description: str,
                 generator: Callable[[ModelConfig, DataSpec], Generator],
                 discriminator: Callable[[ModelConfig, DataSpec], Discriminator]) -> None:
        self.name = name
        self.config_class = config_class
        self.description = description
        self.sampler = NoiseSampler
        self._generator = generator
        self._discriminator = discriminator

    def networks(self, model: ModelConfig, spec: DataSpec) -> dict[str, Callable[[], nn.Module]]:
        return {"G": lambda: self._generator(model, spec), "D": lambda: self._discriminator(model, spec)}

    def optimizers(self, cfg) -> dict[str, OptimizerSpec]:
        return adversarial_optimizers(cfg)

    def phases(self, cfg) -> list[PhaseSpec]:
        return adversarial_phases(cfg)

    def batch_keys(self, model: ModelConfig) -> tuple[str, ...]:
        return ("x", "y") if model.conditional else ("x",)

    def check(self, cfg, spec: DataSpec) -> None:
        if cfg.model.conditional and not spec.num_classes:
            raise ConfigError("model.conditional needs labelled data; this dataset has no labels")


FAMILIES: Registry[Family] = Registry("model family")


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def num_upsamplings(size: tuple[int, int], *, min_side: int = 4) -> int:
    """How many x2 steps lead from a >= min_side start to `size` (each side must be divisible by 2^k)."""
    k = 0
    while min(size) % (2 ** (k + 1)) == 0 and min(size) // (2 ** (k + 1)) >= min_side:
        k += 1
    if size[0] % (2**k) or size[1] % (2**k):
        raise ConfigError(f"image size {size} needs both sides divisible by {2**k}")
    return k


def prod(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
