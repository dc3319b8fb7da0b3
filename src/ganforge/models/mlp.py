"""MLP GAN: fully connected G and D, for toy 2D data and small images (seed 002's intent, fixed).

Seed 002 meant a small generator for 28x28 MNIST; its code upsampled to 56x56 with stride 7 and ended in
ReLU while the data lies in [-1, 1]. Here G ends in tanh for images (identity for points) and outputs the
data's exact shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.models.base import (
    FAMILIES,
    AdversarialFamily,
    DataSpec,
    Discriminator,
    Generator,
    ModelConfig,
    prod,
)


@dataclass
class MLPConfig(ModelConfig):
    family: str = "mlp"  # fully connected G and D
    g_hidden: int = 256  # width of each G hidden layer
    g_layers: int = 3  # number of G hidden layers
    d_hidden: int = 256  # width of each D hidden layer
    d_layers: int = 3  # number of D hidden layers
    g_batchnorm: bool = False  # batch norm in G's hidden layers (helps images, hurts toy 2D)
    d_dropout: float = 0.0  # dropout in D's hidden layers (a weaker D for the balance the seeds discuss)

    def validate(self) -> None:
        super().validate()
        for name in ("g_hidden", "g_layers", "d_hidden", "d_layers"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"model.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.d_dropout < 1.0:
            raise ConfigError(f"model.d_dropout must be in [0, 1), got {self.d_dropout}")


class MLPGenerator(Generator):
    def __init__(self, *, config: MLPConfig, spec: DataSpec) -> None:
        super().__init__(config=config, spec=spec)
        layers: list[nn.Module] = []
        width = config.latent_dim
        for _ in range(config.g_layers):
            layers += [nn.Linear(width, config.g_hidden)]
            if config.g_batchnorm:
                layers += [nn.BatchNorm1d(config.g_hidden)]
            layers += [nn.ReLU()]
            width = config.g_hidden
        layers += [nn.Linear(width, prod(spec.shape))]
        if spec.is_image:
            layers += [nn.Tanh()]  # the data is scaled to [-1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        out = self.net(self.condition(z, labels))  # (B, prod(shape))
        return out.view(z.shape[0], *self.spec.shape)


def mlp_trunk(config: MLPConfig):
    def build(in_shape: tuple[int, ...]) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        width = prod(in_shape)
        for _ in range(config.d_layers):
            layers += [nn.Linear(width, config.d_hidden), nn.LeakyReLU(0.2)]
            if config.d_dropout:
                layers += [nn.Dropout(config.d_dropout)]
            width = config.d_hidden
        return nn.Sequential(*layers)  # (B, d_hidden)

    return build


FAMILIES.register("mlp")(
    AdversarialFamily(
        name="mlp",
        config_class=MLPConfig,
        generator=lambda cfg, spec: MLPGenerator(config=cfg, spec=spec),
        discriminator=lambda cfg, spec: Discriminator(config=cfg, spec=spec, trunk=mlp_trunk(cfg)),
        description="fully connected G and D (toy 2D data, small images)",
    )
)
