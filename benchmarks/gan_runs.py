"""Shared by the image-quality benchmarks: train a ganforge config while timing its CPU, score samples.

`train_timed` runs ganforge's own Trainer on a config built as `ganforge train --preset P --set K=V ...` builds
it, and records the training CPU time (this process, all threads; evaluation time excluded) at every periodic
evaluation, so a run yields a quality-vs-CPU-minutes curve. `diversity` scores how different the samples of one
model are (the collapse signature of seed 001). Nothing here is part of the ganforge package.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganforge import config as C
from ganforge.train.health import diversity_ratio
from ganforge.train.trainer import Trainer, prepare_run_dir
from hostinfo import cpu_model

REPO = Path(__file__).resolve().parent.parent


def machine() -> str:
    """What ran it: CPU model and core count, and the 1-minute load average at the time (the machine is shared)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu_model()}, {os.cpu_count()} cores, load {load:.1f}"


def build_config(preset: str, overrides: list[str], *, data_root: str | None) -> C.Config:
    raw = C.load_preset(preset)
    for assignment in overrides:
        C.apply_override(raw, assignment)
    if data_root is not None:
        C.apply_override(raw, f"data.root={data_root}")
        C.apply_override(raw, "data.download=false")
    return C.config_from_dict(raw)


@dataclass
class TimedRun:
    run_dir: Path
    steps: int
    train_cpu_s: float  # CPU seconds of training (process time, all threads), evaluations excluded
    wall_s: float
    curve: list[dict] = field(default_factory=list)  # one row per evaluation: step, kimg, train_cpu_s, metrics
    last_tick: dict = field(default_factory=dict)  # the last metrics.jsonl tick (losses, D outputs, diversity)


class _TimedTrainer(Trainer):
    """The trainer, noting the training CPU time at each periodic evaluation (evaluation CPU excluded)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.curve: list[dict] = []
        self.eval_cpu = 0.0
        self.cpu0 = time.process_time()

    def _evaluate(self):
        start = time.process_time()
        train_cpu = start - self.cpu0 - self.eval_cpu  # CPU spent so far on everything but evaluations
        outcome = super()._evaluate()
        self.eval_cpu += time.process_time() - start
        self.curve.append({"step": self.step, "kimg": self.batches.position * self.cfg.train.batch_size / 1000,
                           "train_cpu_s": round(train_cpu, 2)})
        return outcome


def train_timed(cfg: C.Config, run_dir: Path) -> TimedRun:
    """Train `cfg` into a fresh run_dir (replaced if present); the curve comes from its eval events."""
    prepare_run_dir(run_dir, overwrite=True)
    wall = time.perf_counter()
    trainer = _TimedTrainer(cfg, run_dir)
    cpu0 = trainer.cpu0
    trainer.fit()
    train_cpu = time.process_time() - cpu0 - trainer.eval_cpu
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in events if e.get("event") == "eval"]
    ticks = [e for e in events if "event" not in e]
    curve = []
    for timed, ev in zip(trainer.curve, evals):
        row = {k: v for k, v in ev.items() if k not in ("event", "seconds")}
        curve.append({**row, "kimg": timed["kimg"], "train_cpu_s": timed["train_cpu_s"]})
    return TimedRun(run_dir, trainer.step, round(train_cpu, 1), round(time.perf_counter() - wall, 1), curve,
                    ticks[-1] if ticks else {})


def diversity(images: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """images, real: float (N, C, H, W) in [-1, 1]. Per-pixel std over the samples (the Keras check: ~0.03 for
    one texture repeated, ~0.38 for real MNIST digits) and the mean pairwise distance relative to real data's."""
    return {"pixel_std": round(images.float().std(0).mean().item(), 4),
            "diversity": round(diversity_ratio(images, real), 4)}


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 images, as `ganforge generate` writes them."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
