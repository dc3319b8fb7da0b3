"""Writes the legacy checkpoints, weight digests and final weights that tests/test_legacy.py checks.

Run once with ganforge at commit 567eb4d (before the family/phase refactor) to produce the committed files:
    PYTHONPATH=<worktree of 567eb4d>/src python tests/legacy/make_legacy.py
Later code must load these checkpoints and reproduce these runs. Float results of convolutions differ between
CPUs (MKL/oneDNN pick kernels by instruction set), so the files record the machine they were made on
(`fingerprint()`): there the runs must match bitwise; elsewhere the weights must match to float noise.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

# Fixed short runs, one per family that existed before the refactor. Small enough for CI, big enough to touch
# every piece of the step: batch norm, EMA, R1 (lazy too), an LR schedule, conditional labels, n_critic 2.
RUNS = {
    "mlp": {
        "data": {"name": "ring", "num_points": 1024},
        "model": {"family": "mlp", "latent_dim": 4, "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2},
        "loss": {"name": "nonsaturating", "regularizers": {"r1": {"gamma": 0.1, "interval": 2}}},
        "train": {"batch_size": 32, "steps": 12, "lr_g": 1e-3, "lr_d": 1e-3, "lr_schedule": "linear",
                  "ema_kimg": 0.1, "log_every": 4, "sample_every": 12, "checkpoint_every": 6, "seed": 7},
    },
    "dcgan": {
        "data": {"name": "digits", "image_size": [16], "limit": 256},
        "model": {"family": "dcgan", "latent_dim": 8, "g_channels": 4, "d_channels": 4, "conditional": True},
        "loss": {"name": "hinge", "regularizers": {"r1": {"gamma": 1.0}}},  # R1: real labels, unchanged by the R2 fix
        "train": {"batch_size": 16, "steps": 8, "ema_kimg": 0.1, "log_every": 4, "sample_every": 8,
                  "checkpoint_every": 4, "seed": 3, "n_critic": 2},
    },
    "seed001": {
        "data": {"name": "digits", "limit": 256},
        "model": {"family": "seed001", "latent_dim": 16},
        "loss": {"name": "nonsaturating"},
        "train": {"batch_size": 16, "steps": 6, "lr_g": 1e-4, "lr_d": 1e-4, "betas_g": [0.9, 0.999],
                  "betas_d": [0.9, 0.999], "log_every": 3, "sample_every": 6, "checkpoint_every": 3, "seed": 5,
                  "channels_last": True},
    },
}


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names and exact bytes of every tensor (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def fingerprint() -> str:
    """What decides a CPU run's float results here: torch's version, its CPU kernels and the processor."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"torch {torch.__version__.split('+')[0]}; {torch.backends.cpu.get_cpu_capability()}; {model}"


def run_config(name: str, steps: int | None = None) -> dict:
    raw = json.loads(json.dumps(RUNS[name]))
    raw["train"]["progress"] = False
    if steps is not None:
        raw["train"]["steps"] = steps
    return raw


def main() -> None:
    from safetensors.torch import save_file

    from ganforge.config import config_from_dict
    from ganforge.train.checkpoint import load_checkpoint
    from ganforge.train.trainer import train

    torch.set_num_threads(1)
    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in RUNS:
            run_dir = Path(tmp) / name
            train(config_from_dict(run_config(name)), run_dir)
            state = load_checkpoint(run_dir)
            nets = {key: state[key] for key in ("G", "D", "G_ema") if state.get(key) is not None}
            digests[name] = {key: digest(tensors) for key, tensors in nets.items()}
            # The final weights themselves: what another machine's run is compared with, to float noise.
            save_file({f"{key}/{p}": t.detach().cpu().contiguous() for key, tensors in nets.items()
                       for p, t in tensors.items()}, str(HERE / f"{name}-final.safetensors"))
            # The mid-run checkpoint (step = half the run): what test_legacy resumes from.
            half = RUNS[name]["train"]["checkpoint_every"]
            shutil.copyfile(run_dir / "checkpoints" / f"step-{half:08d}.pt", HERE / f"{name}-v1.pt")
    (HERE / "digests.json").write_text(json.dumps({"fingerprint": fingerprint(), **digests}, indent=2) + "\n")
    print(json.dumps(digests, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
