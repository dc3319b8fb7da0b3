"""Which torch device a run or a command uses."""

from __future__ import annotations

import torch


def select_device(name: str) -> torch.device:
    """`name` as a device; "auto" picks CUDA, then Apple's MPS, then the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
