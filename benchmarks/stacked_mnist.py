"""Stacked MNIST mode collapse (PacGAN protocol): modes captured of 1,000 and KL to uniform, 26,000 samples.

Trains each setting on `stacked-mnist` (128,000 images, three MNIST digits as R, G, B; data.seed 0) for --steps,
then scores 26,000 samples of its generator with `ganforge evaluate --metrics stacked_mnist` (the MNIST domain
classifier reads each channel). Settings are presets: `stacked-mnist-dcgan` (plain DCGAN) and `stacked-mnist`
(ganforge's recommended anti-collapse setting: PacGAN packing m=2 + a minibatch-stddev channel).

    nice -n 10 python benchmarks/stacked_mnist.py --steps 1500 --data-root ../shared/data
    python benchmarks/stacked_mnist.py --steps 40000 --seeds 0,1,2 --device cuda        # a full-length run

PacGAN Table 2 (same protocol, 26,000 samples): DCGAN 99 modes / KL 3.40; PacDCGAN2 1000 / 0.06;
VEEGAN 150 / 2.95; Unrolled GAN 48.7 / 4.32.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganforge.config import config_from_dict, load_preset, merge
from ganforge.metrics.stacked_mnist import PROTOCOL_SAMPLES
from ganforge.saved import evaluate_checkpoint
from ganforge.train.trainer import train

SETTINGS = {"dcgan": "stacked-mnist-dcgan", "recommended": "stacked-mnist"}
PUBLISHED = "PacGAN Table 2: DCGAN 99 / 3.40, PacDCGAN2 1000 / 0.06, VEEGAN 150 / 2.95, Unrolled 48.7 / 4.32"


def run_one(setting: str, seed: int, args) -> dict:
    raw = merge(load_preset(SETTINGS[setting]), {
        "data": {"root": args.data_root, "download": False},
        "train": {"steps": args.steps, "seed": seed, "device": args.device, "progress": False,
                  "cpu_threads": args.threads, "sample_every": args.steps, "checkpoint_every": args.steps},
    })
    run_dir = Path(args.out) / f"{setting}-seed{seed}"
    cpu0 = time.process_time()
    train(config_from_dict(raw), run_dir, overwrite=True)
    cpu_train = time.process_time() - cpu0
    scores = evaluate_checkpoint(run_dir, ["stacked_mnist"], num=args.num, data_root=args.data_root,
                                 device=args.device, progress=False, seed=seed)
    return {"setting": setting, "seed": seed, "steps": args.steps, "cpu_train_s": cpu_train,
            "cpu_eval_s": time.process_time() - cpu0 - cpu_train, **scores}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", default="dcgan,recommended", help=f"comma-separated: {', '.join(SETTINGS)}")
    p.add_argument("--steps", type=int, default=1500, help="training steps per run (batch 64)")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--num", type=int, default=PROTOCOL_SAMPLES, help="samples scored (the protocol: 26,000)")
    p.add_argument("--data-root", help="MNIST in torchvision's layout (default: $GANFORGE_DATA or the cache)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    p.add_argument("--out", default="/tmp/ganforge-bench/stacked", help="run directories go here")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for setting in args.settings.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            row = run_one(setting, seed, args)
            rows.append(row)
            print(f"{setting:12s} seed {seed}: {row['stacked_modes']:.0f} modes, KL {row['stacked_kl']:.3f} after "
                  f"{row['steps']} steps; {row['cpu_train_s'] / 60:.1f} CPU-min training, "
                  f"{row['cpu_eval_s'] / 60:.1f} scoring", flush=True)
    print(PUBLISHED)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
