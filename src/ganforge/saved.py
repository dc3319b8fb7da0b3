"""Running a saved model: `load_sampler`, `load_generator` and `evaluate_checkpoint`.

This sits above the config, the families, the checkpoint format and the metrics (it imports them all; none of
them imports it), so loading what a run left behind never pulls the trainer in and never makes a cycle.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.config import SampleConfig, build_section, config_from_dict, parse_yaml
from ganforge.errors import CheckpointError, GanforgeError
from ganforge.models import FAMILIES, DataSpec, Sampler
from ganforge.models.sampler import PRETRAINED_CONFIG, PRETRAINED_WEIGHTS
from ganforge.train.checkpoint import load_checkpoint, resolve_checkpoint

__all__ = ["critic_from_state", "evaluate_checkpoint", "load_critic", "load_generator", "load_sampler",
           "sampler_from_state"]


def load_sampler(path: str | Path, *, device: str | torch.device = "cpu", use_ema: bool = True) -> Sampler:
    """The sampler of a run directory, a checkpoint file or a `save_pretrained` folder, ready (eval mode).

    Only the networks the sampler needs are built (no D, no optimizers); EMA weights when the run kept them
    and `use_ema`. No dataset is needed.
    """
    path = Path(path)
    if path.is_dir() and (path / PRETRAINED_CONFIG).exists():
        return _load_pretrained(path, device=device)
    return sampler_from_state(load_checkpoint(path), resolve_checkpoint(path), device=device, use_ema=use_ema)


def load_generator(path: str | Path, *, device: str | torch.device = "cpu", use_ema: bool = True) -> nn.Module:
    """The generator network "G" of a noise-to-sample run (a ready nn.Module: G(z, labels))."""
    sampler = load_sampler(path, device=device, use_ema=use_ema)
    if "G" not in sampler.nets or sampler.task != "generate":
        raise CheckpointError(f"{path} holds a {sampler.task} model, not a noise generator; use load_sampler")
    return sampler.nets["G"]


def load_critic(path: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator "D" of a run directory or checkpoint, ready (eval mode): what best-of sampling ranks by.

    A `save_pretrained` folder holds only the sampler, so it has no D to give.
    """
    path = Path(path)
    if path.is_dir() and (path / PRETRAINED_CONFIG).exists():
        raise _no_critic(path)
    return critic_from_state(load_checkpoint(path), resolve_checkpoint(path), device=device)


def _no_critic(folder: Path) -> CheckpointError:
    return CheckpointError(f"{folder} is a sampler folder (save_pretrained) without the discriminator; pass the "
                           "run directory or a checkpoint")


@dataclasses.dataclass
class LoadedForSampling:
    """What `generate`, `serve` and `interpolate` start from: the sampler, the `sample` section the run was trained
    with (how its samples are drawn by default), and the run's D on demand, all from one read of the checkpoint."""

    sampler: Sampler
    sample: SampleConfig  # the run's sample section; the defaults for a save_pretrained folder
    source: Path  # the checkpoint file read, or the save_pretrained folder; named in errors
    device: str | torch.device  # where the sampler is, and where `critic` puts D
    state: dict[str, Any] | None  # the checkpoint as read (None: a save_pretrained folder, which keeps no D)

    def critic(self) -> nn.Module:
        """The run's discriminator "D", built from the checkpoint already read (as `load_critic` builds it)."""
        if self.state is None:
            raise _no_critic(self.source)
        return critic_from_state(self.state, self.source, device=self.device)


def load_for_sampling(path: str | Path, *, device: str | torch.device = "cpu",
                      use_ema: bool = True) -> LoadedForSampling:
    """`load_sampler`, the run's `sample` section and (`.critic()`) its D, reading the checkpoint once."""
    path = Path(path)
    if path.is_dir() and (path / PRETRAINED_CONFIG).exists():
        return LoadedForSampling(_load_pretrained(path, device=device), SampleConfig(), path, device, None)
    state, source = load_checkpoint(path), resolve_checkpoint(path)
    cfg, _, _, _ = _stored_model(state, source)
    sampler = sampler_from_state(state, source, device=device, use_ema=use_ema)
    return LoadedForSampling(sampler, cfg.sample, source, device, state)


