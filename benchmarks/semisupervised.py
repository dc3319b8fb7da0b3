"""Semi-supervised MNIST (Improved GAN protocol): test error of the ssgan family's D with 20 / 50 / 100 labels.

For every label count and label draw d (d = 0, 1, ...: train.seed = model.labels_seed = d) it trains the
`ssgan-mnist` preset for --epochs passes over the 60,000 unlabelled training images (batch 100; the learning
rate decays linearly to 0 over the run), then scores D on the 10,000 MNIST test images with
`ganforge.classify`. The paper trains 300 epochs (`--epochs 300`); on a shared CPU a session affords ~2.

    nice -n 10 python benchmarks/semisupervised.py --labels 100 --draws 3 --epochs 1.5 --data-root ../shared/data
    python benchmarks/semisupervised.py --labels 20,50,100 --draws 3 --epochs 300 --device cuda   # the paper's run

Published (test error, 10,000 MNIST test images): Improved GAN 16.77 +- 4.52% (20 labels), 2.21 +- 1.36% (50),
0.93 +- 0.065% (100); Triple-GAN 0.91%; Bad GAN 0.80% (100 labels).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ganforge.classify import classify
from ganforge.config import config_from_dict, load_preset, merge
from ganforge.saved import load_sampler
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import train

PUBLISHED = {20: "16.77 +- 4.52", 50: "2.21 +- 1.36", 100: "0.93 +- 0.065"}  # Improved GAN, test error %
STEPS_PER_EPOCH = 600  # 60,000 images / batch 100


def run_one(labels: int, draw: int, args) -> dict:
    steps = max(1, round(args.epochs * STEPS_PER_EPOCH))
    raw = merge(load_preset("ssgan-mnist"), {
        "data": {"root": args.data_root, "download": False},
        "model": {"labels_per_class": labels // 10, "labels_seed": draw},
        "train": {"steps": steps, "seed": draw, "device": args.device, "progress": False,
                  "cpu_threads": args.threads, "sample_every": steps, "checkpoint_every": steps,
                  # D's weight average (the paper's, rate 1e-4 per step over 180,000 steps) scaled to the run:
                  # a half-life of a tenth of it
                  "ema_kimg": min(693.0, steps * 100 / 1000 / 10)},
        "eval": {"every": max(1, steps // 4), "metrics": ["accuracy"]},
    })
    run_dir = Path(args.out) / f"labels{labels}-draw{draw}"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    train(config_from_dict(raw), run_dir, overwrite=True)
    cpu_train = time.process_time() - cpu0
    result = classify(load_sampler(run_dir), "mnist:test", data_root=args.data_root)
    curve = [(r["step"], r["test_accuracy"]) for r in read_metrics(run_dir / "metrics.jsonl")
             if r.get("event") == "eval"]
    return {"labels": labels, "draw": draw, "steps": steps, "epochs": args.epochs,
            "test_error": 100 * (1 - result.accuracy), "cpu_s": cpu_train, "wall_s": time.perf_counter() - wall0,
            "curve": curve}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", default="100", help="comma-separated label counts (10 classes: 20, 50, 100)")
    p.add_argument("--draws", type=int, default=3, help="label draws (seeds 0..draws-1) per label count")
    p.add_argument("--first-draw", type=int, default=0, help="seed of the first draw")
    p.add_argument("--epochs", type=float, default=1.5, help="training epochs per run (the paper: 300)")
    p.add_argument("--data-root", help="MNIST in torchvision's layout (default: $GANFORGE_DATA or the cache)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    p.add_argument("--out", default="/tmp/ganforge-bench/ssgan", help="run directories go here")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for labels in [int(x) for x in args.labels.split(",")]:
        for draw in range(args.first_draw, args.first_draw + args.draws):
            row = run_one(labels, draw, args)
            rows.append(row)
            curve = ", ".join(f"{s}: {100 * (1 - a):.2f}%" for s, a in row["curve"])
            print(f"labels {labels:4d} draw {draw}: test error {row['test_error']:.2f}% after {row['steps']} steps "
                  f"({row['epochs']:g} epochs), {row['cpu_s'] / 60:.1f} CPU-min  [error by step: {curve}]",
                  flush=True)
    print("\nlabels  draws  test error % (mean +- std)  Improved GAN (300 epochs)  CPU-min per run")
    for labels in sorted({r["labels"] for r in rows}):
        errs = [r["test_error"] for r in rows if r["labels"] == labels]
        cpu = statistics.mean(r["cpu_s"] for r in rows if r["labels"] == labels) / 60
        spread = f" +- {statistics.stdev(errs):.2f}" if len(errs) > 1 else ""
        print(f"{labels:6d}  {len(errs):5d}  {statistics.mean(errs):.2f}{spread:<10}              "
              f"{PUBLISHED.get(labels, '-'):<25} {cpu:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
