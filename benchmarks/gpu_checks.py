"""Issue 15's GPU checks, prepared to run in one call on a lent GPU machine (a few minutes of device time).

What the issue asks of a session with a GPU, each a part (`--parts`, in this order by default):

- `inception`: Inception feature extraction on the GPU, end to end from uint8 MNIST test images (resize included):
  images/s and the FID of test[0:N] against test[N:2N] for the TorchScript as loaded and ganforge's folded fast
  path in strict fp32, the fast path with TF32 convolutions (PyTorch's default on Ampere and later), fp16
  autocast, bfloat16 (`precision="bf16"`) and `torch.compile`; each FID beside strict fp32's, so whether a faster
  arithmetic keeps the metric (within 0.5%) is measured, not assumed.
- `train`: training images/s of the `mnist` preset on the GPU: eager fp32, `train.amp=bf16`, `train.amp=fp16`,
  `train.compile=true` (its compile time apart), `train.channels_last=true`; `--train-steps` timed steps each.
- `quality`: `benchmarks/quality.py` on the GPU: the `mnist` preset, seed 0, full length, Inception FID of 10,000
  samples against the 10,000 test images (Lucic et al.'s protocol), as on the CPU.
- `seed001`: seed 001's recipe for its full 50 epochs, as written (`seed001`) and fixed (`seed001-fixed`), with the
  domain FID of 2,000 samples after every epoch.

Every part's figures go to OUT/gpu_checks.json (and a line each to stdout) as soon as it ends, so a part that runs
out of time leaves the others' results. On a CPU machine `--smoke` runs every part tiny (a check that the script
works, not a measurement):

    python benchmarks/gpu_checks.py --data-root ../shared/data --out $OUT                 # all parts, ~10 min
    python benchmarks/gpu_checks.py --data-root ../shared/data --out $OUT --parts inception,train
    python benchmarks/gpu_checks.py --data-root ../shared/data --out /tmp/gc --smoke --device cpu
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import build_config, machine  # noqa: E402
from ganforge.devices import select_device  # noqa: E402
from ganforge.metrics.fid import feature_statistics, frechet_distance  # noqa: E402
from ganforge.metrics.inception import InceptionExtractor  # noqa: E402
from ganforge.train.trainer import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARTS = ("inception", "train", "quality", "seed001")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else machine()


# ------------------------------------------------------------------------------------------------ inception


def inception_variants(device: torch.device, inception: str | None, smoke: bool):
    """(name, extractor, context factory) for each arithmetic timed; strict fp32 first (the reference)."""
    import contextlib

    def tf32(on: bool):
        @contextlib.contextmanager
        def ctx():
            old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = on
            try:
                yield
            finally:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
        return ctx

    def autocast_fp16():
        return contextlib.ExitStack() if device.type != "cuda" else torch.autocast("cuda", dtype=torch.float16)

    @contextlib.contextmanager
    def strict_fp16():
        with tf32(False)(), autocast_fp16():
            yield

    fast = InceptionExtractor(inception, runtime="torch").to(device).eval()
    variants = [("fast fp32 (strict)", fast, tf32(False)),
                ("torchscript fp32 (strict)", InceptionExtractor(inception, fast=False).to(device).eval(),
                 tf32(False)),
                ("fast tf32", fast, tf32(True)),
                ("fast fp16 autocast", fast, strict_fp16),
                ("fast bf16", InceptionExtractor(inception, runtime="torch", precision="bf16").to(device).eval(),
                 tf32(False))]
    if not smoke:  # compiling takes minutes on a CPU
        compiled = InceptionExtractor(inception, runtime="torch").to(device).eval()
        compiled.fast_layers = torch.compile(compiled.fast_layers)
        variants.append(("fast fp32 compiled", compiled, tf32(False)))
    return variants


def part_inception(args: argparse.Namespace, device: torch.device) -> dict:
    import torchvision

    num = 64 if args.smoke else args.fid_num
    data = torchvision.datasets.MNIST(root=str(args.data_root), train=False, download=False).data
    images = data[: 2 * num, None].contiguous().to(device)  # uint8 (2N, 1, 28, 28)
    rows, reference = [], None
    for name, extractor, context in inception_variants(device, args.inception, args.smoke):
        with torch.inference_mode(), context():
            start = time.perf_counter()
            extractor(images[: args.batch])  # warm-up: kernels chosen, graphs compiled
            sync(device)
            warm_up_s = time.perf_counter() - start
            start = time.perf_counter()
            feats = torch.cat([extractor(images[i : i + args.batch])["features"].float()
                               for i in range(0, len(images), args.batch)])
            sync(device)
            seconds = time.perf_counter() - start
        feats = feats.cpu().double().numpy()
        fid = frechet_distance(*feature_statistics(feats[:num]), *feature_statistics(feats[num:]))
        if reference is None:
            reference = (fid, feats)
        row = {"variant": name, "images_per_s": round(len(images) / seconds, 1), "warm_up_s": round(warm_up_s, 1),
               "fid": round(fid, 4), "fid_rel_diff_pct": round(100 * (fid - reference[0]) / reference[0], 3),
               "max_abs_feature_diff": float(abs(feats - reference[1]).max())}
        rows.append(row)
        print(f"  inception {name}: {row['images_per_s']} images/s, FID {row['fid']} "
              f"({row['fid_rel_diff_pct']:+.3f}% vs strict fp32), max |dfeat| {row['max_abs_feature_diff']:.2e}",
              flush=True)
    return {"images": f"MNIST test[0:{num}] vs test[{num}:{2 * num}]", "batch": args.batch, "rows": rows}


# ------------------------------------------------------------------------------------------------ train


def part_train(args: argparse.Namespace, device: torch.device) -> dict:
    steps, warm = (5, 3) if args.smoke else (args.train_steps, 50)
    variants = [("eager fp32", []), ("amp bf16", ["train.amp=bf16"]), ("channels_last", ["train.channels_last=true"])]
    if device.type == "cuda":
        variants.append(("amp fp16", ["train.amp=fp16"]))
    if not args.smoke:
        variants += [("compile", ["train.compile=true"]), ("compile + amp bf16", ["train.compile=true",
                                                                                   "train.amp=bf16"])]
    rows = []
    for name, overrides in variants:
        cfg = build_config(args.preset, [f"train.device={device}", "train.progress=false", *overrides],
                           data_root=args.data_root)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(cfg, Path(tmp))
            warm_up_s = timed_steps(trainer, warm, device)  # compilation, cuDNN autotuning, allocator growth
            seconds = statistics.median(timed_steps(trainer, steps, device) for _ in range(3))
        row = {"variant": name, "overrides": overrides, "batch_size": cfg.train.batch_size,
               "images_per_s": round(steps * cfg.train.batch_size / seconds), "ms_per_step": round(
                   1e3 * seconds / steps, 2), "warm_up_s": round(warm_up_s, 1)}
        rows.append(row)
        print(f"  train {args.preset} {name}: {row['images_per_s']} images/s ({row['ms_per_step']} ms a step; "
              f"warm-up {row['warm_up_s']} s)", flush=True)
    return {"preset": args.preset, "timed_steps": steps, "rounds": 3, "rows": rows}


def timed_steps(trainer: Trainer, steps: int, device: torch.device) -> float:
    """Seconds for `steps` training steps, the device's queue drained before and after."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.run_step(measure=False)
        trainer.step += 1
    sync(device)
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ quality, seed001


