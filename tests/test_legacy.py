"""No behaviour change for the families that predate the family/phase refactor, and their old checkpoints live on.

tests/legacy/ holds, written by ganforge at commit 567eb4d (checkpoint format 1) with make_legacy.py:
  - digests.json: sha256 of G, D and G_ema after fixed short runs of mlp, dcgan and seed001;
  - NAME-v1.pt: each run's mid-way checkpoint.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.trainer import train

LEGACY = Path(__file__).resolve().parent / "legacy"
sys.path.insert(0, str(LEGACY))
from make_legacy import RUNS, digest, run_config  # noqa: E402

DIGESTS = json.loads((LEGACY / "digests.json").read_text())
NET_KEYS = {"G": ("networks", "G"), "D": ("networks", "D"), "G_ema": ("ema", "G")}


def final_digests(state: dict) -> dict[str, str]:
    out = {}
    for key, (section, name) in NET_KEYS.items():
        if name in state[section]:
            out[key] = digest(state[section][name])
    return out


@pytest.mark.parametrize("family", list(RUNS))
def test_same_weights_as_before_the_refactor(tmp_path, family):
    train(config_from_dict(run_config(family)), tmp_path / family)
    assert final_digests(load_checkpoint(tmp_path / family)) == DIGESTS[family]


@pytest.mark.parametrize("family", list(RUNS))
def test_format_1_checkpoint_loads_generates_and_resumes(tmp_path, family):
    old = LEGACY / f"{family}-v1.pt"
    raw = torch.load(old, weights_only=True)
    assert raw["version"] == 1 and "G" in raw  # really the old layout
    state = load_checkpoint(old)
    assert state["version"] == 2 and set(state["networks"]) == {"G", "D"}

    # It generates, through the CLI, from the checkpoint file alone.
    out = tmp_path / "samples.npz"
    assert main(["generate", str(old), "--num", "8", "--format", "npz", "--out", str(out)]) == 0
    import numpy as np

    with np.load(out) as f:
        arrays = dict(f)
    assert len(next(iter(arrays.values()))) == 8

    # It resumes: laid out as a run directory, the old mid-way checkpoint continues to the old run's end with
    # exactly the weights the old code reached without stopping.
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copyfile(old, run_dir / "checkpoints" / "last.pt")
    (run_dir / "config.yaml").write_text(raw["config"])
    steps = RUNS[family]["train"]["steps"]
    assert main(["train", "--resume", str(run_dir), "--steps", str(steps)]) == 0
    resumed = load_checkpoint(run_dir)
    assert resumed["step"] == steps and resumed["version"] == 2
    assert final_digests(resumed) == DIGESTS[family]
