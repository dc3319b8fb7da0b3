"""Checkpoints: written atomically (temp file, fsync, rename), loaded without executing pickled code.

A checkpoint is one `torch.save` file of plain containers and tensors, read back with
`torch.load(weights_only=True)`: a crafted pickle that would run code is refused. It holds everything a
bitwise-exact resume needs (G, D, EMA, optimizers, schedulers, regularizer state, RNG states, step) and the
resolved config and data spec, so a generator can be rebuilt from the checkpoint alone.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import CheckpointError

FORMAT = "ganforge-checkpoint"  # marks a file as ours
VERSION = 1
CHECKPOINT_DIR = "checkpoints"
STEP_FILE = re.compile(r"step-(\d+)\.pt$")


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write `payload` to `path` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    return state


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


def link_or_copy(source: Path, target: Path) -> None:
    """Point `target` atomically at `source`'s content (a hard link; a copy where links don't work)."""
    tmp = target.with_name(f".{target.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        atomic_write_bytes(tmp, source.read_bytes())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


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


# ------------------------------------------------------------------------------------ generator only


def load_generator(path: str | Path, *, device: str | torch.device = "cpu", use_ema: bool = True):
    """Rebuild a ready generator (eval mode) from a checkpoint or run directory; no dataset needed."""
    return generator_from_state(load_checkpoint(path), resolve_checkpoint(path), device=device, use_ema=use_ema)


def generator_from_state(state: dict, source: Path, *, device: str | torch.device = "cpu", use_ema: bool = True):
    """The generator of an already loaded checkpoint `state` (read from `source`, named in errors)."""
    from ganforge.config import config_from_dict, parse_yaml
    from ganforge.models import FAMILIES, DataSpec

    try:
        # parse_yaml: a damaged config text is a one-line ConfigError, not a YAML traceback
        cfg = config_from_dict(parse_yaml(state["config"], f"the config stored in {source}"))
        spec = DataSpec(shape=tuple(state["spec"]["shape"]), num_classes=int(state["spec"]["num_classes"]))
        weights = state["G_ema"] if use_ema and state.get("G_ema") is not None else state["G"]
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{source} is missing {err} (not a complete checkpoint)") from None
    generator = FAMILIES[cfg.model.family].build_generator(cfg.model, spec)
    try:
        generator.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"generator weights do not match its config: {str(err).splitlines()[0]}") from None
    return generator.to(device).eval().requires_grad_(False)
