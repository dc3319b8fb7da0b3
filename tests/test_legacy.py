"""No behaviour change for the families that predate the family/phase refactor, and their old checkpoints live on.

tests/legacy/ holds, written by ganforge at commit 567eb4d (checkpoint format 1) with make_legacy.py:
  - digests.json: sha256 of G, D and G_ema after fixed short runs of mlp, dcgan and seed001, and the
    fingerprint (torch version, CPU kernels, processor) of the machine that ran them;
  - NAME-final.safetensors: those final weights;
  - NAME-v1.pt: each run's mid-way checkpoint.
On a machine with that fingerprint the new code must reproduce the old runs bitwise. Elsewhere convolutions
round differently (MKL/oneDNN choose kernels by instruction set), so the weights must instead lie within 2% of
the training update's size from the old ones: measured float noise across two CPUs was 0.4% at mid-run, while a
changed loss, order of phases or data order moves them by the size of the update itself.
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
from make_legacy import RUNS, digest, fingerprint, run_config  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

DIGESTS = json.loads((LEGACY / "digests.json").read_text())
SAME_MACHINE = DIGESTS.pop("fingerprint") == fingerprint()
NET_KEYS = {"G": ("networks", "G"), "D": ("networks", "D"), "G_ema": ("ema", "G")}
NOISE_TOLERANCE = 0.02  # |new - old| / |old - init| allowed on another machine (float noise, see the docstring)


@pytest.fixture(autouse=True)
def one_thread():
    """make_legacy.py ran on one thread: so do these runs (thread count changes float reduction order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_same_run(state: dict, family: str, tmp_path: Path) -> None:
    """The final weights of `state` are the old run's: bitwise on its machine, to float noise elsewhere."""
    if SAME_MACHINE:
        assert final_digests(state) == DIGESTS[family]
        return
    old = load_file(str(LEGACY / f"{family}-final.safetensors"))
    initial = initial_weights(family, tmp_path)
    for key, (section, name) in NET_KEYS.items():
        if f"{key}/" not in "".join(old):
            continue
        new = state[section][name]
        floats = [p for p, t in new.items() if t.is_floating_point()]
        diff = sum((new[p].double() - old[f"{key}/{p}"].double()).square().sum() for p in floats).sqrt()
        update = sum((old[f"{key}/{p}"].double() - initial[name][p].double()).square().sum() for p in floats).sqrt()
        assert diff <= NOISE_TOLERANCE * update, f"{family} {key}: {float(diff):.3g} from the old run " \
                                                 f"(its update was {float(update):.3g})"


def initial_weights(family: str, tmp_path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The run's weights before its first step (seeded, so the same as the old run's)."""
    from ganforge.train.trainer import Trainer

    trainer = Trainer(config_from_dict(run_config(family)), tmp_path / "initial")
    return {name: {k: v.detach().clone() for k, v in net.state_dict().items()}
            for name, net in trainer.networks.items()}


def final_digests(state: dict) -> dict[str, str]:
    out = {}
    for key, (section, name) in NET_KEYS.items():
        if name in state[section]:
            out[key] = digest(state[section][name])
    return out


@pytest.mark.parametrize("family", list(RUNS))
def test_same_weights_as_before_the_refactor(tmp_path, family):
    train(config_from_dict(run_config(family)), tmp_path / family)
    assert_same_run(load_checkpoint(tmp_path / family), family, tmp_path)


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
    # the weights the old code reached without stopping (exactly, on the machine that made the files).
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copyfile(old, run_dir / "checkpoints" / "last.pt")
    (run_dir / "config.yaml").write_text(raw["config"])
    steps = RUNS[family]["train"]["steps"]
    assert main(["train", "--resume", str(run_dir), "--steps", str(steps)]) == 0
    resumed = load_checkpoint(run_dir)
    assert resumed["step"] == steps and resumed["version"] == 2
    assert_same_run(resumed, family, tmp_path)
