"""End-to-end: tiny runs through the real trainer, checkpoints, bitwise resume, generate, CLI errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import assert_checkpoints_equal, tiny_config
from ganforge.cli import main
from ganforge.config import config_from_dict, merge
from ganforge.errors import CheckpointError
from ganforge.saved import load_generator
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import train

DIGITS = {
    "data": {"name": "digits", "image_size": [16], "limit": 512},
    "model": {"family": "dcgan", "latent_dim": 8, "g_channels": 8, "d_channels": 8},
    "train": {"batch_size": 32, "ema_kimg": 0.5},
}


def run(tmp: Path, name: str, raw: dict, **kw):
    return train(config_from_dict(raw), tmp / name, **kw)


def test_run_directory_has_everything(tmp_path):
    result = run(tmp_path, "r", tiny_config())
    d = result.run_dir
    assert result.step == 40
    assert (d / "config.yaml").exists()
    records = [r for r in read_metrics(d / "metrics.jsonl") if "event" not in r]
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "images_per_s", "diversity"):
        assert all(np.isfinite(r[key]) for r in records), key
    assert sorted(p.name for p in (d / "samples").iterdir()) == ["step-00000020.png", "step-00000040.png"]
    ckpts = sorted(p.name for p in (d / "checkpoints").iterdir())
    assert "last.pt" in ckpts and "step-00000040.pt" in ckpts
    state = load_checkpoint(d)
    assert state["step"] == 40


def _states_equal(a: dict, b: dict) -> None:
    assert_checkpoints_equal(a, b)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


@pytest.mark.parametrize("raw", [tiny_config(), tiny_config(**DIGITS)], ids=["mlp-ring", "dcgan-digits"])
def test_resume_is_bitwise_identical(tmp_path, raw):
    straight = run(tmp_path, "straight", raw)
    half = dict(raw, train={**raw["train"], "steps": 20})
    run(tmp_path, "split", half)
    # Continue through the command line, as a user would, up to the same total step count.
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "40"]) == 0
    a = load_checkpoint(straight.run_dir)
    b = load_checkpoint(tmp_path / "split")
    assert a["step"] == b["step"] == 40
    _states_equal(a, b)


def test_generate_from_checkpoint_alone(tmp_path):
    result = run(tmp_path, "r", tiny_config(**DIGITS))
    ckpt = result.run_dir / "checkpoints" / "last.pt"
    lonely = tmp_path / "elsewhere.pt"
    lonely.write_bytes(ckpt.read_bytes())  # no run directory, no dataset config needed beside it
    G = load_generator(lonely)
    assert not G.training and G.spec.shape == (1, 16, 16)

    assert main(["generate", str(lonely), "--num", "10", "--out", str(tmp_path / "png")]) == 0
    assert len(list((tmp_path / "png").glob("*.png"))) == 10
    assert main(["generate", str(lonely), "--num", "10", "--out", str(tmp_path / "a.npz"), "--format", "npz",
                 "--seed", "3"]) == 0
    assert main(["generate", str(lonely), "--num", "10", "--out", str(tmp_path / "b.npz"), "--format", "npz",
                 "--seed", "3"]) == 0
    a, b = np.load(tmp_path / "a.npz")["images"], np.load(tmp_path / "b.npz")["images"]
    assert a.shape == (10, 1, 16, 16) and a.dtype == np.uint8
    assert np.array_equal(a, b)  # same seed, same samples
    assert main(["generate", str(result.run_dir), "--num", "16", "--grid", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 0


def test_generate_points_npz(tmp_path):
    result = run(tmp_path, "r", tiny_config())
    assert main(["generate", str(result.run_dir), "--num", "2500", "--format", "npz", "--out",
                 str(tmp_path / "p.npz")]) == 0
    points = np.load(tmp_path / "p.npz")["points"]
    assert points.shape == (2500, 2) and np.isfinite(points).all()


def test_existing_output_is_never_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    args = ["train", "--out", str(out), "--steps", "2", "--no-progress", "--preset", "toy-ring"]
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"
    assert main([*args, "--overwrite"]) == 0


def test_generate_refuses_to_overwrite(tmp_path, capsys):
    result = run(tmp_path, "r", tiny_config())
    target = tmp_path / "p.npz"
    target.write_text("mine")
    assert main(["generate", str(result.run_dir), "--format", "npz", "--out", str(target)]) == 2
    assert target.read_text() == "mine"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--dataset", "nope", "--dry-run"], "valid: "),
        (["train", "--preset", "nope", "--dry-run"], "valid: "),
        (["train", "--set", "train.batch_size=-1", "--dry-run"], "train.batch_size"),
        (["train", "--set", "train.typo=1", "--dry-run"], "train.typo"),
        (["generate", "/nonexistent/run", "--out", "x"], "not found"),
    ],
)
def test_cli_errors_are_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error:") and needle in err
    assert "\n" not in err and "Traceback" not in err


def test_dry_run_prints_resolved_config(capsys):
    assert main(["train", "--dry-run", "--set", "train.lr_g=5e-4"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["lr_g"] == 5e-4 and cfg["data"]["name"] == "digits"


def test_foreign_and_truncated_checkpoints_are_clear_errors(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        load_checkpoint(foreign)
    result = run(tmp_path, "r", tiny_config())
    data = (result.run_dir / "checkpoints" / "last.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(truncated)


class _Payload:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_pickle_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ganforge-checkpoint", "G": _Payload(str(marker))}, evil)
    # Sanity: an unsafe loader would have executed the payload.
    with open(evil, "rb"):
        pass
    with pytest.raises(CheckpointError, match="not a safe"):
        load_checkpoint(evil)
    assert not marker.exists()
    assert main(["generate", str(evil), "--out", str(tmp_path / "o")]) == 2
    assert not marker.exists()


def test_metrics_jsonl_survives_a_torn_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + '{"step": 2, "loss')
    assert read_metrics(path) == [{"step": 1}]


def test_pickle_module_would_run_payload(tmp_path):
    """The payload used above is real: plain pickle runs it (so the refusal test can fail)."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(str(marker))))
    assert marker.exists()


@pytest.mark.slow
def test_compiled_networks_with_double_backward_penalties(tmp_path):
    # R1 and WGAN-GP differentiate D's input gradient again; torch.compile's AOTAutograd cannot, so penalties
    # run on the eager D (same parameters). Compiled and eager runs then train the same networks.
    regs = {"r1": {"gamma": 1.0, "interval": 2}, "gp": {"weight": 1.0}}
    raw = tiny_config(loss={"regularizers": regs}, train={"steps": 6, "log_every": 3, "checkpoint_every": 6})
    eager = train(config_from_dict(raw), tmp_path / "eager")
    compiled = train(config_from_dict(merge(raw, {"train": {"compile": True}})), tmp_path / "compiled")
    a, b = load_checkpoint(eager.run_dir), load_checkpoint(compiled.run_dir)
    assert b["step"] == 6
    assert_checkpoints_equal(a, b, sections=("networks",), atol=1e-4, rtol=1e-3)


def test_image_size_and_channels_flags(capsys):
    assert main(["train", "--image-size", "16x8", "--channels", "3", "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["data"]["image_size"] == [16, 8] and resolved["data"]["channels"] == 3
    assert main(["train", "--image-size", "24", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["image_size"] == [24]
    assert main(["train", "--image-size", "64by48", "--dry-run"]) == 2
    assert "--image-size must be S or HxW" in capsys.readouterr().err
