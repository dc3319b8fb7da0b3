"""Never lose work: kill -9 at random moments and inside checkpoint writes, a full disk, an unwritable output
directory, and a folder of broken images, all through the real `ganforge train` command.

What every kill must leave behind: every checkpoint file loads, `last` is at most one checkpoint interval
behind the step the run had reached, and `--resume` carries on to final weights, optimizer and RNG states
bitwise equal to a run that was never interrupted (CPU; the run here rolls back once on a "divergence", so
resume is also exact across a rollback).
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO, assert_checkpoints_equal, tiny_config
from ganforge import fileio
from ganforge.cli import main
from ganforge.config import config_from_dict, load_preset, merge
from ganforge.errors import CheckpointError
from ganforge.train import checkpoint as ckpt
from ganforge.train import trainer as trainer_module
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import train
from test_folder import png_header_only

INTERVAL = 20  # train.checkpoint_every
KEEP = 2  # train.keep_checkpoints
STEPS = 200
# A tiny MLP on the ring, one tick per step (so the log pins the step a kill landed on), and a divergence
# threshold low enough that the health monitor rolls the run back to its last checkpoint once.
CHAIN = tiny_config(
    train={"steps": STEPS, "log_every": 1, "checkpoint_every": INTERVAL, "keep_checkpoints": KEEP,
           "sample_every": 1000},
    health={"on_divergence": "rollback", "divergence_loss_factor": 1.05, "loss_floor": 0.01, "max_rollbacks": 3},
)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
TIMEOUT = 240.0  # seconds for one process to reach a kill point (a loaded 2-core machine is slow to import torch)

# Runs the CLI with os.replace wrapped: on the Nth replace onto a file named NAME it kills the process with
# SIGKILL, "before" the rename, "after" it, or "torn" (the temporary file cut to half its size first: the
# state a power cut leaves when the data was not all written). GANFORGE_TEST_KILL=MODE:NAME:N.
INJECT = r"""
import os, signal, sys
mode, name, nth = os.environ["GANFORGE_TEST_KILL"].split(":")
nth, seen, real_replace = int(nth), [0], os.replace

