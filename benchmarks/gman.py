"""GMAN on MNIST: training steps and CPU time to reach a fixed domain FID with k = 1, 2, 5 discriminators.

Each k trains the `gman-mnist` preset (DCGAN G and D's, combine=softmax, lambda 1) in segments of --every steps;
after each segment the EMA generator is scored by domain FID (the MNIST classifier's features, --num samples
against the 60,000 training images). Training CPU time is measured around the training segments only, so the
scoring does not count. The report gives, per k, the first step (and CPU time) at which FID <= --target, and
the FID curve, so another threshold can be read off. k = 1 is a plain DCGAN with the same G.

    nice -n 10 python benchmarks/gman.py --ks 1,2,5 --steps 1200 --every 300 --target 20 --data-root ../shared/data
    python benchmarks/gman.py --ks 1,2,5 --steps 20000 --every 1000 --seeds 0,1,2 --device cuda

GMAN (Durugkar et al. 2017) reports about 2x fewer iterations to steady state with more discriminators.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganforge.config import config_from_dict, load_preset, merge
from ganforge.saved import evaluate_checkpoint
from ganforge.train.trainer import train


def run_one(k: int, seed: int, args) -> dict:
    raw = merge(load_preset("gman-mnist"), {
        "data": {"root": args.data_root, "download": False},
        "model": {"num_discriminators": k, "combine": args.combine},
        "train": {"steps": args.every, "seed": seed, "device": args.device, "progress": False,
                  "cpu_threads": args.threads, "sample_every": args.steps, "checkpoint_every": args.every},
        "eval": {"every": 0, "metrics": []},
    })
    run_dir = Path(args.out) / f"k{k}-seed{seed}"
    curve, cpu = [], 0.0
    for step in range(args.every, args.steps + 1, args.every):
        cpu0 = time.process_time()
        if step == args.every:
            train(config_from_dict(raw), run_dir, overwrite=True)
        else:
            raw["train"]["steps"] = step
            train(config_from_dict(raw), run_dir, resume=True)
        cpu += time.process_time() - cpu0
        fid = evaluate_checkpoint(run_dir, ["fid"], num=args.num, data_root=args.data_root, device=args.device,
                                  progress=False, seed=seed)["fid"]
        curve.append({"step": step, "cpu_s": cpu, "fid": fid})
        print(f"  k={k} seed {seed} step {step}: domain FID {fid:.2f}, {cpu / 60:.2f} CPU-min training", flush=True)
    hit = next((c for c in curve if c["fid"] <= args.target), None)
    return {"k": k, "seed": seed, "curve": curve, "target": args.target,
            "steps_to_target": hit["step"] if hit else None, "cpu_s_to_target": hit["cpu_s"] if hit else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ks", default="1,2,5", help="comma-separated numbers of discriminators")
    p.add_argument("--combine", default="softmax", help="mean, max, softmax or random")
    p.add_argument("--steps", type=int, default=1200, help="training steps per run (batch 64)")
    p.add_argument("--every", type=int, default=300, help="steps between FID measurements")
    p.add_argument("--target", type=float, default=20.0, help="the domain FID to reach")
    p.add_argument("--num", type=int, default=2000, help="samples per FID")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--data-root", help="MNIST in torchvision's layout (default: $GANFORGE_DATA or the cache)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    p.add_argument("--out", default="/tmp/ganforge-bench/gman", help="run directories go here")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for k in [int(x) for x in args.ks.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows.append(run_one(k, seed, args))
    print(f"\n k  seed  steps to FID <= {args.target:g}  CPU-min to it  FID by step")
    for r in rows:
        reached = (f"{r['steps_to_target']:>8d}" if r["steps_to_target"] else "  not yet")
        cpu = f"{r['cpu_s_to_target'] / 60:8.2f}" if r["cpu_s_to_target"] else "       -"
        curve = ", ".join(f"{c['step']}: {c['fid']:.1f}" for c in r["curve"])
        print(f"{r['k']:2d}  {r['seed']:4d}  {reached:>20}  {cpu:>13}  {curve}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
