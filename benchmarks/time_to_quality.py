"""Time to quality on MNIST: a ganforge preset against two peers, each for the same CPU time.

Contestants, one after another (or --jobs at once, one process each), each single-threaded for --cpu-seconds of
process CPU time (sampling excluded):

    ganforge   --preset (`mnist-unconditional` by default, as the 2026-12-04 race ran it: RACE_PINS; `mnist-fast`,
               the preset sized for 15 CPU-minutes) through ganforge's Trainer (its EMA generator is what it
               samples). Unconditional, as the peers are: the `mnist` preset, which uses labels, does not race.
    pytorch    a pytorch/examples-style DCGAN loop written here (PeerG / PeerD below: the examples' dcgan
               main.py at 28x28 - ConvT from 1x1, batch norm, BCE, Adam 2e-4 (0.5, 0.999), batch 64, N(0, 0.02))
    keras      seed 001's own Keras code (benchmarks/keras_seed001.py in benchmarks/.venv-tf, tensorflow-cpu)

Every --snapshot-every CPU seconds each contestant saves --snapshot-num samples from fixed noise; afterwards
all snapshots are scored by one yardstick: domain FID (the MNIST classifier's features) against the same
10,000 training images. Reported: each contestant's FID-vs-CPU curve, the best peer's final FID, and the CPU
time ganforge needs to reach it (goal: <= 1/3 of the peers' time).

    python benchmarks/time_to_quality.py --data-root /work/shared/data --cpu-seconds 1800      # 30 CPU-min each
    python benchmarks/time_to_quality.py --data-root /work/shared/data --preset mnist-fast --cpu-seconds 900 --jobs 2
    python benchmarks/time_to_quality.py --data-root /work/shared/data --cpu-seconds 120 --snapshot-every 30
    python benchmarks/time_to_quality.py --data-root DATA --contestants ganforge --set train.ema_rampup=0.05

The keras contestant is skipped, and the output says so, when benchmarks/.venv-tf cannot import tensorflow
(`python benchmarks/bench_train.py` creates it; `--no-keras` skips it on purpose).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import REPO, build_config, machine, to_uint8  # noqa: E402
from ganforge.data import load_dataset  # noqa: E402
from ganforge.metrics.evaluate import evaluate  # noqa: E402
from ganforge.models.sampler import eval_mode  # noqa: E402
from ganforge.train.trainer import Trainer  # noqa: E402

TF_PYTHON = REPO / "benchmarks" / ".venv-tf" / "bin" / "python"


class Snapshots:
    """Samples from fixed noise at CPU-time marks; `cpu` is training CPU seconds (sampling taken out)."""

    def __init__(self, every: float, budget: float) -> None:
        self.every, self.budget = every, budget
        self.cpu0, self.sampling, self.next = time.process_time(), 0.0, every
        self.items: list[tuple[float, int, torch.Tensor]] = []  # (train CPU s, step, uint8 images)

    @property
    def cpu(self) -> float:
        return time.process_time() - self.cpu0 - self.sampling

    def due(self) -> bool:
        return self.cpu >= self.next or self.cpu >= self.budget

    def take(self, step: int, sample) -> bool:
        """Take a snapshot with sample() -> uint8 images; True when the budget is spent."""
        cpu = self.cpu
        start = time.process_time()
        self.items.append((round(cpu, 1), step, sample()))
        self.sampling += time.process_time() - start
        self.next += self.every
        return cpu >= self.budget


# --------------------------------------------------------------------------------------------- contestants


# Overrides a preset races with by default: `mnist-unconditional` (the `mnist` preset of then) races as it was in the
# recorded 2026-12-04 race (64 channels, Adam 2e-4, no EMA ramp-up, an 8,000-step LR decay); it now ships a
# 45,000-step, 32-channel recipe for 60 CPU-minutes.
RACE_PINS = {"mnist-unconditional": ["model.g_channels=64", "model.d_channels=64", "train.lr_g=2e-4",
                                     "train.lr_d=2e-4", "train.ema_rampup=0", "train.steps=8000"]}


def run_ganforge(args: argparse.Namespace) -> Snapshots:
    cfg = build_config(args.preset, ["train.cpu_threads=1", "train.progress=false", "eval.every=0", "eval.metrics=[]",
                                     "eval.best_metric=null", *RACE_PINS.get(args.preset, []),
                                     f"train.seed={args.seed}", *args.set],
                       data_root=args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))
        noise = torch.randn(args.snapshot_num, cfg.model.latent_dim, generator=torch.Generator().manual_seed(7))

        def sample() -> torch.Tensor:
            with torch.no_grad(), eval_mode(trainer.sampler):
                return to_uint8(trainer.sampler(noise))

        snaps = Snapshots(args.snapshot_every, args.cpu_seconds)
        while True:
            trainer.run_step(measure=False)
            trainer.step += 1
            if trainer.step % 100 == 0:
                trainer.stats.flush()  # the trainer's per-tick collection, without its logging
            if snaps.due() and snaps.take(trainer.step, sample):
                return snaps


class PeerG(nn.Module):
    """pytorch/examples dcgan Generator, sized for 28x28: z (B, nz, 1, 1) -> (B, 1, 28, 28)."""

    def __init__(self, nz: int = 100, ngf: int = 64) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 7, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),  # 7x7
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 14
            nn.ConvTranspose2d(ngf * 2, 1, 4, 2, 1, bias=False), nn.Tanh(),  # 28x28
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class PeerD(nn.Module):
    """pytorch/examples dcgan Discriminator, sized for 28x28: (B, 1, 28, 28) -> logits (B,)."""

    def __init__(self, ndf: int = 64) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # 14x14
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),  # 7x7
            nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False),  # 1x1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def weights_init(m: nn.Module) -> None:  # the examples' init
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def run_pytorch_peer(args: argparse.Namespace) -> Snapshots:
    torch.manual_seed(args.seed)
    cfg = build_config("mnist", [], data_root=args.data_root)
    data = load_dataset(cfg.data)
    images = data.to_model_space(data.data)  # (60000, 1, 28, 28) in [-1, 1], as the examples' Normalize(0.5, 0.5)
    G, D = PeerG(), PeerD()
    G.apply(weights_init)
    D.apply(weights_init)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    batch = 64
    noise = torch.randn(args.snapshot_num, 100, 1, 1, generator=torch.Generator().manual_seed(7))

    def sample() -> torch.Tensor:
        G.eval()
        with torch.no_grad():
            out = to_uint8(G(noise))
        G.train()
        return out

    snaps, step = Snapshots(args.snapshot_every, args.cpu_seconds), 0
    while True:
        for idx in torch.randperm(len(images)).split(batch):
            if len(idx) < batch:
                continue
            real = images[idx]
            ones, zeros = torch.ones(batch), torch.zeros(batch)
            fake = G(torch.randn(batch, 100, 1, 1))
            opt_d.zero_grad()
            loss_d = bce(D(real), ones) + bce(D(fake.detach()), zeros)
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            bce(D(fake), ones).backward()
            opt_g.step()
            step += 1
            if snaps.due() and snaps.take(step, sample):
                return snaps


def run_keras(args: argparse.Namespace) -> Snapshots | str:
    if args.no_keras:
        return "skipped (--no-keras)"
    if not TF_PYTHON.exists() or subprocess.run([str(TF_PYTHON), "-c", "import tensorflow"],
                                                capture_output=True).returncode:
        return f"skipped: {TF_PYTHON} cannot import tensorflow (create it: python benchmarks/bench_train.py)"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "snaps.npz"
        cmd = [str(TF_PYTHON), str(REPO / "benchmarks" / "keras_seed001.py"), "--data-root", str(args.data_root),
               "--threads", "1", "--cpu-seconds", str(args.cpu_seconds), "--snapshot-every",
               str(args.snapshot_every), "--snapshot-num", str(args.snapshot_num), "--snapshots", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            return f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
        snaps = Snapshots(args.snapshot_every, args.cpu_seconds)
        with np.load(out) as f:
            for key in f.files:
                _, cpu, _, step = key.split("_")
                snaps.items.append((float(cpu), int(step), torch.from_numpy(f[key])))
        return snaps


CONTESTANTS = {"ganforge": run_ganforge, "pytorch": run_pytorch_peer, "keras": run_keras}


def run_contestant(name: str, args: argparse.Namespace) -> Snapshots | str:
    """One contestant, single-threaded (also the entry point of a --jobs worker process)."""
    torch.set_num_threads(1)
    return CONTESTANTS[name](args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST (torchvision layout)")
    parser.add_argument("--cpu-seconds", type=float, default=1800.0, help="training CPU time per contestant")
    parser.add_argument("--snapshot-every", type=float, default=120.0, help="CPU seconds between snapshots")
    parser.add_argument("--snapshot-num", type=int, default=2000, help="samples per snapshot (domain FID)")
    parser.add_argument("--contestants", nargs="+", default=list(CONTESTANTS), choices=list(CONTESTANTS))
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras contestant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="mnist-unconditional",
                        help="the ganforge contestant's preset (mnist-unconditional, mnist-fast)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="contestants run at once, one process each (1: one after another)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override the ganforge contestant's preset (after RACE_PINS; train.steps=4500: an LR "
                             "decay sized for the budget; train.ema_rampup=0.05)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# time to quality: {args.cpu_seconds:.0f} CPU-s each, snapshots of {args.snapshot_num} every "
          f"{args.snapshot_every:.0f} CPU-s; {machine()}", flush=True)
    results: dict[str, list | str] = {}
    start, finished = time.perf_counter(), {}
    if args.jobs > 1:  # each contestant in its own process; CPU time is per process, so the budgets stay equal
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {name: pool.submit(run_contestant, name, args) for name in args.contestants}
            finished = {name: future.result() for name, future in futures.items()}
    for name in args.contestants:
        snaps = finished[name] if name in finished else run_contestant(name, args)
        if isinstance(snaps, str):
            results[name] = snaps
            print(f"{name}: {snaps}", flush=True)
            continue
        curve = []
        for cpu, step, images in snaps.items:
            fid = evaluate(images, "mnist", ["fid"], features="domain", num_real=10_000, data_root=args.data_root,
                           progress=False, seed=0)["fid"]
            curve.append({"train_cpu_s": cpu, "step": step, "fid": round(fid, 2)})
        results[name] = curve
        print(f"{name}: scored {time.perf_counter() - start:.0f} s wall after the race began; " +
              ", ".join(f"{c['train_cpu_s']:.0f}s/{c['step']}: {c['fid']}" for c in curve), flush=True)
    peers = {k: v for k, v in results.items() if k != "ganforge" and isinstance(v, list) and v}
    summary = {}
    if peers and isinstance(results.get("ganforge"), list):
        best_peer = min(peers, key=lambda k: peers[k][-1]["fid"])
        target = peers[best_peer][-1]["fid"]
        reached = next((c for c in results["ganforge"] if c["fid"] <= target), None)
        summary = {"best_peer": best_peer, "best_peer_final_fid": target, "peer_cpu_s": peers[best_peer][-1]
                   ["train_cpu_s"], "ganforge_cpu_s_to_reach": reached and reached["train_cpu_s"],
                   "ganforge_final_fid": results["ganforge"][-1]["fid"]}
        if reached:
            summary["fraction_of_peer_time"] = round(reached["train_cpu_s"] / summary["peer_cpu_s"], 3)
        print("summary: " + json.dumps(summary))
    print(f"# {machine()}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results,
                                         "summary": summary}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
