"""Checkpoints: written atomically (temp file, fsync, rename), loaded without executing pickled code.

A checkpoint is one `torch.save` file of plain containers and tensors, read back with
`torch.load(weights_only=True)`: a crafted pickle that would run code is refused. It holds everything a
bitwise-exact resume needs and the resolved config and data spec, so a sampler can be rebuilt from the
checkpoint alone. Format 2 stores everything by the family's names:

    networks {name: state_dict}     ema {name: state_dict}          family_state {name: state_dict}
    optimizers {name: state_dict}   schedulers {name: state_dict}
    config, spec, step, batches_drawn, regularizers, augment, scaler, health, trainer, rng

Format 1 (ganforge 0.1: fixed keys G, D, G_ema, opt_g, opt_d, sched_g, sched_d) is upgraded on load.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import CheckpointError
from ganforge.fileio import atomic_write_bytes, link_or_copy

__all__ = ["atomic_write_bytes", "link_or_copy", "load_checkpoint", "prune", "resolve_checkpoint", "save_checkpoint",
           "step_checkpoints", "upgrade"]

FORMAT = "ganforge-checkpoint"  # marks a file as ours
VERSION = 2  # 2: networks, EMAs, optimizers, schedulers and family state by name
CHECKPOINT_DIR = "checkpoints"
STEP_FILE = re.compile(r"step-(\d+)\.pt$")


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    state = {"format": FORMAT, "version": VERSION, **state}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err.strerror or err}") from None


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ganforge checkpoint safely; a run directory means its `last` checkpoint."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} is not a safe ganforge checkpoint (refused to unpickle: {str(err).splitlines()[0]})"
        ) from None
    except Exception as err:  # a damaged file fails deep in zip/pickle parsing with any type (IndexError, ...)
        reason = str(err).splitlines()[0] if str(err) else ""
        raise CheckpointError(f"{path} is truncated or not a ganforge checkpoint "
                              f"({type(err).__name__}{': ' if reason else ''}{reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganforge checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer ganforge (format {state['version']})")
    return upgrade(state)


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """A format-1 checkpoint as format 2 (a no-op for format 2): its two networks named G and D."""
    if state.get("version", 1) >= 2:
        return state
    new = {k: v for k, v in state.items()
           if k not in ("G", "D", "G_ema", "opt_g", "opt_d", "sched_g", "sched_d")}
    new["version"] = VERSION
    try:
        new["networks"] = {"G": state["G"], "D": state["D"]}
        new["ema"] = {"G": state["G_ema"]} if state.get("G_ema") is not None else {}
        new["optimizers"] = {"G": state["opt_g"], "D": state["opt_d"]}
        # Format 1 folded the rollback factor into the schedulers' base rates; format 2 derives it from the
        # health monitor's rollback count, so the base rates go back to the optimizers' initial ones.
        new["schedulers"] = {}
        for name, sched_key, opt_key in (("G", "sched_g", "opt_g"), ("D", "sched_d", "opt_d")):
            sched = dict(state[sched_key])
            sched["base_lrs"] = [group["initial_lr"] for group in state[opt_key]["param_groups"]]
            new["schedulers"][name] = sched
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"format-1 checkpoint is missing {err} (not a complete checkpoint)") from None
    new["family_state"] = {}
    return new


def resolve_checkpoint(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        last = path / CHECKPOINT_DIR / "last.pt"
        if not last.exists():
            raise CheckpointError(f"{path} has no checkpoint ({last} not found)")
        return last
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found")
    return path


def step_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for p in folder.glob("step-*.pt"):
        m = STEP_FILE.search(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def prune(folder: Path, keep: int) -> None:
    """Keep the newest `keep` step checkpoints (`last` and `best` are separate links and stay), and remove the
    temporary files a killed run left behind (each may be as big as a checkpoint)."""
    for _, path in step_checkpoints(folder)[: max(0, len(step_checkpoints(folder)) - keep)]:
        path.unlink(missing_ok=True)
    for stale in [*folder.glob(".*.pt.*.tmp"), *folder.glob(".*.pt.link")]:  # see atomic_write_bytes, link_or_copy
        stale.unlink(missing_ok=True)
