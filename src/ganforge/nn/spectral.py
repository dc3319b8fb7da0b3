"""Spectral normalization (Miyato et al. 2018) applied to a whole network in one call.

Dividing each weight by its largest singular value (estimated by power iteration, one step per training
forward) makes every linear map 1-Lipschitz, which bounds D's Lipschitz constant without a penalty.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["apply_spectral_norm"]

# Modules whose `weight` is a linear map. Subclasses (e.g. MinibatchDiscrimination's bias-free Linear T)
# match too. torch's spectral_norm already picks dim=1 for transposed convs, whose weight is (in, out, ...).
_NORMALIZED = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def apply_spectral_norm(module: nn.Module, *, n_power_iterations: int = 1) -> nn.Module:
    """Wrap every Linear / Conv / ConvTranspose weight in ``module`` (itself included), in place.

    Idempotent: a weight that is already parametrized is left alone. Returns ``module``.
    """
    for m in list(module.modules()):  # snapshot: parametrizing adds submodules while we iterate
        if isinstance(m, _NORMALIZED) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m, name="weight", n_power_iterations=n_power_iterations)
    return module
