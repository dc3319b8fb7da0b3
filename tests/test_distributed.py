"""DDP through torchrun: 2 CPU processes (gloo) give the single-process result for the same global batch.

Each rank draws the global batch indices and the global noise and keeps its slice, and DDP averages the
gradients, so the only differences are float reduction order. Checkpoints hold the unwrapped modules, so a run
written by one world size resumes on another.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch

from conftest import assert_checkpoints_equal, tiny_config
from ganforge.cli import main
from ganforge.config import config_from_dict, load_preset, merge
from ganforge.errors import ConfigError
from ganforge.train import distributed
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import train

pytestmark = pytest.mark.slow

DIGITS_BN = {  # batch norm in G and D, made global across ranks by train.sync_batchnorm
    "data": {"name": "digits", "image_size": [16], "limit": 512},
    "model": {"family": "dcgan", "latent_dim": 8, "g_channels": 8, "d_channels": 8},
    "train": {"batch_size": 32, "ema_kimg": 0.5, "steps": 20, "sync_batchnorm": True},
}


def torchrun(args: list[str], *, nproc: int = 2) -> None:
    """`torchrun --standalone --nproc-per-node N -m ganforge ARGS`, as a user would run it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "ganforge", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def write_config(path: Path, raw: dict) -> Path:
    """The fully resolved config as a file: merged over any preset, it leaves nothing to the preset."""
    path.write_text(config_from_dict(raw).to_yaml())
    return path


def assert_close(a: dict, b: dict, *, atol: float) -> None:
    assert a["step"] == b["step"] and a["batches_drawn"] == b["batches_drawn"]
    assert_checkpoints_equal(a, b, sections=("networks", "ema"), atol=atol)
    assert_checkpoints_equal(a, b, sections=("optimizers",), atol=atol, rtol=1e-3)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])  # the same RNG stream as one process


def test_two_processes_equal_one_and_resume_across_world_sizes(tmp_path):
    # The preset's lazy R1 and EMA of G included: both must survive DDP too. A constant LR: the split run below
    # first trains 20 of the 40 steps, and a decaying schedule would be laid over 20 steps, not 40.
    raw = merge(load_preset("toy-ring"), tiny_config(train={"lr_schedule": "constant"}))  # global batch 64: 32/rank
    straight = train(config_from_dict(raw), tmp_path / "single")
    cfg_file = write_config(tmp_path / "tiny.yaml", raw)
    torchrun(["train", "--preset", "toy-ring", "--config", str(cfg_file), "--out", str(tmp_path / "ddp")])
    assert_close(load_checkpoint(straight.run_dir), load_checkpoint(tmp_path / "ddp"), atol=1e-5)

    # Rank 0 alone wrote the logs: one record per tick, not one per rank.
    records = [r for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl") if "event" not in r]
    assert [r["step"] for r in records] == [10, 20, 30, 40]

    # Written by one process, continued by two.
    half = dict(raw, train={**raw["train"], "steps": 20})
    train(config_from_dict(half), tmp_path / "split")
    torchrun(["train", "--resume", str(tmp_path / "split"), "--steps", "40"])
    assert_close(load_checkpoint(straight.run_dir), load_checkpoint(tmp_path / "split"), atol=1e-5)


def test_sync_batchnorm_on_gloo_and_two_to_one_resume(tmp_path):
    raw = tiny_config(**DIGITS_BN)
    straight = train(config_from_dict(raw), tmp_path / "single")
    half = dict(raw, train={**raw["train"], "steps": 10})
    cfg_file = write_config(tmp_path / "bn.yaml", half)
    torchrun(["train", "--config", str(cfg_file), "--out", str(tmp_path / "split")])
    # Written by two processes, continued by one (the checkpoint holds plain BatchNorm weights and buffers).
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "20"]) == 0
    assert_close(load_checkpoint(straight.run_dir), load_checkpoint(tmp_path / "split"), atol=1e-4)


def test_session_frees_what_holds_the_group_before_destroying_it(monkeypatch):
    """What sits in a reference cycle and holds the group (a finished Trainer's DDP reducers) is collected before
    the group is destroyed, not by the collector at interpreter exit, where gloo's threads can abort the process."""

    class Holder:  # a Trainer's stand-in: in a cycle, so only a collection frees it
        pass

    alive_at_destroy: list[bool] = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: None)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: alive_at_destroy.append(ref() is not None))
    monkeypatch.setattr(distributed, "info", lambda: distributed.DistInfo())
    was_enabled = gc.isenabled()
    gc.disable()  # only the session's own collection may free the cycle
    try:
        with distributed.session("cpu"):
            holder = Holder()
            holder.cycle = holder
            ref = weakref.ref(holder)
            del holder
        assert alive_at_destroy == [False]
    finally:
        if was_enabled:
            gc.enable()


def test_global_batchnorm_is_batchnorm_in_one_process():
    bn = torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.01)
    converted = distributed.convert_sync_batchnorm(torch.nn.Sequential(bn), torch.device("cpu"))
    assert isinstance(converted[0], distributed.GlobalBatchNorm)
    assert converted[0].state_dict().keys() == bn.state_dict().keys()  # checkpoints load into plain BatchNorm
    x = torch.randn(8, 3, 4, 4)
    torch.testing.assert_close(converted(x), bn(x))


def test_global_batch_must_divide():
    info = distributed.DistInfo(rank=1, world_size=3)
    with pytest.raises(ConfigError, match="divisible"):
        distributed.local_batch_size(64, info)
    x = torch.arange(12)
    assert distributed.shard(x, info).tolist() == [4, 5, 6, 7]
    assert distributed.shard(None, info) is None
