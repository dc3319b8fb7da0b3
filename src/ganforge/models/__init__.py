"""Model families, one file each; importing this package registers them in FAMILIES."""

from ganforge.models.base import (
    FAMILIES,
    AdversarialFamily,
    DataSpec,
    Discriminator,
    Family,
    Generator,
    ModelConfig,
)
from ganforge.models.sampler import NoiseSampler, Sampler

from ganforge.models import mlp, dcgan, stylegan2, progan  # noqa: E402,F401  isort: skip  (registers the families)

__all__ = ["FAMILIES", "AdversarialFamily", "DataSpec", "Discriminator", "Family", "Generator", "ModelConfig",
           "NoiseSampler", "Sampler"]
