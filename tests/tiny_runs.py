"""Tiny trained runs for the tests of what users do with a run (generate, interpolate, export, the README).

Each is a few optimizer steps on a few hundred examples: enough to leave a real run directory (config,
checkpoints, samples, metrics) that every command reads; not a model anyone would look at.
"""

from __future__ import annotations

from pathlib import Path

from ganforge.config import config_from_dict, merge
from ganforge.train.trainer import train

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
