"""Conditional GAN (Mirza & Osindero 2014) on DCGAN's layout, and the networks ACGAN and InfoGAN build on.

G sees the class through an embedding concatenated to z, optionally also through conditional batch norm (a
per-class gain and bias in every norm layer). D sees it through one-hot label maps stacked on its input
channels ("concat"), or through a projection head (Miyato & Koyama 2018: logit += <embed(y), phi(x)>).

`ConditionalGenerator` and `ConditionalDiscriminator` also serve the families without a class input to D:
ACGAN (D unconditional, an auxiliary classifier head) and InfoGAN (G fed codes, D with a Q head). `dcgan`
with `model.conditional=true` is a different, older model (multiplicative z * embed(y), projection D) and is
kept as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.models.base import (
    FAMILIES,
    AdversarialFamily,
    DataSpec,
    NoiseInputs,
    init_dcgan_weights,
    num_upsamplings,
)
from ganforge.models.dcgan import DCGANConfig, dcgan_trunk
from ganforge.nn.conditional import ConditionalBatchNorm2d, label_maps
from ganforge.nn.layers import MinibatchStdDev
from ganforge.nn.spectral import apply_spectral_norm

G_CONDITIONS = ("concat", "cbn")
D_CONDITIONS = ("concat", "projection", "none")


@dataclass
class CGANConfig(DCGANConfig):
    family: str = "cgan"  # conditional DCGAN: G and D both take the class
    conditional: bool = True  # always true here: the family exists to take class labels
    g_condition: str = "concat"  # G's class input: "concat" (embedding concatenated to z) or "cbn" (that, plus
    # conditional batch norm: a per-class gain and bias in every G norm layer)
    d_condition: str = "projection"  # D's class input: "concat" (one-hot label maps as extra input channels) or
    # "projection" (Miyato & Koyama 2018: the logit gains <embed(y), features>)
    label_embed_dim: int = 16  # width of G's class embedding, concatenated to z
    g_hidden: int = 0  # a fully connected layer (batch norm, ReLU) of this width before G's projection; 0: none
    d_hidden: int = 0  # a fully connected layer (batch norm, LeakyReLU) of this width after D's convs; 0: none

    def validate(self) -> None:
        super().validate()
        check_conditions(self, allowed_d=("concat", "projection"))
        if not self.conditional:
            raise ConfigError(f"model.family {self.family} is always conditional; use model.family=dcgan "
                              "for an unconditional model")


def check_conditions(cfg, *, allowed_d: tuple[str, ...]) -> None:
    """The checks every family built on these networks shares: condition names, widths, unsupported D layers."""
    if cfg.g_condition not in G_CONDITIONS:
        raise ConfigError(f"model.g_condition must be one of {', '.join(G_CONDITIONS)}, got {cfg.g_condition!r}")
    if cfg.d_condition not in allowed_d:
        raise ConfigError(f"model.d_condition must be one of {', '.join(allowed_d)}, got {cfg.d_condition!r}")
    check_widths(cfg, ("label_embed_dim",), ("g_hidden", "d_hidden"))


def check_widths(cfg, positive: tuple[str, ...], non_negative: tuple[str, ...]) -> None:
    for name in positive:
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"model.{name} must be > 0, got {getattr(cfg, name)}")
    for name in non_negative:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"model.{name} must be >= 0 (0: none), got {getattr(cfg, name)}")
    if cfg.d_pack != 1 or cfg.d_minibatch_discrimination:
        raise ConfigError(f"model.family {cfg.family} does not support d_pack or d_minibatch_discrimination "
                          "(its D judges each sample with its own class or code); use d_mbstd")


class ConditionalGenerator(NoiseInputs, nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> images (B, C, H, W) in [-1, 1], DCGAN's upsampling stack.

    Input: z, concatenated with embed(y) when the model has classes (`inputs` is the hook InfoGAN overrides to
    expand its codes). Then [Linear -> BN -> ReLU (hidden)] -> Linear to (W0, h0, w0) -> norm -> ReLU ->
    k x (ConvT 4x4 stride 2 -> norm -> ReLU), the last ConvT to C channels with tanh. With `cbn` every norm is
    a ConditionalBatchNorm2d.
    """

    def __init__(self, *, config: DCGANConfig, spec: DataSpec, num_classes: int, condition: str = "concat",
                 embed_dim: int = 16, hidden: int = 0, in_features: int | None = None) -> None:
        super().__init__()
        if not spec.is_image:
            raise ConfigError(f"model.family {config.family} needs image data")
        self.config = config
        self.spec = spec
        self.latent_dim = config.latent_dim  # what sample_latent draws (InfoGAN: noise and codes)
        self.num_classes = num_classes
        self.cbn = bool(num_classes) and condition == "cbn"
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        width = (in_features or config.latent_dim) + (embed_dim if num_classes else 0)
        channels, height, width_px = spec.shape
        k = num_upsamplings((height, width_px))
        self.start = (height >> k, width_px >> k)
        widths = [min(config.g_channels * 2 ** (k - i), config.max_channels) for i in range(k + 1)]
        self.hidden = nn.Sequential(nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(True)) \
            if hidden else nn.Identity()
        self.project = nn.Linear(hidden or width, widths[0] * self.start[0] * self.start[1], bias=False)
        norm = (lambda c: ConditionalBatchNorm2d(c, num_classes)) if self.cbn else nn.BatchNorm2d
        self.norms = nn.ModuleList([norm(widths[i]) for i in range(max(k, 1))])
        if k:
            self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i], channels if i == k - 1 else widths[i + 1], 4, 2,
                                                        1, bias=i == k - 1) for i in range(k))
        else:  # tiny images: one 3x3 conv to the output channels
            self.ups = nn.ModuleList([nn.Conv2d(widths[0], channels, 3, 1, 1)])
        for part in (self.hidden, self.project, self.ups, *([] if self.cbn else [self.norms])):
            init_dcgan_weights(part)  # conditional norms start as gain 1, bias 0 (their own init)
        if config.g_spectral_norm:
            apply_spectral_norm(self)

    def inputs(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """What the first layer reads: (B, in_features [+ embed_dim])."""
        if self.embed is None:
            return z
        if labels is None:
            raise ValueError("this generator is conditional: pass class labels")
        return torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.project(self.hidden(self.inputs(z, labels))).view(z.shape[0], -1, *self.start)  # (B, W0, h0, w0)
        for i, up in enumerate(self.ups):
            if i < len(self.norms):
                h = torch.relu(self.norms[i](h, labels) if self.cbn else self.norms[i](h))
            h = up(h)  # (B, W_i+1, 2h, 2w)
        return torch.tanh(h)  # (B, C, H, W)



class ConditionalDiscriminator(nn.Module):
    """x (B, C, H, W) [+ labels (B,)] -> logits (B,); with `aux=True` also an auxiliary head's outputs (B, A).

    [label maps stacked on x] -> DCGAN trunk -> [minibatch stddev] -> flatten -> [hidden FC] -> features phi.
    Logit: Linear(phi) [+ <embed(y), phi> for projection]. The auxiliary head (ACGAN's classifier, InfoGAN's
    Q) reads the same phi: it shares D's body.
    """

    def __init__(self, *, config: DCGANConfig, spec: DataSpec, num_classes: int, condition: str = "none",
                 hidden: int = 0, aux_outputs: int = 0, aux_hidden: int = 0) -> None:
        super().__init__()
        if not spec.is_image:
            raise ConfigError(f"model.family {config.family} needs image data")
        self.config = config
        self.spec = spec
        self.num_classes = num_classes if condition != "none" else 0
        self.concat = condition == "concat" and bool(num_classes)
        channels, height, width = spec.shape
        in_shape = (channels + (num_classes if self.concat else 0), height, width)
        self.trunk = dcgan_trunk(config)(in_shape)  # (B, W_k, h0, w0)
        self.mbstd = MinibatchStdDev(group_size=4, num_channels=1) if config.d_mbstd else nn.Identity()
        with torch.no_grad():
            features = self.mbstd(self.trunk(torch.zeros(8, *in_shape))).flatten(1).shape[1]
        layers: list[nn.Module] = []
        if hidden:
            layers = [nn.Linear(features, hidden, bias=not config.d_batchnorm)]
            layers += [nn.BatchNorm1d(hidden)] if config.d_batchnorm else []
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            features = hidden
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(features, 1)
        self.projection = nn.Embedding(num_classes, features) \
            if condition == "projection" and num_classes else None
        self.aux: nn.Module | None = None
        if aux_outputs and aux_hidden:
            self.aux = nn.Sequential(nn.Linear(features, aux_hidden), nn.BatchNorm1d(aux_hidden),
                                     nn.LeakyReLU(0.2, inplace=True), nn.Linear(aux_hidden, aux_outputs))
        elif aux_outputs:
            self.aux = nn.Linear(features, aux_outputs)
        init_dcgan_weights(self)
        if self.projection is not None:
            nn.init.xavier_uniform_(self.projection.weight)
        if config.d_spectral_norm:
            apply_spectral_norm(self)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """phi(x): (B, F), what the logit, the projection and the auxiliary head read."""
        if self.concat:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            x = torch.cat([x, label_maps(labels, self.num_classes, x.shape[-2:], dtype=x.dtype)], dim=1)
        return self.hidden(self.mbstd(self.trunk(x)).flatten(1))

    def forward(self, x: Tensor, labels: Tensor | None = None, *, aux: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        h = self.features(x, labels)
        logits = self.head(h).squeeze(1)  # (B,)
        if self.projection is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass class labels")
            logits = logits + (self.projection(labels) * h).sum(1)
        if not aux:
            return logits
        if self.aux is None:
            raise ValueError("this discriminator has no auxiliary head")
        return logits, self.aux(h)  # (B,), (B, A)


def conditional_generator(cfg: CGANConfig, spec: DataSpec) -> ConditionalGenerator:
    return ConditionalGenerator(config=cfg, spec=spec, num_classes=spec.num_classes, condition=cfg.g_condition,
                                embed_dim=cfg.label_embed_dim, hidden=cfg.g_hidden)


def conditional_discriminator(cfg: CGANConfig, spec: DataSpec, *, aux_outputs: int = 0,
                              aux_hidden: int = 0) -> ConditionalDiscriminator:
    return ConditionalDiscriminator(config=cfg, spec=spec, num_classes=spec.num_classes, condition=cfg.d_condition,
                                    hidden=cfg.d_hidden, aux_outputs=aux_outputs, aux_hidden=aux_hidden)


FAMILIES.register("cgan")(
    AdversarialFamily(
        name="cgan",
        config_class=CGANConfig,
        generator=conditional_generator,
        discriminator=lambda cfg, spec: conditional_discriminator(cfg, spec),
        description="conditional DCGAN (Mirza & Osindero): G by embedding [+ cond. batch norm], D by label maps "
                    "or projection",
    )
)
