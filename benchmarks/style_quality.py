"""Style, progressive and DCGAN families on MNIST and Fashion-MNIST at equal CPU time: domain and Inception FID.

    nice -n 10 python benchmarks/style_quality.py --budget 60 --inception-num 200      # what RESULTS.md shows
    nice -n 10 python benchmarks/style_quality.py --budget 1800 --inception-num 10000  # the full Lucic protocol

Each (dataset, family) trains single-threaded (`train.cpu_threads: 1`) on the full 60,000-image train split until
its process CPU time reaches `--budget` seconds (a watchdog thread ends the run at the next step; the run then
writes its last samples and checkpoint as usual), so the families get equal CPU time, not equal steps.

Scores, from the EMA generator:
  domain FID     `--num` samples vs the 10,000 test images, features of the cached per-dataset CNN classifier
  Inception FID  Lucic et al. 2018's protocol: generated vs test images, grayscale tiled to RGB, the 2015
                 TF Inception pool3 features (ganforge's `fid` with `features=inception`, legacy bilinear resize
                 as in TF). The protocol uses 10,000 vs 10,000; `--inception-num` sets both counts (Inception runs
                 ~7 images/s single-threaded here, so the committed table uses fewer; FID is biased upwards at
                 small N). `--inception-families best` scores only each dataset's best family by domain FID.
Published (Lucic et al. 2018, best of many runs, 10k vs 10k): MNIST 6.7 +- 0.4 (WGAN), Fashion-MNIST 21.5 +- 1.6
(WGAN); PA-GAN reports 15.8 on Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANFORGE_SHARED", REPO.parent / "shared"))
if not SHARED.exists() and (REPO.parent.parent / "shared").exists():  # a worktree one level deeper
    SHARED = REPO.parent.parent / "shared"
PUBLISHED = {"mnist": "6.7 +- 0.4 (WGAN)", "fashion-mnist": "21.5 +- 1.6 (WGAN); 15.8 (PA-GAN)"}


def model_config(family: str) -> dict:
    """Each family at a size that trains a few hundred steps in about a CPU-minute and a half on 28x28."""
    if family == "dcgan":
        return {"family": "dcgan", "latent_dim": 64, "g_channels": 32, "d_channels": 32}
    if family == "progan":
        return {"family": "progan", "latent_dim": 64, "channels": 16, "max_channels": 64,
                "progressive": {"enabled": True, "fade_steps": 60, "stable_steps": 60}}
    if family == "stylegan2":
        return {"family": "stylegan2", "latent_dim": 64, "w_dim": 64, "mapping_layers": 2, "channels": 16,
                "max_channels": 64, "r1_gamma": 1.0, "progressive": {"enabled": True, "fade_steps": 40,
                                                                      "stable_steps": 40}}
    raise ValueError(family)


def train_with_budget(cfg, run_dir: Path, budget: float) -> tuple[int, float]:
    """Train until this process has spent `budget` more CPU seconds; (steps, CPU seconds)."""
    from ganforge.train.trainer import Trainer, prepare_run_dir

    prepare_run_dir(run_dir, overwrite=True)
    trainer = Trainer(cfg, run_dir)  # loading the data and building the networks is not counted
    start = time.process_time()
    done = threading.Event()

    def watchdog() -> None:
        while not done.wait(0.5):
            if time.process_time() - start >= budget:
                trainer.total = min(trainer.total, trainer.step + 1)  # the loop ends after the current step
                return

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    result = trainer.fit()
    done.set()
    return result.step, time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(SHARED / "data"))
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--families", default="dcgan,progan,stylegan2")
    parser.add_argument("--budget", type=float, default=80.0, help="training CPU seconds per (dataset, family)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num", type=int, default=5000, help="generated samples for domain FID")
    parser.add_argument("--inception-num", type=int, default=10_000, help="generated and test images for "
                        "Inception FID (the protocol: 10000)")
    parser.add_argument("--inception-families", default="best", help="'best' (per dataset, by domain FID), 'all' "
                        "or 'none'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench-style")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from ganforge.config import config_from_dict
    from ganforge.saved import evaluate_checkpoint

    results: dict[str, dict[str, dict]] = {}
    for dataset in args.datasets.split(","):
        results[dataset] = {}
        for family in args.families.split(","):
            cfg = config_from_dict({
                "data": {"name": dataset, "root": args.data_root, "download": False},
                "model": model_config(family),
                "train": {"batch_size": args.batch_size, "steps": 1_000_000, "seed": args.seed, "cpu_threads": 1,
                          "ema_kimg": 2.0, "progress": False, "log_every": 25, "sample_every": 1_000_000,
                          "checkpoint_every": 1_000_000, "channels_last": family == "dcgan"},
            })
            run_dir = Path(args.out) / f"{dataset}-{family}"
            steps, cpu = train_with_budget(cfg, run_dir, args.budget)
            start = time.process_time()
            fid = evaluate_checkpoint(run_dir, "fid", num=args.num, real=f"{dataset}:test", features="domain",
                                      data_root=args.data_root, progress=False, seed=args.seed)["fid"]
            results[dataset][family] = {"steps": steps, "train_cpu_s": round(cpu, 1), "domain_fid": fid,
                                        "domain_eval_cpu_s": round(time.process_time() - start, 1)}
            print(dataset, family, json.dumps(results[dataset][family]), flush=True)
        if args.inception_families != "none":
            ranked = sorted(results[dataset], key=lambda f: results[dataset][f]["domain_fid"])
            for family in ranked[:1] if args.inception_families == "best" else ranked:
                start = time.process_time()
                fid = evaluate_checkpoint(Path(args.out) / f"{dataset}-{family}", "fid", num=args.inception_num,
                                          real=f"{dataset}:test", features="inception", resize="legacy",
                                          num_real=args.inception_num, data_root=args.data_root, progress=False,
                                          seed=args.seed)["fid"]
                results[dataset][family]["inception_fid"] = fid
                results[dataset][family]["inception_cpu_s"] = round(time.process_time() - start, 1)
                print(dataset, family, "inception", fid, flush=True)

    print(f"\nequal CPU time: {args.budget:.0f} s of training per run (1 thread), batch {args.batch_size}, "
          f"seed {args.seed}; domain FID: {args.num} samples vs 10,000 test; Inception FID: {args.inception_num} "
          f"vs {args.inception_num} test (protocol: 10,000)")
    print(f"{'dataset':<14} {'family':<10} {'steps':>6} {'CPU s':>6} {'domain FID':>10} {'Inception FID':>13}"
          "  published")
    for dataset, by_family in results.items():
        for family, r in by_family.items():
            inc = f"{r['inception_fid']:.1f}" if "inception_fid" in r else "-"
            print(f"{dataset:<14} {family:<10} {r['steps']:>6} {r['train_cpu_s']:>6.0f} {r['domain_fid']:>10.2f} "
                  f"{inc:>13}  {PUBLISHED.get(dataset, '')}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
