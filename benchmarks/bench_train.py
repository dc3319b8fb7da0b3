"""Training speed: ganforge's full training path against a minimal PyTorch loop and the seed's Keras code.

    python benchmarks/bench_train.py                 # everything below (about 20-30 min on 2 busy CPU cores)
    python benchmarks/bench_train.py --quick         # fewer steps and repeats (a smoke run, noisier)
    python benchmarks/bench_train.py --only seed001 --repeats 5
    python benchmarks/bench_train.py --only ddp      # the 2-process (torchrun, DDP) speed-up

Models (each timed by the images or steps per second of training, one D+G step = one D update and one G update):
  seed001  seed 001's DCGAN on real MNIST (28x28, batch 256): ganforge (the `seed001` preset through
           `Trainer.fit`: in-memory data, metrics log, sample grids and checkpoints at the preset's defaults),
           a minimal hand-written PyTorch loop on in-memory tensors, and the seed's Keras/TensorFlow code
           (benchmarks/keras_seed001.py, run in its own venv benchmarks/.venv-tf with tensorflow-cpu, which this
           script creates on first use; never a ganforge dependency).
  toy      the 2D ring MLP GAN (`toy-ring` preset, batch 256), where Python overhead dominates: ganforge
           against a naive hand-written loop (torch defaults, `.item()` of the losses each step).
  dcgan64  classic DCGAN at 64x64x3 (`dcgan-64` preset on MNIST resized to 64x64 RGB, batch 128): ganforge
           against a minimal hand-written loop training the same G and D modules.
  ddp      ganforge under `torchrun --nproc-per-node 2` (gloo on CPU, NCCL on GPU) against 1 process, same
           global batch.

Every configuration runs in its own process (so peak RSS / peak CUDA memory is its own, and thread settings
do not leak), after a few untimed warm-up steps of the same loop / trainer; construction (data loading, model
building) is not timed.
Configurations are interleaved round by round and each ratio is the median of per-round ratios, because on a
shared machine the load changes from minute to minute. Record the output in benchmarks/RESULTS.md,
"## Training speed".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostinfo import cpu_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANFORGE_SHARED", REPO.parent / "shared"))
TF_VENV = REPO / "benchmarks" / ".venv-tf"

PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}  # OpenMP threads sleep instead of spinning (read when torch loads)


@dataclass(frozen=True)
class Case:
    model: str  # seed001, toy, dcgan64 (the batch and the data)
    kind: str  # keras, minimal (hand-written loop), ganforge (Trainer.fit)
    what: str  # one line for the table
    overrides: dict[str, Any] = field(default_factory=dict)  # ganforge config overrides (train section)
    env: dict[str, str] = field(default_factory=dict)  # environment of the worker process
    threads: int = 0  # minimal loops: torch.set_num_threads (0: torch's default)
    nproc: int = 1  # processes (torchrun) for ganforge cases


CASES: dict[str, Case] = {
    "seed001/keras": Case("seed001", "keras", "seed's Keras code, tf.function (tensorflow-cpu)"),
    "seed001/minimal": Case("seed001", "minimal", "minimal PyTorch loop, in-memory tensors, torch defaults"),
    "seed001/ganforge": Case("seed001", "ganforge", "ganforge, seed001 preset as is (channels_last)"),
    "seed001/ganforge-nocl": Case("seed001", "ganforge", "ganforge, channels_last=false", {"channels_last": False}),
    "seed001/minimal-passive": Case("seed001", "minimal", "minimal loop, OMP_WAIT_POLICY=PASSIVE", env=PASSIVE),
    "seed001/ganforge-passive-cl": Case("seed001", "ganforge", "ganforge + channels_last, OMP_WAIT_POLICY=PASSIVE",
                                        {"channels_last": True}, PASSIVE),
    "seed001/ganforge-t1-cl": Case("seed001", "ganforge", "ganforge + channels_last + cpu_threads=1",
                                   {"channels_last": True, "cpu_threads": 1}),
    "seed001/ganforge-bf16": Case("seed001", "ganforge", "ganforge + channels_last + cpu_threads=1 + amp=bf16",
                                  {"channels_last": True, "cpu_threads": 1, "amp": "bf16"}),
    "seed001/ganforge-ddp2": Case("seed001", "ganforge", "ganforge + channels_last, torchrun 2 procs x 1 thread",
                                  {"channels_last": True, "cpu_threads": 1}, nproc=2),
    "seed001/ganforge-compile": Case("seed001", "ganforge", "ganforge + compile + channels_last, PASSIVE",
                                     {"channels_last": True, "compile": True}, PASSIVE),
    "toy/naive": Case("toy", "minimal", "naive PyTorch loop, torch defaults, .item() per step"),
    "toy/naive-t1": Case("toy", "minimal", "the same loop with torch.set_num_threads(1)", threads=1),
    "toy/ganforge": Case("toy", "ganforge", "ganforge, toy-ring preset as is"),
    "toy/ganforge-t1": Case("toy", "ganforge", "ganforge + cpu_threads=1", {"cpu_threads": 1}),
    "toy/ganforge-t1-compile": Case("toy", "ganforge", "ganforge + cpu_threads=1 + compile",
                                    {"cpu_threads": 1, "compile": True}),
    "dcgan64/minimal": Case("dcgan64", "minimal", "minimal PyTorch loop on ganforge's dcgan-64 nets, torch defaults"),
    "dcgan64/ganforge": Case("dcgan64", "ganforge", "ganforge, dcgan-64 preset as is"),
    "dcgan64/minimal-passive": Case("dcgan64", "minimal", "minimal loop, OMP_WAIT_POLICY=PASSIVE", env=PASSIVE),
    "dcgan64/ganforge-passive-cl": Case("dcgan64", "ganforge", "ganforge + channels_last, OMP_WAIT_POLICY=PASSIVE",
                                        {"channels_last": True}, PASSIVE),
    "ddp/toy-1": Case("toy", "ganforge", "toy ganforge (cpu_threads=1), 1 process", {"cpu_threads": 1}),
    "ddp/toy-2": Case("toy", "ganforge", "toy ganforge (cpu_threads=1), torchrun 2 processes",
                      {"cpu_threads": 1}, nproc=2),
    "ddp/seed001-1": Case("seed001", "ganforge", "seed001 ganforge, 1 process x 2 threads, PASSIVE",
                          {"channels_last": True}, PASSIVE),
    "ddp/seed001-2": Case("seed001", "ganforge", "seed001 ganforge, torchrun 2 processes x 1 thread",
                          {"channels_last": True, "cpu_threads": 1}, PASSIVE, nproc=2),
}
DEFAULT_SET = {
    "seed001": ["seed001/keras", "seed001/minimal", "seed001/ganforge", "seed001/ganforge-nocl",
                "seed001/minimal-passive", "seed001/ganforge-passive-cl", "seed001/ganforge-t1-cl",
                "seed001/ganforge-bf16", "seed001/ganforge-ddp2"],
    "toy": ["toy/naive", "toy/naive-t1", "toy/ganforge", "toy/ganforge-t1", "toy/ganforge-t1-compile"],
    "dcgan64": ["dcgan64/minimal", "dcgan64/ganforge", "dcgan64/minimal-passive", "dcgan64/ganforge-passive-cl"],
    "ddp": ["ddp/toy-1", "ddp/toy-2", "ddp/seed001-1", "ddp/seed001-2"],
}
RATIOS = [  # (numerator, denominator, goal): printed as the median of per-round ratios
    ("seed001/ganforge", "seed001/keras", 1.2),
    ("seed001/ganforge", "seed001/minimal", 0.95),
    ("seed001/ganforge-nocl", "seed001/minimal", None),
    ("seed001/ganforge-passive-cl", "seed001/keras", 1.2),
    ("seed001/ganforge-passive-cl", "seed001/minimal-passive", 0.95),
    ("seed001/ganforge-t1-cl", "seed001/keras", 1.2),
    ("seed001/ganforge-bf16", "seed001/keras", None),
    ("seed001/ganforge-ddp2", "seed001/keras", None),
    ("seed001/ganforge-compile", "seed001/ganforge-passive-cl", None),
    ("seed001/minimal", "seed001/keras", None),
    ("seed001/minimal-passive", "seed001/keras", None),
    ("toy/ganforge", "toy/naive", None),
    ("toy/ganforge-t1", "toy/naive", 10.0),
    ("toy/ganforge-t1-compile", "toy/naive", 10.0),
    ("toy/ganforge-t1", "toy/naive-t1", None),
    ("toy/ganforge-t1-compile", "toy/naive-t1", None),
    ("dcgan64/ganforge", "dcgan64/minimal", 0.95),
    ("dcgan64/ganforge-passive-cl", "dcgan64/minimal-passive", 0.95),
    ("ddp/toy-2", "ddp/toy-1", None),
    ("ddp/seed001-2", "ddp/seed001-1", None),
]
BATCH = {"seed001": 256, "toy": 256, "dcgan64": 128}


# ------------------------------------------------------------------------------------------- one case


def peak_memory() -> dict[str, float | None]:
    import torch

    cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_cuda_mb": cuda}


def load_mnist(root: Path, *, limit: int | None = None):
    """MNIST train images from the IDX file, as a float tensor (N, 1, 28, 28) in [-1, 1]."""
    import numpy as np
    import torch

    raw = (root / "MNIST" / "raw" / "train-images-idx3-ubyte").read_bytes()
    n, h, w = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    images = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 1, h, w).copy())
    images = images[:limit] if limit else images
    return images.float().div_(127.5).sub_(1.0)


def minimal_loop(G, D, data, *, batch: int, latent: int, steps: int, warmup: int, lr: float, betas,
                 item_per_step: bool = False) -> float:
    """The hand-written reference loop: D step on (real, G(z).detach()), G step on D(G(z)) with the same fakes
    (pytorch/examples' DCGAN), non-saturating BCE, Adam with torch's defaults. Returns seconds for `steps`."""
    import torch
    import torch.nn.functional as F

    device = data.device
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)
    perm = torch.randperm(len(data), device=device)
    per_epoch = len(data) // batch

    def step(i: int) -> None:
        j = i % per_epoch
        real = data[perm[j * batch : (j + 1) * batch]]
        fake = G(torch.randn(batch, latent, device=device))
        loss_d = (F.binary_cross_entropy_with_logits(D(real).view(-1), ones)
                  + F.binary_cross_entropy_with_logits(D(fake.detach()).view(-1), zeros))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(D(fake).view(-1), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if item_per_step:
            loss_d.item(), loss_g.item()

    for i in range(warmup):
        step(i)
    sync(device)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    sync(device)
    return time.perf_counter() - start


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def seed001_models(device):
    """Seed 001's Keras DCGAN written out in plain PyTorch (Keras batch-norm defaults, LeakyReLU 0.3)."""
    from torch import nn

    def bn(c: int) -> nn.Module:
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    G = nn.Sequential(
        nn.Linear(100, 7 * 7 * 256), nn.ReLU(), nn.Unflatten(1, (256, 7, 7)),
        nn.ConvTranspose2d(256, 128, 5, 1, 2), nn.ReLU(), bn(128),
        nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1), nn.ReLU(), bn(64),
        nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1), nn.Tanh(),
    )
    D = nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.3), bn(64),
        nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.3), bn(128),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1),
    )
    return G.to(device), D.to(device)


