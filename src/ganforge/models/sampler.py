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
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError

if TYPE_CHECKING:  # annotations only: base.py imports this module
    from ganforge.models.base import DataSpec, ModelConfig

PRETRAINED_WEIGHTS = "model.safetensors"
PRETRAINED_CONFIG = "config.json"


@dataclasses.dataclass(frozen=True)
class CodeSpec:
    """One latent code a user can set on a noise sampler (InfoGAN): `generate --code`, `--sweep`, the explorer."""

    name: str  # how users name it: "c0", "c1", ...
    kind: str  # "categorical" (an index in [0, size)) or "continuous" (a real value)
    size: int = 1  # categorical: how many values it takes; continuous: 1
    low: float = -2.0  # continuous: the range sweeps and sliders offer (training draws from a narrower one)
    high: float = 2.0


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

    def detail_size(self) -> tuple[int, int] | None:
        """The (H, W) of detail its outputs hold when below the data's size (a progressive model's current
        stage, upsampled for display); None: full detail. Health checks and evaluation compare the outputs
        with real images reduced to this detail."""
        return None

    def example_inputs(self, n: int, *, generator: torch.Generator, data=None) -> dict[str, Tensor]:
        """n fixed inputs for sample grids and diversity checks, drawn from `generator` (data rows if needed)."""
        raise NotImplementedError

    def outputs(self, inputs: dict[str, Tensor]) -> Tensor:
        """Model-space outputs for `example_inputs`: what the health monitor measures diversity on."""
        raise NotImplementedError

    def preview(self, inputs: dict[str, Tensor]) -> Tensor:
        """What a sample grid shows for `example_inputs`: the outputs, or inputs and targets beside them."""
        return self.outputs(inputs)

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

    # What a user may set besides noise and class, by subclass: InfoGAN's codes, a style model's truncation.
    # `forward` and `generate` take them as keyword "controls": a tensor with one row per sample (sliced into
    # batches by generate) or a plain number for all. The CLI, the explorer and export read these attributes.
    supports_truncation: ClassVar[bool] = False  # forward(..., truncation=psi) pulls w towards its average

    @property
    def codes(self) -> dict[str, CodeSpec]:
        """The latent codes a user can set, by name (InfoGAN); none for plain noise models."""
        return {}

    def forward(self, z: Tensor, labels: Tensor | None = None, **controls) -> Tensor:
        if controls:
            raise GanforgeError(f"this model takes no {', '.join(sorted(controls))}")
        return self.G(z, labels)  # (B, *spec.shape) in model space

    def generate(self, num: int, *, seed: int = 0, labels: Tensor | None = None, batch_size: int = 256,
                 device: str | torch.device | None = None, **controls) -> Tensor:
        """`num` samples as uint8 images (N, C, H, W) or float points (N, D); see ganforge.sampling.generate."""
        from ganforge.sampling import generate

        return generate(self, num, seed=seed, labels=labels, batch_size=batch_size, device=device, **controls)

    def example_inputs(self, n: int, *, generator: torch.Generator, data=None) -> dict[str, Tensor]:
        from ganforge.sampling import class_cycle

        inputs = {"z": self.sample_latent(n, generator=generator)}
        labels = class_cycle(n, self.num_classes)
        if labels is not None:
            inputs["labels"] = labels
        return inputs

    def outputs(self, inputs: dict[str, Tensor]) -> Tensor:
        device = self.device
        labels = inputs.get("labels")
        return self(inputs["z"].to(device), None if labels is None else labels.to(device))


