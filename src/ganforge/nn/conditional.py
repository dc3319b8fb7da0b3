"""Building blocks for class-conditional networks: conditional batch norm and one-hot label maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConditionalBatchNorm2d", "label_maps"]


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per class (de Vries et al. 2017; Miyato & Koyama 2018).

    The statistics are shared by all classes (a plain BatchNorm2d without its own affine); each class owns a
    gain and a bias, initialised to 1 and 0 so a fresh layer is an ordinary batch norm.
    """

    def __init__(self, num_features: int, num_classes: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False, eps=eps, momentum=momentum)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        # x (B, C, H, W), labels (B,) -> (B, C, H, W)
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


def label_maps(labels: Tensor, num_classes: int, size: tuple[int, int], *, dtype: torch.dtype) -> Tensor:
    """(B,) class indices -> (B, K, H, W) one-hot planes: the class as extra input channels of a D."""
    one_hot = F.one_hot(labels.long(), num_classes).to(dtype)  # (B, K)
    return one_hot[:, :, None, None].expand(-1, -1, *size)