def run_logged(cmd: list[str], log: Path, limit_s: float) -> tuple[int, float]:
    """Run `cmd` with its output in `log`; (exit status, seconds), 124 when it ran past `limit_s`."""
    print(f"  $ {' '.join(cmd)}  (log {log})", flush=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        try:
            status = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=limit_s, cwd=REPO).returncode
        except subprocess.TimeoutExpired:
            status = 124
    return status, round(time.perf_counter() - start, 1)


def part_quality(args: argparse.Namespace, device: torch.device) -> dict:
    out = args.out / "quality"
    cmd = [sys.executable, str(REPO / "benchmarks" / "quality.py"), "--data-root", str(args.data_root),
           "--presets", args.preset, "--seeds", "0", "--device", str(device), "--out", str(out / "runs"),
           "--json", str(out / "quality.json"), "--grids", str(out)]
    cmd += (["--steps", "40", "--num", "200", "--num-domain", "200", "--eval-every", "20", "--eval-num", "100"]
            if args.smoke else ["--eval-every", "5000"])
    out.mkdir(parents=True, exist_ok=True)
    status, seconds = run_logged(cmd, out / "quality.log", args.limit_s)
    rows = json.loads((out / "quality.json").read_text()) if status == 0 else []
    for row in rows:
        print(f"  quality {row['preset']} seed {row['seed']}: Inception FID {row.get('inception_fid')}, domain FID "
              f"{row['domain_fid']}, {row['steps']} steps in {row['wall_min']} wall-min", flush=True)
    return {"command": " ".join(cmd), "status": status, "seconds": seconds, "rows": rows}


