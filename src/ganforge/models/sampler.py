"""Samplers: what a user runs on a trained model, apart from the training graph (no D, no optimizers).

A family names its sampler class; the trainer (sample grids, the health monitor's diversity, periodic
evaluation), the CLI and `ganforge.load_sampler` all go through it. A sampler holds only the networks it names
(EMA weights when the run kept them), its model config and the data spec, and round-trips through
`save_pretrained(dir)` / `ganforge.load_sampler(dir)` (safetensors + JSON, no pickle).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.models.base import DataSpec, ModelConfig

PRETRAINED_WEIGHTS = "model.safetensors"
PRETRAINED_CONFIG = "config.json"


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` and all its submodules in eval mode for a while, then each back in the mode it was in."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


class Sampler(nn.Module):
    """Base: the named networks of a trained model, and what the trainer asks of every sampler."""

    task: ClassVar[str] = "generate"  # what it does for a user: generate, translate, upscale or classify
    network_names: ClassVar[tuple[str, ...]] = ("G",)  # the networks it needs from a checkpoint

    def __init__(self, networks: Mapping[str, nn.Module], *, config: ModelConfig, spec: DataSpec) -> None:
        super().__init__()
        missing = [name for name in self.network_names if name not in networks]
        if missing:
            raise GanforgeError(f"{type(self).__name__} needs networks {missing}")
        self.config = config
        self.spec = spec
        self.nets = nn.ModuleDict({name: networks[name] for name in self.network_names})

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def example_inputs(self, n: int, *, generator: torch.Generator, data=None) -> dict[str, Tensor]:
        """n fixed inputs for sample grids and diversity checks, drawn from `generator` (data rows if needed)."""
        raise NotImplementedError

    def preview(self, inputs: dict[str, Tensor]) -> Tensor:
        """Model-space outputs for `example_inputs` (a sample grid shows them; diversity is measured on them)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------- save / load

    def save_pretrained(self, folder: str | Path) -> Path:
        """Weights (safetensors) and config (JSON) in `folder`: enough for `ganforge.load_sampler(folder)`."""
        from safetensors.torch import save_file

        from ganforge.fileio import atomic_write_bytes

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.nets.state_dict().items()}
        save_file(tensors, str(folder / PRETRAINED_WEIGHTS))
        meta = {"format": "ganforge-sampler", "version": 1, "family": self.config.family,
                "model": dataclasses.asdict(self.config), "spec": self.spec.to_dict()}
        atomic_write_bytes(folder / PRETRAINED_CONFIG, (json.dumps(meta, indent=2) + "\n").encode())
        return folder


class NoiseSampler(Sampler):
    """Noise (and class labels) -> samples: the sampler of every G(z, labels) family."""

    task = "generate"
    network_names = ("G",)

    @property
    def G(self) -> nn.Module:
        return self.nets["G"]

    @property
    def latent_dim(self) -> int:
        return self.G.latent_dim

    @property
    def num_classes(self) -> int:
        return self.G.num_classes

    def sample_latent(self, n: int, *, device: torch.device | str = "cpu",
                      generator: torch.Generator | None = None) -> Tensor:
        return self.G.sample_latent(n, device=device, generator=generator)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.G(z, labels)  # (B, *spec.shape) in model space

    def generate(self, num: int, *, seed: int = 0, labels: Tensor | None = None, batch_size: int = 256,
                 device: str | torch.device | None = None) -> Tensor:
        """`num` samples as uint8 images (N, C, H, W) or float points (N, D); see ganforge.sampling.generate."""
        from ganforge.sampling import generate

        return generate(self, num, seed=seed, labels=labels, batch_size=batch_size, device=device)

    def example_inputs(self, n: int, *, generator: torch.Generator, data=None) -> dict[str, Tensor]:
        from ganforge.sampling import class_cycle

        inputs = {"z": self.sample_latent(n, generator=generator)}
        labels = class_cycle(n, self.num_classes)
        if labels is not None:
            inputs["labels"] = labels
        return inputs

    def preview(self, inputs: dict[str, Tensor]) -> Tensor:
        device = self.device
        labels = inputs.get("labels")
        return self(inputs["z"].to(device), None if labels is None else labels.to(device))
