"""The Python API, one function per CLI command: `train`, `generate`, `evaluate`, `interpolate`, `export`.

Each takes what its command takes, by the same names (`--data-root` is `data_root=`, `--set K=V` is
`overrides=["K=V"]`), and returns what the command writes or prints (a TrainResult, a tensor, a dict of
scores, paths). `resolve_config` is the part of `ganforge train` that turns a preset, a config file, flags and
overrides into a validated Config, including the first-run rule: data named without a preset or model family
gets a family that fits it (2-D points: the toy MLP GAN; images: DCGAN at the data's size and channels).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge import config as C
from ganforge.errors import ConfigError, GanforgeError

__all__ = ["evaluate", "export", "generate", "interpolate", "resolve_config", "resolve_raw", "train"]

DEFAULT_PRESET = "default"  # `ganforge train` with nothing named: DCGAN on the bundled digits
POINTS_PRESET = "toy-ring"  # the recipe (model, loss, schedule) for 2-D points named without a preset


def is_point_dataset(name: str) -> bool:
    """Whether the registered dataset `name` holds 2-D points (the toy sets) rather than images."""
    from ganforge.data import DATASETS, toy2d

    return getattr(DATASETS[name], "__module__", None) == toy2d.__name__


def resolve_raw(
    preset: str | None = None,  # preset name; None: chosen from the data (see module docstring), else "default"
    *,
    config: str | Path | dict | None = None,  # a YAML file (or its parsed dict) merged over the preset
    dataset: str | None = None,  # data.name
    data_root: str | Path | None = None,  # data.root
    image_size: Sequence[int] | None = None,  # data.image_size: [S] or [H, W]
    channels: int | None = None,  # data.channels
    resize: str | None = None,  # data.resize: "resize" or "center-crop"
    steps: int | None = None,  # train.steps (clears train.epochs)
    epochs: float | None = None,  # train.epochs
    seed: int | None = None,  # train.seed
    overrides: Sequence[str] = (),  # "section.key=value" assignments, applied last
) -> tuple[dict[str, Any], str | None]:
    """The raw config dict `ganforge train` builds, and a one-line note when it chose the model for the data."""
    user = (copy.deepcopy(config) if isinstance(config, dict)
            else C.load_config_file(config) if config is not None else {})
    for name in [f.name for f in dataclasses.fields(C.Config) if f.name in user]:
        if user[name] is None:  # `train:` left empty changes nothing (rather than dropping the preset's section)
            del user[name]
        elif not isinstance(user[name], dict):
            raise ConfigError(f"config section {name!r} must be a mapping, got {type(user[name]).__name__}")
    preset = _extended_preset(user, preset, config)

    def apply(raw: dict[str, Any]) -> dict[str, Any]:  # flags, then --set, over `raw` (in place)
        data, train = raw.setdefault("data", {}), raw.setdefault("train", {})
        for key, value in (("name", dataset), ("root", None if data_root is None else str(data_root)),
                           ("image_size", None if image_size is None else list(image_size)),
                           ("channels", channels), ("resize", resize)):
            if value is not None:
                data[key] = value
        if steps is not None:
            train["steps"], train["epochs"] = steps, None
        if epochs is not None:
            train["epochs"] = epochs
        if seed is not None:
            train["seed"] = seed
        for assignment in overrides:
            C.apply_override(raw, assignment)
        return raw

    named = apply(copy.deepcopy(user))  # only what the user named, to see whether they chose data or a family
    note = None
    base = C.load_preset(preset or DEFAULT_PRESET)
    data_name = (named.get("data") or {}).get("name")
    model_named = "family" in (named.get("model") or {})
    if preset is None and isinstance(data_name, str) and not model_named and data_name != base["data"]["name"]:
        from ganforge.data import DATASETS

        if data_name in DATASETS:  # an unknown name is left to the config check, which lists the valid ones
            if is_point_dataset(data_name):
                base = C.load_preset(POINTS_PRESET)
                note = (f"{data_name} holds 2-D points: training the toy MLP GAN (preset {POINTS_PRESET}'s model "
                        f"and recipe); name a --preset or --set model.family=... to choose another")
            else:
                base["data"].pop("image_size", None)  # the default preset's 32x32 is for its 8x8 digits
                size = (named.get("data") or {}).get("image_size")
                at = f"at {'x'.join(map(str, size))}" if size else "at the data's own size and channels"
                note = (f"no model family named: training DCGAN (preset {DEFAULT_PRESET}'s model) on {data_name} "
                        f"{at}; name a --preset or --set model.family=... to choose another")
    raw = apply(C.merge(base, user))
    return raw, note


def _extended_preset(user: dict[str, Any], preset: str | None, source: str | Path | dict | None) -> str | None:
    """The preset a user config starts from: its `extends:` (popped from `user`), as in a preset file, or `preset`.

    `extends: mnist` in a --config file is `--preset mnist` written in the file; naming two different presets is
    an error rather than a silent choice."""
    where = "the config" if isinstance(source, dict) else f"config {source}"
    parent = C.pop_extends(user, where)
    if parent is None:
        return preset
    if preset is not None and preset != parent:
        raise ConfigError(f"{where} extends preset {parent!r} but preset {preset!r} was named too; name one")
    return parent


def resolve_config(preset: str | None = None, **kwargs) -> C.Config:
    """A validated Config as `ganforge train` resolves it (same keywords as `resolve_raw`)."""
    raw, _ = resolve_raw(preset, **kwargs)
    return C.config_from_dict(raw)


def train(
    config: C.Config | str | dict | None = None,  # a Config, a preset name, a raw config dict, or None
    run_dir: str | Path | None = None,  # where the run goes; None: runs/PRESET-TIMESTAMP
    *,
    resume: bool = False,  # continue the run in run_dir from its last checkpoint (config: None)
    overwrite: bool = False,  # replace a non-empty run_dir
    verbose: bool = True,  # print the one-line note when the model was chosen for the data
    **options,  # resolve_raw's keywords when `config` is a preset name or None: dataset=, steps=, overrides=...
):
    """Train a GAN; returns a TrainResult (run_dir, step, stopped_by, diagnoses). Mirrors `ganforge train`.

        ganforge.train("toy-ring", "runs/ring", steps=3000)         # a preset, with flags as keywords
        ganforge.train(dataset="grid", steps=2000)                   # the model is chosen for the data
        ganforge.train(overrides=["loss.name=hinge"], steps=500)     # the default preset, changed
        ganforge.train(cfg, "runs/x")                                # a resolved Config
        ganforge.train(run_dir="runs/x", resume=True, steps=6000)    # continue a run up to 6000 steps
    """
    from ganforge.train.trainer import train as train_config

    if resume:
        if run_dir is None:
            raise GanforgeError("resume=True needs the run_dir to continue")
        if isinstance(config, C.Config) and not options:  # the trainer's own form: train(cfg, run_dir, resume=True)
            return train_config(config, Path(run_dir), resume=True)
        if config is not None or set(options) - {"steps", "epochs"}:
            raise GanforgeError("resume continues a run with its own config; only steps/epochs may change")
        raw = C.load_config_file(Path(run_dir) / "config.yaml")
        if options.get("steps") is not None:
            raw.setdefault("train", {})["steps"], raw["train"]["epochs"] = options["steps"], None
        if options.get("epochs") is not None:
            raw.setdefault("train", {})["epochs"] = options["epochs"]
        return train_config(C.config_from_dict(raw), Path(run_dir), resume=True)
    if isinstance(config, C.Config):
        if options:
            raise GanforgeError(f"train(cfg, ...) takes a resolved Config as is; got {', '.join(sorted(options))} "
                                "too (pass a preset name or None to use them)")
        cfg, label = config, "run"
    else:
        preset = config if isinstance(config, str) else None
        raw_config = config if isinstance(config, dict) else options.pop("config", None)
        raw, note = resolve_raw(preset, config=raw_config, **options)
        if note and verbose:
            print(f"ganforge: {note}")
        cfg, label = C.config_from_dict(raw), preset or DEFAULT_PRESET
    if run_dir is None:
        run_dir = Path("runs") / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    return train_config(cfg, Path(run_dir), overwrite=overwrite)


def _sampler_of(model, *, use_ema: bool = True, device: str | torch.device = "cpu"):
    """A loaded sampler or generator as is; a path (run, checkpoint, save_pretrained folder) loaded."""
    if isinstance(model, nn.Module):
        return model
    from ganforge.saved import load_sampler

    return load_sampler(model, device=device, use_ema=use_ema)


def generate(
    model,  # a run directory, checkpoint or save_pretrained folder; or a loaded sampler / generator
    num: int = 64,  # how many samples
    *,
    seed: int = 0,  # noise seed: the same seed gives the same samples
    labels: Tensor | int | None = None,  # conditional models: one class for all, or (num,) classes; None cycles
    batch_size: int = 256,
    device: str | torch.device | None = None,
    use_ema: bool = True,  # for a path: sample the EMA of G when the run kept one
    out: str | Path | None = None,  # also write them: a folder of PNGs, a .png grid or an .npz (as the CLI)
    grid: bool = False,  # with out: one grid image
    overwrite: bool = False,
    **controls,  # sampler controls: truncation=0.7, codes={...} (families that have them)
) -> Tensor:
    """`num` samples: uint8 images (N, C, H, W) or float points (N, D). Mirrors `ganforge generate`."""
    from ganforge.sampling import generate as generate_samples
    from ganforge.sampling import write_outputs

    if num <= 0:
        raise GanforgeError(f"num must be > 0, got {num}")
    sampler = _sampler_of(model, use_ema=use_ema, device=device or "cpu")
    if isinstance(labels, int):
        classes = getattr(sampler, "num_classes", 0)
        if not classes:
            raise GanforgeError("labels need a conditional model; this one is unconditional")
        if not 0 <= labels < classes:
            raise GanforgeError(f"labels must be in [0, {classes - 1}], got {labels}")
        labels = torch.full((num,), labels, dtype=torch.long)
    samples = generate_samples(sampler, num, seed=seed, batch_size=batch_size, labels=labels, device=device,
                               **controls)
    if out is not None:
        out = Path(out)
        write_outputs(samples, out, fmt="npz" if out.suffix == ".npz" else "png", grid=grid, overwrite=overwrite)
    return samples


def evaluate(
    source,  # a run directory / checkpoint (sampled), or samples: a tensor, an .npz or an image folder
    metrics: Sequence[str] | str | None = None,  # names such as "fid,kid,pr"; None: fid,kid,pr (modes,pr: points)
    *,
    real: Tensor | str | None = None,  # real data: a dataset spec ("mnist:test"), folder, .npz or tensor; None:
    # a run's own training data (samples need one unless the metrics need none)
    num: int | None = None,  # samples to generate from a run (default 10,000) or to read from samples
    **kwargs,  # the rest of `ganforge evaluate`'s options: features=, data_root=, num_real=, seed=, device=, ...
) -> dict[str, float]:
    """Scores keyed by result name (fid, kid, precision, ...). Mirrors `ganforge evaluate`."""
    from ganforge.metrics.evaluate import default_metrics
    from ganforge.metrics.evaluate import evaluate as evaluate_samples
    from ganforge.metrics.sources import resolve_fake
    from ganforge.saved import evaluate_checkpoint

    if isinstance(source, (str, Path)) and _is_run(Path(source)):
        return evaluate_checkpoint(source, metrics, num=num or 10_000, real=real, **kwargs)
    fake = resolve_fake(source, limit=num) if isinstance(source, (str, Path)) else source
    if metrics is None:
        metrics = default_metrics(fake.ndim == 4 if isinstance(fake, Tensor) else fake.is_image)
    return evaluate_samples(fake, real, metrics, **kwargs)


def _is_run(path: Path) -> bool:
    """A run directory or a checkpoint file (as opposed to samples: an .npz or a folder of images)."""
    return path.suffix == ".pt" or (path.is_dir() and ((path / "checkpoints").is_dir()
                                                       or (path / "config.yaml").exists()))


def interpolate(
    model,  # a run directory, checkpoint or save_pretrained folder; or a loaded noise sampler
    out: str | Path | None = None,  # also write them: .gif (animation) or .png (a strip, a row per path)
    *,
    steps: int = 16,
    method: str | None = None,  # "linear" or "slerp" (default: slerp in z, linear in w)
    space: str = "z",  # "z" or "w" (style models)
    seed: int = 0,  # start seed; the end seed is seed + 1 unless to_seed
    from_seed: int | None = None,
    to_seed: int | None = None,
    rows: int = 1,  # independent paths
    label: int | None = None,  # class of every path (conditional models)
    truncation: float | None = None,  # style models
    fps: float = 8.0,  # GIF frames per second
    use_ema: bool = True,
    overwrite: bool = False,
) -> Tensor:
    """Images along latent paths, uint8 (steps, rows, C, H, W). Mirrors `ganforge interpolate`."""
    from ganforge.interpolation import interpolate as walk
    from ganforge.interpolation import write_interpolation

    sampler = _sampler_of(model, use_ema=use_ema)
    start = seed if from_seed is None else from_seed
    images = walk(sampler, steps=steps, method=method, space=space, from_seed=start,
                  to_seed=start + 1 if to_seed is None else to_seed, rows=rows, label=label, truncation=truncation)
    if out is not None:
        write_interpolation(images, out, fps=fps, overwrite=overwrite)
    return images


def export(
    model,  # a run directory, checkpoint or save_pretrained folder; or a loaded sampler
    out: str | Path,  # the file (.onnx, .pt) or, for safetensors, the folder
    format: str = "onnx",  # "onnx", "torchscript" or "safetensors"
    *,
    use_ema: bool = True,
    overwrite: bool = False,
) -> Path:
    """Export the model a user runs (see ganforge.export for the graph's inputs). Mirrors `ganforge export`."""
    from ganforge.export import export_sampler

    return export_sampler(_sampler_of(model, use_ema=use_ema), format, out, overwrite=overwrite)
