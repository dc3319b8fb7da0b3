"""Writes the legacy checkpoints and weight digests that tests/test_legacy.py checks.

Run once with ganforge at commit 567eb4d (before the family/phase refactor) to produce the committed files:
    python tests/legacy/make_legacy.py
Later code must load these checkpoints and reproduce these digests from the same runs (`legacy_runs()`).
"""

from __future__ import annotations

import hashlib
import json
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


def run_config(name: str, steps: int | None = None) -> dict:
    raw = json.loads(json.dumps(RUNS[name]))
    raw["train"]["progress"] = False
    if steps is not None:
        raw["train"]["steps"] = steps
    return raw


def main() -> None:
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
            digests[name] = {key: digest(state[key]) for key in ("G", "D", "G_ema") if state.get(key) is not None}
            # The mid-run checkpoint (step = half the run): what test_legacy resumes from.
            half = RUNS[name]["train"]["checkpoint_every"]
            shutil.copyfile(run_dir / "checkpoints" / f"step-{half:08d}.pt", HERE / f"{name}-v1.pt")
    (HERE / "digests.json").write_text(json.dumps(digests, indent=2) + "\n")
    print(json.dumps(digests, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
