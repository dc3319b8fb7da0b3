"""Tiny trained runs for the tests of what users do with a run (report, serve, logging, generate, interpolate,
export, the README).

Each is a few optimizer steps on a few hundred examples: enough to leave a real run directory (config,
checkpoints, samples, metrics) that every command reads; not a model anyone would look at.
"""

from __future__ import annotations

from pathlib import Path

from conftest import tiny_config
from ganforge.config import config_from_dict, merge
from ganforge.train.trainer import train

# A conditional DCGAN on 16x16 digits: grids, checkpoints and every tick stat of an image run.
IMAGE_RUN = tiny_config(
    data={"name": "digits", "image_size": [16], "limit": 128},
    model={"family": "dcgan", "latent_dim": 8, "g_channels": 8, "d_channels": 8, "conditional": True},
    train={"batch_size": 32, "steps": 12, "log_every": 3, "sample_every": 4, "checkpoint_every": 12},
)

# The MLP on the ring with periodic evaluation (modes): an evaluation table.
POINTS_RUN = tiny_config(train={"steps": 40, "log_every": 10, "sample_every": 10, "checkpoint_every": 20},
                         eval={"every": 20, "metrics": ["modes"], "num": 256})


def train_run(raw: dict, path: Path, **train_overrides) -> Path:
    """Train `raw` (with train.* overrides) into `path`; the run directory."""
    cfg = config_from_dict(merge(raw, {"train": train_overrides}) if train_overrides else raw)
    return train(cfg, path).run_dir


_TRAINED: dict[str, Path] = {}


def trained(name: str, tmp_path_factory, **train_overrides) -> Path:
    """IMAGE_RUN ("image") or POINTS_RUN ("points") trained once per test session, shared by the test files."""
    key = f"{name}-{'-'.join(f'{k}={v}' for k, v in sorted(train_overrides.items()))}"
    if key not in _TRAINED:
        raw = {"image": IMAGE_RUN, "points": POINTS_RUN}[name]
        _TRAINED[key] = train_run(raw, tmp_path_factory.mktemp("runs") / key, **train_overrides)
    return _TRAINED[key]


# The smallest runs: what generate, interpolate, export and the README commands read.
TRAIN = {"batch_size": 16, "steps": 4, "log_every": 2, "sample_every": 4, "checkpoint_every": 4, "progress": False,
         "ema_kimg": 0.1}

IMAGE = {"data": {"name": "digits", "image_size": [8], "limit": 256},
         "model": {"family": "dcgan", "latent_dim": 8, "g_channels": 8, "d_channels": 8},
         "train": TRAIN}
POINTS = {"data": {"name": "ring", "num_points": 512},
          "model": {"family": "mlp", "latent_dim": 2, "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2},
          "train": TRAIN}


def tiny_run(path: Path, kind: str = "image", **sections) -> Path:
    """Train a tiny run into `path` ("image": DCGAN on 8x8 digits; "points": MLP on the ring)."""
    raw = merge(IMAGE if kind == "image" else POINTS, sections)
    train(config_from_dict(raw), path)
    return path