def dcgan64_models(device):
    """pytorch/examples' DCGAN (nz 100, ngf = ndf = 64, 3 channels, 64x64), DCGAN weight init.

    Not used by the timed rows any more: ganforge's `dcgan` G at 64x64 is one level wider (512-512-256-128
    channels against 512-256-128-64, ~3x the G arithmetic), so the minimal loop now trains ganforge's own
    networks (`ganforge_dcgan64_models`) and compares loops, not architectures. Kept for reference."""
    from torch import nn

    G = nn.Sequential(
        nn.ConvTranspose2d(100, 512, 4, 1, 0, bias=False), nn.BatchNorm2d(512), nn.ReLU(True),
        nn.ConvTranspose2d(512, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
        nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh(),
    )
    D = nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(128, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(256, 512, 4, 2, 1, bias=False), nn.BatchNorm2d(512), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(512, 1, 4, 1, 0, bias=False), nn.Flatten(),
    )
    for m in [*G.modules(), *D.modules()]:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
    return G.to(device), D.to(device)


def ganforge_dcgan64_models(data_root: Path, device):
    """ganforge's own dcgan-64 G and D (its G is wider than pytorch/examples': see dcgan64_models)."""
    from ganforge.config import config_from_dict
    from ganforge.models import FAMILIES, DataSpec

    cfg = config_from_dict(ganforge_raw("dcgan64", data_root, {}))
    spec = DataSpec(shape=(3, 64, 64))
    family = FAMILIES[cfg.model.family]
    nets = family.networks(cfg.model, spec)
    return nets["G"]().to(device), nets["D"]().to(device)


def toy_models(device):
    """The toy-ring preset's MLPs: 2 -> 128 x3 -> 2 (ReLU) and 2 -> 128 x3 -> 1 (LeakyReLU 0.2)."""
    from torch import nn

    G = nn.Sequential(nn.Linear(2, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                      nn.Linear(128, 2))
    D = nn.Sequential(nn.Linear(2, 128), nn.LeakyReLU(0.2), nn.Linear(128, 128), nn.LeakyReLU(0.2),
                      nn.Linear(128, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))
    return G.to(device), D.to(device)


def ring_points(n: int):
    import math

    import torch

    g = torch.Generator().manual_seed(0)
    angles = torch.randint(8, (n,), generator=g).float() * (2 * math.pi / 8)
    centers = torch.stack([angles.cos(), angles.sin()], 1)
    return centers + 0.02 * torch.randn(n, 2, generator=g)


def ganforge_raw(model: str, data_root: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from ganforge.config import load_preset, merge

    if model == "seed001":
        raw = merge(load_preset("seed001"), {"data": {"root": str(data_root), "download": False}})
    elif model == "toy":
        raw = load_preset("toy-ring")
    else:  # dcgan64: the preset wants an image folder; MNIST resized to 64x64 RGB stands in
        raw = merge(load_preset("dcgan-64"), {"data": {"name": "mnist", "root": str(data_root), "download": False,
                                                       "image_size": [64], "channels": 3, "limit": 8192}})
    raw = merge(raw, {"train": {"progress": False, "epochs": None}})
    return merge(raw, overrides)


def ganforge_case(raw: dict[str, Any], *, steps: int, warmup: int) -> tuple[float, dict[str, Any]]:
    """Time `Trainer.fit` over `steps` steps, on a trainer that first ran `warmup` steps through fit().

    The timed part is the second fit() call, as when a run is resumed: the training steps, the metrics log and the
    health monitor's ticks, the sample grid and checkpoint at its end (a fixed cost a long run amortizes), and any
    sample grids / checkpoints the preset's intervals put inside it. Warming up the same trainer keeps
    torch.compile's tracing and oneDNN's kernel setup out of the timed part."""
    from ganforge.config import config_from_dict, merge
    from ganforge.train import distributed
    from ganforge.train.trainer import Trainer

    device = raw.get("train", {}).get("device", "auto")
    with distributed.session(device) as info:
        scratch = Path(distributed.broadcast_object(tempfile.mkdtemp(prefix="bench-train-") if info.is_main else ""))
        cfg = config_from_dict(merge(raw, {"train": {"steps": warmup + steps}}))
        trainer = Trainer(cfg, scratch / "run")
        trainer.total = warmup
        trainer.fit()
        trainer.total = warmup + steps
        distributed.barrier()
        sync(trainer.device)
        start = time.perf_counter()
        trainer.fit()
        sync(trainer.device)
        seconds = time.perf_counter() - start
        extra = {"device": str(trainer.device), "world_size": info.world_size, "threads": _threads()}
        if info.is_main:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
        distributed.barrier()
        return seconds, extra


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def run_case(name: str, *, steps: int, warmup: int, data_root: Path) -> dict[str, Any] | None:
    """Run one configuration in this process; returns its record (None on ranks other than 0)."""
    import torch

    from ganforge.devices import select_device

    case = CASES[name]
    device = select_device("auto")
    record: dict[str, Any] = {"case": name}
    if case.kind == "minimal":
        if case.threads:
            torch.set_num_threads(case.threads)
        torch.manual_seed(0)
        if case.model == "seed001":
            data = load_mnist(data_root).to(device)
            G, D = seed001_models(device)
            hyper = {"batch": 256, "latent": 100, "lr": 1e-4, "betas": (0.9, 0.999)}
        elif case.model == "dcgan64":
            import torch.nn.functional as F

            data = load_mnist(data_root, limit=8192)
            data = F.interpolate(data, size=(64, 64), mode="bilinear").repeat(1, 3, 1, 1).to(device)
            G, D = ganforge_dcgan64_models(data_root, device)  # the same networks as the ganforge row
            hyper = {"batch": 128, "latent": 100, "lr": 2e-4, "betas": (0.5, 0.999)}
        else:
            data = ring_points(100_000).to(device)
            G, D = toy_models(device)
            hyper = {"batch": 256, "latent": 2, "lr": 1e-3, "betas": (0.5, 0.999), "item_per_step": True}
        seconds = minimal_loop(G, D, data, steps=steps, warmup=warmup, **hyper)
        record.update(device=str(device), threads=_threads())
    else:
        raw = ganforge_raw(case.model, data_root, {"train": case.overrides})
        seconds, extra = ganforge_case(raw, steps=steps, warmup=warmup)
        record.update(extra)
        if int(os.environ.get("RANK", "0")) != 0:
            return None
    record.update(steps=steps, seconds=seconds, steps_per_s=steps / seconds,
                  images_per_s=steps * BATCH[case.model] / seconds, env=case.env, **peak_memory())
    return record


def _latent_as_image(G):
    """pytorch/examples' G takes z as (B, 100, 1, 1)."""
    from torch import nn

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = G

        def forward(self, z):
            return self.net(z[:, :, None, None])

    return Wrap()


# ------------------------------------------------------------------------------------------- driver


def ensure_tf_venv() -> Path:
    """benchmarks/.venv-tf with tensorflow-cpu (created once; gitignored)."""
    python = TF_VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True)
        if check.returncode == 0:
            return python
    print(f"creating {TF_VENV} with tensorflow-cpu (once; a few minutes) ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(TF_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "tensorflow-cpu"], check=True)
    return python


def launch(name: str, args: argparse.Namespace) -> dict[str, Any]:
    case = CASES[name]
    steps = {"seed001": args.steps, "toy": args.toy_steps, "dcgan64": args.dcgan_steps}[case.model]
    common = ["--steps", str(steps), "--warmup", str(args.warmup), "--data-root", str(args.data_root)]
    if case.kind == "keras":
        cmd = [str(ensure_tf_venv()), str(REPO / "benchmarks" / "keras_seed001.py"), *common]
    elif case.nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={case.nproc}",
               str(Path(__file__).resolve()), "--worker", name, *common]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, *common]
    env = {**os.environ, **case.env}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{tail}")
    record = json.loads(lines[-1])
    record["case"] = name
    return record


def machine() -> str:
    import torch

    cpu = cpu_model()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"torch threads {torch.get_num_threads()}")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="seed001,toy,dcgan64,ddp",
                        help="comma-separated models (seed001, toy, dcgan64, ddp) or case names")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each ratio is the median over rounds")
    parser.add_argument("--steps", type=int, default=30, help="timed seed001 steps per run")
    parser.add_argument("--toy-steps", type=int, default=1000, help="timed toy steps per run (the preset samples "
                        "and checkpoints every 1000)")
    parser.add_argument("--dcgan-steps", type=int, default=6, help="timed dcgan64 steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before each timed run")
    parser.add_argument("--quick", action="store_true", help="fewer steps, 2 rounds (noisier)")
    parser.add_argument("--extras", action="store_true", help="also seed001 with train.compile=true")
    parser.add_argument("--data-root", type=Path, default=SHARED / "data", help="folder holding MNIST/raw")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one case in this process
    parser.add_argument("--json", type=Path, help="also write all records to this file")
    args = parser.parse_args()

    if args.worker:
        record = run_case(args.worker, steps=args.steps, warmup=args.warmup, data_root=args.data_root)
        if record is not None:
            print(json.dumps(record), flush=True)
        return
    if args.quick:
        args.repeats, args.steps, args.toy_steps, args.dcgan_steps = 2, 10, 100, 3

    names: list[str] = []
    for item in args.only.split(","):
        names += DEFAULT_SET.get(item, [item] if item in CASES else [])
    if args.extras and "seed001/minimal" in names:
        names.append("seed001/ganforge-compile")
    unknown = [n for n in args.only.split(",") if n not in DEFAULT_SET and n not in CASES]
    if unknown:
        raise SystemExit(f"unknown --only entries {unknown}; valid: {', '.join([*DEFAULT_SET, *CASES])}")

    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    print(f"steps per run: seed001 {args.steps}, toy {args.toy_steps}, dcgan64 {args.dcgan_steps}; "
          f"warm-up {args.warmup}; rounds {args.repeats}", flush=True)
    records: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(args.repeats):
        for name in names:
            rec = launch(name, args)
            records[name].append(rec)
            print(f"  round {r + 1} {name:<26} {rec['images_per_s']:9.1f} images/s {rec['steps_per_s']:8.2f} steps/s"
                  f"   (load {load()})", flush=True)

    print(f"\nload average at end: {load()}")
    print(f"\n{'configuration':<26} {'images/s':>10} {'steps/s':>9} {'min-max images/s':>18} {'peak RSS':>10}"
          f" {'peak CUDA':>10}  what")
    for name in names:
        recs = records[name]
        ips = [x["images_per_s"] for x in recs]
        sps = statistics.median(x["steps_per_s"] for x in recs)
        rss = max(x["peak_rss_mb"] for x in recs)
        cuda = max((x["peak_cuda_mb"] or 0) for x in recs) or None
        cuda_s = f"{cuda:8.0f}MB" if cuda else "       n/a"
        print(f"{name:<26} {statistics.median(ips):10.1f} {sps:9.2f} {min(ips):8.1f}-{max(ips):<9.1f}"
              f" {rss:8.0f}MB {cuda_s}  {CASES[name].what}")
    print("\nratios (median of per-round ratios):")
    for num, den, goal in RATIOS:
        if num in records and den in records:
            per_round = [a["images_per_s"] / b["images_per_s"] for a, b in zip(records[num], records[den])]
            met = goal is not None and statistics.median(per_round) >= goal
            verdict = "" if goal is None else f"  goal >= {goal:.2f}: {'met' if met else 'NOT met'}"
            print(f"  {num} / {den}: {statistics.median(per_round):.2f}x "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in per_round)}){verdict}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
