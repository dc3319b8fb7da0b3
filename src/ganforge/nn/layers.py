"""Discriminator layers against mode collapse: they let D look at a whole minibatch, not one sample.

A collapsed G produces near-identical samples; a D that sees batch statistics can tell such a batch from a
real one and so pushes G towards diversity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev", "Pack"]


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, sec. 3.2): (B, in_features) -> (B, in_features + K).

    Each sample is projected to K kernels of dimension D_k; feature b of sample i is
    sum_{j != i} exp(-||M_i,b - M_j,b||_1), i.e. how close sample i is to the rest of the batch.
    """

    def __init__(self, *, in_features: int, num_kernels: int = 100, kernel_dim: int = 5) -> None:
        super().__init__()
        self.in_features = _check_positive_int("in_features", in_features)
        self.num_kernels = _check_positive_int("num_kernels", num_kernels)  # K: features appended
        self.kernel_dim = _check_positive_int("kernel_dim", kernel_dim)  # D_k: size of each kernel's space
        # The paper's tensor T (A x B x C) as a bias-free Linear, so apply_spectral_norm can wrap it too.
        self.T = nn.Linear(in_features, num_kernels * kernel_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        m = self.T(x).view(b, self.num_kernels, self.kernel_dim).transpose(0, 1)  # (K, B, D_k)
        # cdist never builds the (B, B, K, D_k) difference tensor: 3-4x faster on a CPU at B = K = 100.
        l1 = torch.cdist(m, m, p=1)  # (K, B, B): ||M_i,k - M_j,k||_1
        # Drop j == i: its similarity is always exp(0) = 1 and says nothing about the batch.
        o = (torch.exp(-l1).sum(dim=2) - 1.0).t()  # (B, K)
        return torch.cat([x, o], dim=1)  # (B, in_features + K)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_kernels={self.num_kernels}, kernel_dim={self.kernel_dim}"


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN; StyleGAN's variant with channel groups).

    Images (B, C, H, W) -> (B, C + num_channels, H, W); features (B, F) -> (B, F + num_channels).
    The batch is split into groups of ``group_size`` samples; within a group, the std of every feature is
    averaged over the C/num_channels features of each channel group (and over H, W), and the result is
    appended to every member of the group. If B is not a multiple of ``group_size``, the largest divisor of
    B not above it is used instead, so any batch size works.
    """

    def __init__(self, *, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = _check_positive_int("group_size", group_size)
        self.num_channels = _check_positive_int("num_channels", num_channels)

    def _group(self, batch: int) -> int:
        g = min(self.group_size, batch)
        while batch % g:
            g -= 1
        return g

    def forward(self, x: Tensor) -> Tensor:
        flat = x.dim() == 2
        if flat:
            x = x[:, :, None, None]  # (B, F) -> (B, F, 1, 1)
        if x.dim() != 4:
            raise ValueError(f"MinibatchStdDev expects (B, C, H, W) or (B, F), got shape {tuple(x.shape)}")
        b, c, h, w = x.shape
        f = self.num_channels
        if c % f:
            raise ValueError(f"MinibatchStdDev: {c} channels cannot be split into num_channels={f} groups")
        g = self._group(b)
        # Sample i goes to group i % (B/g), as in StyleGAN: the group index is the fastest-varying one.
        y = x.reshape(g, b // g, f, c // f, h, w)  # (G, n, F, c, H, W)
        y = y - y.mean(dim=0)  # deviation from the group mean
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # (n, F, c, H, W): population std; eps keeps grad finite
        y = y.mean(dim=(2, 3, 4))  # (n, F)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (B, F, H, W): row i gets group i % n
        out = torch.cat([x, y], dim=1)  # (B, C + F, H, W)
        return out.flatten(1) if flat else out

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class Pack(nn.Module):
    """PacGAN packing (Lin et al. 2018): D judges m samples at once, concatenated along channels/features.

    (B, C, H, W) -> (B/m, m*C, H, W); (B, F) -> (B/m, m*F). Samples k*m .. k*m+m-1 form pack k, so real and
    fake batches must be packed separately (never mix them within a pack).
    """

    def __init__(self, *, m: int) -> None:
        super().__init__()
        self.m = _check_positive_int("pack m", m)  # samples per pack; 1 is the identity

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        if b % self.m:
            raise ConfigError(
                f"PacGAN packing with m={self.m} needs a batch size divisible by {self.m}; got {b}"
            )
        return x.reshape(b // self.m, self.m * x.shape[1], *x.shape[2:])

    def extra_repr(self) -> str:
        return f"m={self.m}"