def replace(src, dst, *args, **kwargs):
    if os.path.basename(os.fspath(dst)) == name:
        seen[0] += 1
        if seen[0] == nth:
            if mode == "torn":
                os.truncate(src, os.path.getsize(src) // 2)
            if mode in ("torn", "before"):
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
from ganforge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def full_config() -> dict:
    """CHAIN as the CLI resolves it over the toy-ring preset (the file handed to --config is complete)."""
    return config_from_dict(merge(load_preset("toy-ring"), CHAIN)).to_dict()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    """The uninterrupted run, in this process: (its run dir, its final checkpoint)."""
    run = tmp_path_factory.mktemp("reference") / "run"
    result = train(config_from_dict(full_config()), run)
    assert result.step == STEPS and result.stopped_by is None
    events = [r["event"] for r in read_metrics(run / "metrics.jsonl") if "event" in r]
    assert "rollback" in events, f"no rollback happened ({events}); lower health.divergence_loss_factor"
    return run, load_checkpoint(run)


_RUNNING: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    """A test that fails half-way must not leave its training process running."""
    yield
    while _RUNNING:
        popen = _RUNNING.pop()
        if popen.poll() is None:
            popen.kill()
            popen.wait()


class Proc:
    """One `ganforge train` process writing into run_dir; only its own metrics lines are looked at."""

    def __init__(self, run_dir: Path, args: list[str], *, kill_at: str | None = None) -> None:
        self.run_dir = run_dir
        metrics = run_dir / "metrics.jsonl"
        self.skip = len(read_metrics(metrics)) if metrics.exists() else 0
        self.start_step = load_checkpoint(run_dir)["step"] if (run_dir / "checkpoints" / "last.pt").exists() else 0
        code = ["-c", INJECT] if kill_at else ["-m", "ganforge"]
        env = {**ENV, "GANFORGE_TEST_KILL": kill_at} if kill_at else ENV
        self.log = run_dir.parent / f"{run_dir.name}-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as log:
            self.popen = subprocess.Popen([sys.executable, *code, "train", *args], stdout=log, stderr=log, env=env,
                                          cwd=run_dir.parent)
        _RUNNING.append(self.popen)

    def records(self) -> list[dict]:
        path = self.run_dir / "metrics.jsonl"
        return read_metrics(path)[self.skip :] if path.exists() else []

    def wait_for(self, what: str, done) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done(self.records()):
            if self.popen.poll() is not None:
                pytest.fail(f"the run ended (status {self.popen.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.popen.kill()
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.002)

    def kill(self) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        assert self.popen.wait(TIMEOUT) == -signal.SIGKILL, f"not killed: it had already ended\n{self.output()}"

    def wait_killed(self) -> None:
        """For injected kills: the process must die by SIGKILL at its injection point."""
        status = self.popen.wait(TIMEOUT)
        assert status == -signal.SIGKILL, f"the injected kill did not happen (status {status})\n{self.output()}"

    def finish(self) -> None:
        assert self.popen.wait(TIMEOUT) == 0, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def step_of(records: list[dict]) -> int | None:
    """The step the run had reached: the last line's (a rollback line carries the step restored to)."""
    return records[-1]["step"] if records else None


def check_after_kill(proc: Proc) -> int:
    """Every checkpoint loads; `last` lost at most one interval; return last's step."""
    folder = proc.run_dir / "checkpoints"
    files = sorted(folder.glob("*.pt"))
    assert folder / "last.pt" in files
    for path in files:
        load_checkpoint(path)  # raises CheckpointError on a torn or foreign file
    last = load_checkpoint(folder / "last.pt")["step"]
    reached = step_of(proc.records())
    if reached is not None:  # it logged at least one step before the kill
        assert last <= reached, (last, reached)
        assert reached - last <= INTERVAL, f"lost {reached - last} steps (> {INTERVAL}): killed at {reached}"
    print(f"killed at step {reached}; last checkpoint {last}")
    assert last >= proc.start_step  # `last` never moves backwards
    assert len(ckpt.step_checkpoints(folder)) <= KEEP + 1  # bounded history (one more if killed before pruning)
    return last


def assert_same_final_state(run_dir: Path, reference: dict) -> None:
    got = load_checkpoint(run_dir)
    assert got["step"] == reference["step"] == STEPS
    # Weights, EMAs, optimizer states and param groups (learning rates after a rollback), all by name.
    assert_checkpoints_equal(reference, got, sections=("networks", "ema", "optimizers", "family_state"))
    for key in ("schedulers", "trainer", "health", "batches_drawn"):
        assert got[key] == reference[key], key
    assert torch.equal(got["rng"]["torch"], reference["rng"]["torch"])
    folder = run_dir / "checkpoints"
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temporary files left
    assert len(ckpt.step_checkpoints(folder)) == KEEP


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(full_config()))
    return path


def fresh_args(tmp_path: Path, run: Path) -> list[str]:
    return ["--preset", "toy-ring", "--config", str(write_config(tmp_path)), "--out", str(run)]


# -------------------------------------------------------------------------------------------- kill -9


def test_kill_at_random_moments_then_resume(tmp_path, reference):
    """SIGKILL three times at random moments (early, right after the rollback, late), resuming each time."""
    _, ref_state = reference
    seed = time.time_ns()
    print(f"kill schedule seed: {seed}")  # shown if the test fails
    rng = random.Random(seed)
    run = tmp_path / "run"
    lasts = []

    def within_a_step() -> None:  # a random moment inside the step (or checkpoint write) that is running
        time.sleep(rng.uniform(0, 0.004))

    proc = Proc(run, fresh_args(tmp_path, run))
    target = rng.randint(20, 70)
    proc.wait_for(f"step {target}", lambda r: (step_of(r) or 0) >= target)
    within_a_step()
    proc.kill()
    lasts.append(check_after_kill(proc))

    proc = Proc(run, ["--resume", str(run)])
    proc.wait_for("the rollback", lambda r: any(x.get("event") == "rollback" for x in r))
    within_a_step()
    proc.kill()
    lasts.append(check_after_kill(proc))

    proc = Proc(run, ["--resume", str(run)])
    target = rng.randint(125, 185)
    proc.wait_for(f"step {target}", lambda r: (step_of(r) or 0) >= target)
    within_a_step()
    proc.kill()
    lasts.append(check_after_kill(proc))

    Proc(run, ["--resume", str(run)]).finish()
    assert lasts == sorted(lasts) and lasts[-1] >= 100, lasts
    assert_same_final_state(run, ref_state)