def part_seed001(args: argparse.Namespace, device: torch.device) -> dict:
    results = {}
    for preset in ("seed001", "seed001-fixed"):
        run = args.out / "seed001" / preset
        length = ["--steps", "30", "--set", "eval.every=10", "--set", "eval.num=100"] if args.smoke else \
            ["--epochs", "50"]
        every = [] if preset == "seed001-fixed" or args.smoke else ["--set", "eval.every=235"]  # one epoch
        cmd = [sys.executable, "-m", "ganforge", "train", "--preset", preset, "--data-root", str(args.data_root),
               "--out", str(run), "--overwrite", "--no-progress", "--set", f"train.device={device}",
               "--set", "eval.metrics=[fid]", "--set", "eval.features=domain", *every, *length]
        run.parent.mkdir(parents=True, exist_ok=True)
        status, seconds = run_logged(cmd, run.parent / f"{preset}.log", args.limit_s)
        curve = []
        if (run / "metrics.jsonl").exists():
            for line in (run / "metrics.jsonl").read_text().splitlines():
                event = json.loads(line)
                if event.get("event") == "eval":
                    curve.append((event["step"], round(event["fid"], 3)))
        results[preset] = {"command": " ".join(cmd), "status": status, "seconds": seconds,
                           "domain_fid_by_step": curve}
        print(f"  {preset}: status {status}, {seconds} s; domain FID by step {curve[-5:]} (last 5)", flush=True)
    return results


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding MNIST/raw")
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_checks.json, logs and runs")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one), cuda, cpu, ...")
    parser.add_argument("--inception", help="the FID Inception file (default: GANFORGE_INCEPTION or the cache)")
    parser.add_argument("--fid-num", type=int, default=5000, help="inception: images per FID set")
    parser.add_argument("--batch", type=int, default=200, help="inception: images per batch")
    parser.add_argument("--preset", default="mnist", help="train, quality: the preset")
    parser.add_argument("--train-steps", type=int, default=300, help="train: timed steps per round")
    parser.add_argument("--limit-s", type=float, default=480, help="quality, seed001: seconds per run at most")
    parser.add_argument("--smoke", action="store_true", help="every part tiny: does the script work (CPU too)")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; valid: {', '.join(PARTS)}")
    device = select_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    report_file = args.out / "gpu_checks.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    report["machine"] = {"device": device_name(device), "cpu": machine(), "torch": torch.__version__,
                         "cuda": torch.version.cuda, "smoke": args.smoke}
    print(f"# gpu_checks on {report['machine']['device']} (torch {torch.__version__}); parts {parts}", flush=True)
    for part in parts:
        start = time.perf_counter()
        try:
            report[part] = globals()[f"part_{part}"](args, device)
        except Exception as err:  # one part failing must not lose the others' figures
            report[part] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
            print(f"  {part} failed: {report[part]['error']}", flush=True)
        report[part]["part_seconds"] = round(time.perf_counter() - start, 1)
        report_file.write_text(json.dumps(report, indent=1) + "\n")
    print(f"# wrote {report_file}")


if __name__ == "__main__":
    main()