class TranslationSampler(Sampler):
    """Images -> images (pix2pix, CycleGAN, super-resolution): each direction is one network.

    `directions` maps a direction name to the network that computes it and the batch key of its input; the
    first is the default. Outputs are `scale` times the input size. Inference on images larger than `tile`
    pixels runs in overlapping tiles (ganforge.nn.image2image.tiled), so memory stays bounded.
    """

    task = "translate"
    network_names = ("G",)
    directions: ClassVar[dict[str, tuple[str, str]]] = {"a2b": ("G", "a")}  # name -> (network, input key)
    target_key: ClassVar[str] = "x"  # the batch key a2b outputs are compared with (previews: input|output|target)
    scale: ClassVar[int] = 1  # output size / input size
    tile: ClassVar[int] = 512  # larger inputs are processed in overlapping tiles of this many pixels
    multiple: ClassVar[int] = 1  # the network's total stride (a U-Net's 2**depth): inputs are padded to a multiple

    def input_shape(self, direction: str | None = None) -> tuple[int, ...]:
        _, key = self.directions[self._direction(direction)]
        return self.spec.shape_of(key)

    def _direction(self, direction: str | None) -> str:
        if direction is None:
            return next(iter(self.directions))
        if direction not in self.directions:
            raise GanforgeError(f"this model translates {', '.join(self.directions)} only, not {direction!r}")
        return direction

    def forward(self, x: Tensor, direction: str | None = None) -> Tensor:
        """Model-space images (B, C_in, H, W) -> (B, C_out, scale*H, scale*W)."""
        network, _ = self.directions[self._direction(direction)]
        return self.nets[network](x)

    @torch.no_grad()
    def translate(self, images: Tensor, *, direction: str | None = None) -> Tensor:
        """uint8 images (N, C_in, H, W) -> uint8 outputs, one image at a time, tiled when large."""
        from ganforge.nn.image2image import tiled

        direction = self._direction(direction)
        channels = self.input_shape(direction)[0]
        if images.ndim != 4 or images.shape[1] != channels:
            raise GanforgeError(f"this model takes {channels}-channel images, got shape {tuple(images.shape)}")
        h, w = images.shape[-2:]
        m = self.multiple
        # Sides that the network's strides do not divide are padded (edge pixels repeated) and cropped back.
        pad_h, pad_w = -h % m, -w % m
        overlap = min(-(-min(64, self.tile // 4) // m) * m, self.tile - m)  # rounded up to a multiple of m
        outputs = []
        for image in images:
            x = image[None].to(self.device).float().div(127.5).sub(1.0)
            if pad_h or pad_w:
                x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            if max(x.shape[-2:]) > self.tile:
                y = tiled(lambda t: self(t, direction), x, tile=self.tile, overlap=overlap, scale=self.scale,
                          multiple=m)
            else:
                y = self(x, direction)
            y = y[..., : self.scale * h, : self.scale * w]
            outputs.append(y.add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8).cpu())
        return torch.cat(outputs)

    def example_inputs(self, n: int, *, generator: torch.Generator, data=None) -> dict[str, Tensor]:
        _, key = next(iter(self.directions.values()))
        idx = torch.randperm(len(data), generator=generator)[:n]
        inputs = {"input": data.to_model_space(data.extras[key][idx] if key != "x" else data.data[idx])}
        if self.target_key == "x":
            inputs["target"] = data.to_model_space(data.data[idx])
        elif self.target_key in data.extras:
            inputs["target"] = data.to_model_space(data.extras[self.target_key][idx])
        return inputs

    def outputs(self, inputs: dict[str, Tensor]) -> Tensor:
        return self(inputs["input"].to(self.device))

    def preview(self, inputs: dict[str, Tensor]) -> Tensor:
        """input | output | target side by side per example (channels tiled to match), (B, C, H, 3W)."""
        import torch.nn.functional as F

        out = self.outputs(inputs).float().cpu()
        panels = [inputs["input"].float(), out] + ([inputs["target"].float()] if "target" in inputs else [])
        size = out.shape[-2:]
        channels = max(p.shape[1] for p in panels)
        panels = [F.interpolate(p, size=size, mode="nearest") if p.shape[-2:] != size else p for p in panels]
        panels = [p.expand(-1, channels, -1, -1) if p.shape[1] == 1 else p for p in panels]
        return torch.cat(panels, dim=3)


class ClassifierSampler(Sampler):
    """Images -> classes: the classifier a semi-supervised GAN's D becomes (`ganforge classify`, load_sampler).

    `network_names[0]` maps model-space images (B, *spec.shape) to class logits (B, num_classes). A family whose
    sampler also shows generated samples (sample grids, the health monitor's diversity) subclasses it and names
    its generator too.
    """

    task = "classify"
    network_names = ("D",)

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def forward(self, x: Tensor) -> Tensor:
        """Model-space images (B, *spec.shape) -> class logits (B, num_classes)."""
        return self.nets[self.network_names[0]](x)

    @torch.no_grad()
    def classify(self, images: Tensor, *, batch_size: int = 500) -> Tensor:
        """uint8 images (N, *spec.shape) -> class probabilities (N, num_classes), float32 on the CPU."""
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != tuple(self.spec.shape):
            want = "x".join(map(str, self.spec.shape))
            raise GanforgeError(f"this model classifies uint8 images of shape {want} (C x H x W), got "
                                f"{images.dtype} {tuple(images.shape)}")
        probs = []
        with eval_mode(self):
            for chunk in images.split(batch_size):
                x = chunk.to(self.device).float().div(127.5).sub(1.0)
                probs.append(torch.softmax(self(x).float(), dim=1).cpu())
        return torch.cat(probs) if probs else torch.empty(0, self.num_classes)

    def predict(self, images: Tensor, *, batch_size: int = 500) -> Tensor:
        """uint8 images -> (N,) predicted classes (int64)."""
        return self.classify(images, batch_size=batch_size).argmax(1)