def test_kill_inside_checkpoint_writes_then_resume(tmp_path, reference):
    """SIGKILL at the exact moments a non-atomic writer would corrupt something."""
    _, ref_state = reference
    run = tmp_path / "run"
    folder = run / "checkpoints"

    # 1. Mid-write of step 60: the temporary file is torn, step-60 and `last` are untouched.
    proc = Proc(run, fresh_args(tmp_path, run), kill_at="torn:step-00000060.pt:1")
    proc.wait_killed()
    assert check_after_kill(proc) == 40 and not (folder / "step-00000060.pt").exists()
    torn = list(folder.glob(".step-00000060.pt.*.tmp"))
    assert len(torn) == 1
    with pytest.raises(CheckpointError):
        load_checkpoint(torn[0])

    # 2. A resumed run rewrites config.yaml: a kill mid-write leaves the old one whole.
    config_text = (run / "config.yaml").read_text()
    proc = Proc(run, ["--resume", str(run)], kill_at="torn:config.yaml:1")
    proc.wait_killed()
    assert (run / "config.yaml").read_text() == config_text

    # 3. Just after step-100 is renamed into place, before `last` points at it: resume from 80.
    proc = Proc(run, ["--resume", str(run)], kill_at="after:step-00000100.pt:1")
    proc.wait_killed()
    assert check_after_kill(proc) == 80
    assert load_checkpoint(folder / "step-00000100.pt")["step"] == 100

    # 4. After `last` moved on (to 100, then 120) but before old checkpoints were pruned.
    proc = Proc(run, ["--resume", str(run)], kill_at="after:last.pt:2")
    proc.wait_killed()
    assert check_after_kill(proc) == 120

    # 5. To the end; stale temporary files are gone and the result is the uninterrupted run's.
    Proc(run, ["--resume", str(run)]).finish()
    assert_same_final_state(run, ref_state)
    assert not torn[0].exists()


