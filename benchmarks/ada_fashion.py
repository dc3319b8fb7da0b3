"""ADA on little data: a 2,000-image subset of Fashion-MNIST, DCGAN with and without ADA at equal steps.

    nice -n 10 python benchmarks/ada_fashion.py --data-root ../shared/data            # the RESULTS.md run
    nice -n 10 python benchmarks/ada_fashion.py --data-root ../shared/data --steps 300  # a smoke run

Both runs share everything (seed, data order, model, steps, batch) except `loss.augment.ada`. Each is scored by
domain FID (the cached Fashion-MNIST classifier's features; trained once on first use) of `--num` samples of the
EMA generator against the 10,000 test images. Single-threaded torch (`train.cpu_threads: 1`); the CPU seconds of
each run are reported (process time, so a shared machine inflates wall time, not these figures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANFORGE_SHARED", REPO.parent / "shared"))
if not SHARED.exists() and (REPO.parent.parent / "shared").exists():  # a worktree one level deeper
    SHARED = REPO.parent.parent / "shared"


def run_config(args, ada: bool) -> dict:
    cfg = {
        "data": {"name": "fashion-mnist", "root": args.data_root, "download": False, "limit": args.limit},
        "model": {"family": "dcgan", "latent_dim": 64, "g_channels": 32, "d_channels": 32},
        "loss": {"name": "nonsaturating"},
        "train": {"batch_size": args.batch_size, "steps": args.steps, "lr_g": 2e-4, "lr_d": 2e-4,
                  "ema_kimg": 5.0, "seed": args.seed, "cpu_threads": 1, "progress": False,
                  "log_every": 50, "sample_every": args.steps, "checkpoint_every": args.steps,
                  "channels_last": True},
    }
    if ada:
        cfg["loss"]["augment"] = {"ada": {"target": args.target, "speed_kimg": args.speed_kimg}}
    return cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(SHARED / "data"))
    parser.add_argument("--limit", type=int, default=2000, help="training images (the first N of the train split)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.6, help="ADA's r_t target")
    parser.add_argument("--speed-kimg", type=float, default=20.0, help="ADA: kimg for p to move by 1")
    parser.add_argument("--num", type=int, default=5000, help="generated samples scored")
    parser.add_argument("--out", default="runs/bench-ada", help="run directories go here (replaced)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from ganforge.config import config_from_dict
    from ganforge.saved import evaluate_checkpoint
    from ganforge.train.stats import read_metrics
    from ganforge.train.trainer import train

    results = {}
    for ada in (False, True):
        name = "ada" if ada else "none"
        run_dir = Path(args.out) / name
        start = time.process_time()
        train(config_from_dict(run_config(args, ada)), run_dir, overwrite=True)
        train_cpu = time.process_time() - start
        start = time.process_time()
        scores = evaluate_checkpoint(run_dir, "fid", num=args.num, real="fashion-mnist:test", features="domain",
                                     data_root=args.data_root, progress=False)
        ticks = [r for r in read_metrics(run_dir / "metrics.jsonl") if "event" not in r]
        last = ticks[-1]
        results[name] = {"domain_fid": scores["fid"], "train_cpu_s": round(train_cpu, 1),
                         "eval_cpu_s": round(time.process_time() - start, 1),
                         "final_p": last.get("ada_p"), "final_rt": last.get("ada_rt"),
                         "final_d_real": last.get("d_real"), "final_d_fake": last.get("d_fake")}
        print(name, json.dumps(results[name]), flush=True)
    print(f"\nFashion-MNIST, first {args.limit} train images, DCGAN, {args.steps} steps x batch {args.batch_size}, "
          f"seed {args.seed}; domain FID of {args.num} EMA samples vs the 10,000 test images")
    print(f"{'run':<6} {'domain FID':>10} {'train CPU s':>11} {'final p':>8} {'final r_t':>9}")
    for name, r in results.items():
        p = "-" if r["final_p"] is None else f"{r['final_p']:.3f}"
        rt = "-" if r["final_rt"] is None else f"{r['final_rt']:.3f}"
        print(f"{name:<6} {r['domain_fid']:>10.2f} {r['train_cpu_s']:>11.0f} {p:>8} {rt:>9}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
