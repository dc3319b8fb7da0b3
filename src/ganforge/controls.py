"""What `ganforge generate` asks of a conditional or InfoGAN model: classes, latent codes, sweeps, grid layouts.

`--class 3` / `--class 0,1,2` picks classes (`--label` is the older spelling); `--code c0=3` fixes codes;
`--sweep c1=-2:2:8` varies one code along each row with everything else fixed; `--grid` lays a conditional
model's samples out as one row per class (the same noise down each column), and a sweep as one row per noise
with the swept values as columns. Bad input is a one-line GanforgeError naming it, raised before sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.sampling import class_cycle, generate, to_output

__all__ = ["Layout", "parse_classes", "parse_codes", "parse_sweep", "sample_layout"]

DEFAULT_SWEEP_STEPS = 8  # a continuous sweep without a range: this many values across the code's range


@dataclass
class Layout:
    samples: Tensor  # user-space samples, row-major
    nrow: int | None  # images per grid row (None: the default square grid)


def parse_classes(text: str, num_classes: int) -> list[int]:
    """"3" or "0,1,2" -> [classes], each checked against the model's class count."""
    if not num_classes:
        raise GanforgeError("--class needs a conditional model; this one is unconditional")
    try:
        classes = [int(part) for part in text.split(",")]
    except ValueError:
        raise GanforgeError(f"--class takes class numbers like 3 or 0,1,2, got {text!r}") from None
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise GanforgeError(f"--class must be in [0, {num_classes - 1}], got {bad[0]}")
    return classes


def _code_spec(name: str, specs: dict, flag: str):
    if not specs:
        raise GanforgeError(f"{flag}: this model has no latent codes (InfoGAN models have them)")
    if name not in specs:
        raise GanforgeError(f"{flag}: this model has no code {name!r}; its codes: {', '.join(specs)}")
    return specs[name]


def _code_value(name: str, text: str, spec, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GanforgeError(f"{flag} {name}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise GanforgeError(f"{flag} {name}: the value must be finite, got {text!r}")
    if spec.kind == "categorical" and (value != int(value) or not 0 <= value < spec.size):
        raise GanforgeError(f"{flag} {name} is categorical: a whole number in 0..{spec.size - 1}, got {text}")
    return value


def parse_codes(items: list[str], specs: dict) -> dict[str, float]:
    """["c0=3", "c1=0.5,c2=-1"] -> {"c0": 3.0, "c1": 0.5, "c2": -1.0}, checked against the model's codes."""
    codes: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            name, sep, text = part.partition("=")
            if not sep or not name.strip():
                raise GanforgeError(f"--code takes NAME=VALUE (e.g. c0=3), got {part!r}")
            name = name.strip()
            codes[name] = _code_value(name, text.strip(), _code_spec(name, specs, "--code"), "--code")
    return codes


def parse_sweep(text: str, specs: dict) -> tuple[str, Tensor]:
    """"c1=-2:2:8" (start:stop:steps), "c0" (every value of a categorical code) or "c1" (its range, 8 steps)."""
    name, sep, rng = text.partition("=")
    name = name.strip()
    spec = _code_spec(name, specs, "--sweep")
    if not sep:
        if spec.kind == "categorical":
            return name, torch.arange(spec.size, dtype=torch.float32)
        return name, torch.linspace(spec.low, spec.high, DEFAULT_SWEEP_STEPS)
    parts = rng.split(":")
    if len(parts) != 3:
        raise GanforgeError(f"--sweep takes NAME=START:STOP:STEPS (e.g. c1=-2:2:8), got {text!r}")
    start = _code_value(name, parts[0], spec, "--sweep")
    stop = _code_value(name, parts[1], spec, "--sweep")
    try:
        steps = int(parts[2])
    except ValueError:
        steps = 0
    if steps < 2:
        raise GanforgeError(f"--sweep {name}: STEPS must be a whole number >= 2, got {parts[2]!r}")
    values = torch.linspace(start, stop, steps)
    if spec.kind == "categorical":
        if (values != values.round()).any():
            raise GanforgeError(f"--sweep {name} is categorical: {start:g}:{stop:g}:{steps} does not fall on whole "
                                "numbers")
    return name, values


@torch.no_grad()
def _run(sampler, z: Tensor, labels: Tensor | None, codes: dict, batch_size: int, controls: dict) -> Tensor:
    device = sampler.device
    out = []
    for start in range(0, len(z), batch_size):
        rows = slice(start, start + batch_size)
        batch_codes = {k: v[rows] if isinstance(v, Tensor) else v for k, v in codes.items()}
        kwargs = ({"codes": batch_codes} if batch_codes else {}) | controls
        y = None if labels is None else labels[rows].to(device)
        out.append(to_output(sampler(z[rows].to(device), y, **kwargs).float().cpu(), sampler.spec.is_image))
    return torch.cat(out)


def sample_layout(sampler, num: int, *, seed: int = 0, classes: list[int] | None = None,
                  codes: dict[str, float] | None = None, sweep: tuple[str, Tensor] | None = None, grid: bool = False,
                  batch_size: int = 256, controls: dict | None = None) -> Layout:
    """Samples for `generate`'s flags, in the order a grid shows them (`controls`: the same for every sample,
    e.g. a style model's {"truncation": psi}).

    - sweep: num // steps rows (at least 1), each one noise vector (its unset codes drawn with it) and its
      class, the swept code taking each value along the row;
    - grid on a conditional model: one row per class (given, or all), ceil(num / rows) columns, the same noise
      down each column;
    - otherwise `num` samples, classes cycling through `classes` (or all), codes fixed where given.
    """
    codes = dict(codes or {})
    controls = dict(controls or {})
    rng = torch.Generator().manual_seed(seed)
    num_classes = sampler.num_classes
    class_list = torch.tensor(classes) if classes else (torch.arange(num_classes) if num_classes else None)
    if sweep is not None:
        name, values = sweep
        steps = len(values)
        rows = max(1, num // steps)
        z = sampler.sample_latent(rows, generator=rng).repeat_interleave(steps, dim=0)
        labels = None if class_list is None else class_list[torch.arange(rows) % len(class_list)]
        labels = None if labels is None else labels.repeat_interleave(steps)
        codes[name] = values.repeat(rows)
        return Layout(_run(sampler, z, labels, codes, batch_size, controls), steps if grid else None)
    if grid and class_list is not None:
        cols = math.ceil(num / len(class_list))
        z = sampler.sample_latent(cols, generator=rng).repeat(len(class_list), 1)
        labels = class_list.repeat_interleave(cols)
        return Layout(_run(sampler, z, labels, codes, batch_size, controls), cols)
    labels = None if class_list is None else class_list[class_cycle(num, len(class_list))]
    controls |= {"codes": codes} if codes else {}
    return Layout(generate(sampler, num, seed=seed, batch_size=batch_size, labels=labels, **controls), None)