def test_resume_without_any_checkpoint_is_a_clear_error(tmp_path, capsys):
    """Killed before the first checkpoint: --resume says so in one line."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: checkpoint") and "last.pt not found" in err and "\n" not in err


# ------------------------------------------------------------------------------------- disk problems

SMALL = tiny_config(train={"checkpoint_every": 20, "sample_every": 20, "keep_checkpoints": 3})  # 40 steps


def small_args(tmp_path: Path, run: Path) -> list[str]:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(config_from_dict(merge(load_preset("toy-ring"), SMALL)).to_dict()))
    return ["train", "--preset", "toy-ring", "--config", str(path), "--out", str(run), "--no-progress"]


class _FullDisk:
    """A file whose write() puts down half the bytes, then fails the way a full disk does."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        self._f.write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fill_disk_at(monkeypatch, target: str) -> None:
    """Make checkpoint.py's writes of the file named `target` fail with ENOSPC (only that module's `os` and
    `tempfile` are replaced, so nothing else in the process is affected)."""
    temp_of_target: set[int] = set()

    def mkstemp(**kwargs):
        fd, name = tempfile.mkstemp(**kwargs)
        if Path(name).name.startswith(f".{target}."):
            temp_of_target.add(fd)
        return fd, name

    def fdopen(fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        return _FullDisk(f) if fd in temp_of_target else f

    fake_os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake_os.fdopen = fdopen
    fake_tempfile = types.SimpleNamespace(mkstemp=mkstemp)
    monkeypatch.setattr(fileio, "os", fake_os)  # where checkpoints are written (atomically)
    monkeypatch.setattr(fileio, "tempfile", fake_tempfile)


def test_disk_full_during_checkpoint(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    fill_disk_at(monkeypatch, "step-00000040.pt")
    assert main(small_args(tmp_path, run)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"ganforge: error: cannot write checkpoint {run / 'checkpoints' / 'step-00000040.pt'}: "
                   "No space left on device")
    folder = run / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt", "step-00000000.pt", "step-00000020.pt"]
    assert load_checkpoint(run)["step"] == 20  # the previous checkpoint, whole

    monkeypatch.undo()  # space freed: the run continues to the same result as one that never failed
    assert main(["train", "--resume", str(run)]) == 0
    straight = train(config_from_dict(merge(load_preset("toy-ring"), SMALL)), tmp_path / "straight")
    a, b = load_checkpoint(run), load_checkpoint(straight.run_dir)
    assert a["step"] == b["step"] == 40
    assert_checkpoints_equal(a, b, sections=("networks",))
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_disk_full_writing_samples_is_one_line(tmp_path, monkeypatch, capsys):
    """An OSError outside the checkpoint code (sample grid, log) is still one line, and work is kept."""
    real = trainer_module.save_samples

    def save_samples(samples, path, **kwargs):
        if path.name == "step-00000040.png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(samples, path, **kwargs)

    monkeypatch.setattr(trainer_module, "save_samples", save_samples)
    run = tmp_path / "run"
    assert main(small_args(tmp_path, run)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ganforge: error: No space left on device: {run / 'samples' / 'step-00000040.png'}"
    assert load_checkpoint(run)["step"] == 20
    with pytest.raises(OSError):  # --debug: the real exception, traceback and all
        main(["--debug", *small_args(tmp_path, tmp_path / "run2")])


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(small_args(tmp_path, blocker / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ganforge: error: cannot write to output directory {blocker / 'run'}") and "\n" not in err


# ---------------------------------------------------------------------------------- bad images, end to end


def test_train_on_a_folder_with_broken_images(tmp_path, capsys):
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    modes = [("L", 1), ("RGB", 3), ("RGBA", 4), ("P", 1), ("1", 1), ("I;16", 1), ("CMYK", 4), ("LA", 2)]
    for i in range(16):  # good images in many modes and sizes (all resized to 8x8)
        mode, channels = modes[i % len(modes)]
        size = 8 + i % 3 * 4
        pixels = rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
        if mode == "I;16":
            img = Image.fromarray(rng.integers(0, 65536, (size, size), dtype=np.uint16))
        elif mode in ("P", "1"):
            img = Image.fromarray(pixels[..., 0], "L").convert(mode)
        else:
            img = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)
        img.save(root / f"good{i:02d}.{'jpg' if mode == 'CMYK' else 'png'}")
    full = (root / "good01.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "corrupt.png").write_bytes(rng.bytes(500))
    (root / "zero.jpg").write_bytes(b"")
    (root / "text.png").write_text("not an image")
    png_header_only(root / "bomb.png", 100_000, 100_000)  # a decompression bomb's header

    args = ["train", "--dataset", "folder", "--data-root", str(root), "--out", str(tmp_path / "run"),
            "--steps", "3", "--no-progress", "--set", "data.image_size=[8]", "--set", "model.g_channels=4",
            "--set", "model.d_channels=4", "--set", "train.batch_size=4", "--set", "train.num_samples=4",
            "--preset", "default"]  # a named preset: no "picked a model for the data" note on stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    skipped = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(skipped) == 1 and skipped[0].startswith("skipped 5 of 21 image files"), skipped
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 3 and state["spec"]["shape"] == [3, 8, 8]
    assert "run directory:" in capsys.readouterr().out

    for good in root.glob("good*"):  # nothing readable left: a clear one-line error, not a crash
        good.unlink()
    assert main([*args[:6], str(tmp_path / "run2"), *args[7:]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: none of the 5 image files under") and "\n" not in err