def critic_guided_samples(sampler, critic: nn.Module, num: int, *, best_of: int = 1, refine_steps: int = 0,
                          refine_step_size: float, seed: int = 0, labels: torch.Tensor | None = None,
                          batch_size: int = 256, device: str | torch.device | None = None) -> torch.Tensor:
    """`num` samples that use the run's D one of two ways: the best of `best_of` x num by its logit
    (ganforge.ranking) or each noise moved `refine_steps` steps uphill on it (ganforge.refine)."""
    if best_of != 1 and refine_steps:
        raise GanforgeError("best-of and latent refinement (--best-of, --refine-steps) are two ways to use the run's "
                            "D; pick one")
    if refine_steps:
        from ganforge.refine import generate_refined

        return generate_refined(sampler, critic, num, steps=refine_steps, step_size=refine_step_size, seed=seed,
                                labels=labels, batch_size=batch_size, device=device)
    from ganforge.ranking import generate_best_of

    return generate_best_of(sampler, critic, num, best_of=best_of, seed=seed, labels=labels, batch_size=batch_size,
                            device=device)


def critic_from_state(state: dict[str, Any], source: Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator "D" of an already loaded checkpoint `state` (read from `source`, named in errors)."""
    cfg, spec, networks, _ = _stored_model(state, source)
    weights = networks.get("D")
    builders = FAMILIES[cfg.model.family].networks(cfg.model, spec)
    if "D" not in builders:
        raise CheckpointError(f"{source} has no single discriminator 'D' (family {cfg.model.family})")
    return _built(builders, "D", weights, source).to(device).eval().requires_grad_(False)


def sampler_from_state(state: dict[str, Any], source: Path, *, device: str | torch.device = "cpu",
                       use_ema: bool = True) -> Sampler:
    """The sampler of an already loaded checkpoint `state` (read from `source`, named in errors)."""
    cfg, spec, networks, ema = _stored_model(state, source)
    family = FAMILIES[cfg.model.family]
    weights = {name: ema[name] if use_ema and name in ema else networks.get(name)
               for name in family.sampler.network_names}
    return _build_sampler(family, cfg.model, spec, weights, source, device)


def _stored_model(state: dict[str, Any], source: Path):
    """A loaded checkpoint's (config, data spec, network weights, EMA weights), or one CheckpointError line."""
    try:
        # parse_yaml: a damaged config text is a one-line ConfigError, not a YAML traceback
        cfg = config_from_dict(parse_yaml(state["config"], f"the config stored in {source}"))
        spec = DataSpec.from_dict(state["spec"])
        networks, ema = dict(state["networks"]), state.get("ema") or {}
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{source} is missing {err} (not a complete checkpoint)") from None
    return cfg, spec, networks, ema


def _build_sampler(family, model_cfg, spec: DataSpec, weights: dict, source: Path, device) -> Sampler:
    builders = family.networks(model_cfg, spec)
    nets = {name: _built(builders, name, sd, source) for name, sd in weights.items()}
    sampler = family.sampler(nets, config=model_cfg, spec=spec)
    return sampler.to(device).eval().requires_grad_(False)


def _built(builders: dict, name: str, weights: dict | None, source: Path) -> nn.Module:
    """Network `name` built from its config and loaded with `weights`, or one CheckpointError line."""
    if weights is None:
        raise CheckpointError(f"{source} has no weights for network {name!r}")
    net = builders[name]()
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{name} weights do not match its config: {str(err).splitlines()[0]}") from None
    return net


def _load_pretrained(folder: Path, *, device) -> Sampler:
    from safetensors.torch import load_file

    try:
        meta = json.loads((folder / PRETRAINED_CONFIG).read_text())
        family = FAMILIES[meta["family"]]
        model_cfg = build_section(family.config_class, meta["model"], "model")
        model_cfg.validate()
        spec = DataSpec.from_dict(meta["spec"])
        tensors = load_file(str(folder / PRETRAINED_WEIGHTS))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{folder} is not a ganforge sampler folder ({type(err).__name__}: {err})") from None
    weights = {name: {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
               for name in family.sampler.network_names}
    return _build_sampler(family, model_cfg, spec, weights, folder, device)


def evaluate_checkpoint(
    checkpoint: str | Path,  # a run directory (its last checkpoint) or a checkpoint file
    metrics: Sequence[str] | str | None,  # as evaluate(); None: default_metrics for the generator's output
    *,
    num: int = 10_000,  # samples to generate
    real: str | None = None,  # a spec for resolve_real; None: the run's own training data, at its training size
    data_root: str | Path | None = None,  # dataset files (default: the run's data.root)
    use_ema: bool = True,  # sample the EMA of G when the checkpoint has one
    seed: int = 0,  # noise seed of the samples (and of evaluate's subsets)
    best_of: int = 1,  # > 1: the best `num` of best_of * num samples by the run's D (ganforge.ranking)
    refine_steps: int | None = None,  # each sample's noise moved this many steps uphill on the run's D
    # (ganforge.refine); None: the run's sample.refine_steps
    refine_step_size: float | None = None,  # the latent step size of refine_steps; None: the run's
    device: str | torch.device = "cpu",
    **kwargs,  # the rest of evaluate()'s keywords (features, resize, num_real, ...)
) -> dict[str, float]:
    """Generate `num` samples from a checkpoint and evaluate them; conditional models get generate()'s default
    classes (cycling; clusters in their training proportions)."""
    from ganforge.data import load_dataset
    from ganforge.metrics.base import dataset_class_metrics
    from ganforge.metrics.evaluate import default_metrics, evaluate
    from ganforge.metrics.sources import Samples, training_samples
    from ganforge.sampling import default_classes

    state = load_checkpoint(checkpoint)  # read once: the sampler and, for the default real set, the config
    sampler = sampler_from_state(state, resolve_checkpoint(checkpoint), device=device, use_ema=use_ema)
    if sampler.task != "generate":
        raise GanforgeError(f"evaluate scores generated samples; this is a {sampler.task} model")
    cfg = config_from_dict(parse_yaml(state["config"], f"the config in {checkpoint}"))
    metrics = default_metrics(sampler.spec.is_image) if metrics is None else metrics
    if refine_steps is None:  # the run's default, unless best-of sampling was asked for instead
        refine_steps = cfg.sample.refine_steps if best_of == 1 else 0
    refine_step_size = cfg.sample.refine_step_size if refine_step_size is None else refine_step_size
    by_class = dataset_class_metrics(metrics)
    if cfg.data.labels == "clusters" and by_class:
        raise GanforgeError(f"{', '.join(by_class)} compare samples with the dataset's classes, and this model's "
                            "classes are k-means clusters (data.labels: clusters)")
    if real is None:
        if data_root is not None:
            cfg.data.root = str(data_root)
        # The dataset's own labels: the reals are images to compare with, so clusters need not be made again.
        real_samples: Samples | str = training_samples(load_dataset(dataclasses.replace(cfg.data, labels="dataset")))
        data_root = cfg.data.root
    else:
        real_samples = real
    labels = default_classes(sampler, num, seed=seed)  # the classes generate() and generate_best_of() use
    if best_of == 1 and not refine_steps:
        fake = sampler.generate(num, seed=seed, device=device)
    else:
        critic = critic_from_state(state, resolve_checkpoint(checkpoint), device=device)  # the state read above
        fake = critic_guided_samples(sampler, critic, num, best_of=best_of, refine_steps=refine_steps,
                                     refine_step_size=refine_step_size, seed=seed, labels=labels, device=device)
    return evaluate(fake, real_samples, metrics, fake_labels=labels, data_root=data_root, seed=seed, device=device,
                    **kwargs)
