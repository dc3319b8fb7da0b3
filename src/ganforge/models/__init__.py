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

# Importing the family modules registers them in FAMILIES.
from ganforge.models import mlp, dcgan, cgan, acgan, infogan, ssgan, gman  # noqa: E402,F401  isort: skip
from ganforge.models import pix2pix, cyclegan, srgan, stylegan2, progan  # noqa: E402,F401  isort: skip

__all__ = ["FAMILIES", "AdversarialFamily", "DataSpec", "Discriminator", "Family", "Generator", "ModelConfig",
           "NoiseSampler", "Sampler"]
