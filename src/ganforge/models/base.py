"""What every model family shares: its config base, the G/D interfaces and the discriminator's head.

A family file defines a config dataclass (subclass of ModelConfig), a trunk for D and a G, and registers a
`Family` in FAMILIES. The trainer only sees `Generator.forward(z, labels)` and
`Discriminator.forward(x, labels) -> logits (B,)`, so families plug in without touching the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.nn.layers import MinibatchDiscrimination, MinibatchStdDev, Pack
from ganforge.nn.spectral import apply_spectral_norm
from ganforge.registry import Registry


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

    shape: tuple[int, ...]  # one example: (C, H, W) for images, (D,) for points
    num_classes: int = 0  # label classes available (0: unlabelled)

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3


class Generator(nn.Module):
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

    def sample_latent(self, n: int, *, device: torch.device | str = "cpu",
                      generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    def sample_labels(self, n: int, *, device: torch.device | str = "cpu",
                      generator: torch.Generator | None = None) -> Tensor | None:
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), device=device, generator=generator)


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


@dataclass(frozen=True)
class Family:
    """An architecture family: its config class and how to build G and D from it and the data spec."""

    name: str
    config_class: type[ModelConfig]
    build_generator: Callable[[ModelConfig, DataSpec], Generator]
    build_discriminator: Callable[[ModelConfig, DataSpec], Discriminator]
    description: str = ""
    # The training step: (StepContext, n_critic, n_gen) -> phases. None means the standard D-then-G pair;
    # a family with other needs (InfoGAN's Q head, image-to-image pairs) supplies its own list here.
    phases: Callable[..., list] | None = None


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
