"""Where does a trained image model's FID come from? Two diagnoses of one run's final samples (MNIST-like data).

1. Batch-norm state at sampling: the EMA of G keeps a copy of the live G's batch-norm running statistics, which
   were gathered under the live weights, not the averaged ones. Scores the same samples drawn four ways: EMA G in
   eval mode (what ganforge ships), live G, EMA G with its statistics recomputed under its own weights (BigGAN's
   "standing statistics", cumulative over --calibration-batches batches), EMA G with batch statistics.
2. Faint pixels: the share of pixels at 1..12/255 in generated and in test images, how many lie more than two
   pixels from any ink (>= 128), and the Inception FID with and without them (zeroed). A diagnosis only: zeroing
   pixels is not a way to sample.

    python benchmarks/sample_diagnostics.py RUN_DIR --data-root /work/shared/data --seed 0
    python benchmarks/sample_diagnostics.py RUN_DIR --data-root /work/shared/data --num 500 --inception-num 0

Domain FID / precision / recall: --num samples vs the test images (domain features). Inception: --inception-num
samples vs as many test images, `--features` (inception-bf16 by default: a quick look, compare only at equal N).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import machine  # noqa: E402
from ganforge.config import config_from_dict, parse_yaml  # noqa: E402
from ganforge.metrics.evaluate import evaluate  # noqa: E402
from ganforge.metrics.sources import resolve_real  # noqa: E402
from ganforge.saved import sampler_from_state  # noqa: E402
from ganforge.train.checkpoint import load_checkpoint, resolve_checkpoint  # noqa: E402

FAINT = (1, 13)  # uint8 values counted as faint: 1..12 of 255 (under 5% of full ink)
INK = 128  # uint8 value from which a pixel counts as ink


@torch.no_grad()
def standing_statistics(generator: nn.Module, *, batches: int, batch_size: int, seed: int) -> None:
    """Recompute G's batch-norm running statistics under its own weights: a cumulative mean over fresh batches."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise SystemExit("error: this generator has no batch norm; part 1 does not apply")
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: running stats are the plain average of every batch seen
    generator.train()
    noise = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        generator(torch.randn(batch_size, generator.config.latent_dim, generator=noise))
    generator.eval()


def faint_stats(images: torch.Tensor) -> dict[str, float]:
    """uint8 (N, 1, H, W) -> share of faint pixels, and faint pixels per image farther than 2 px from ink."""
    x = images.float()
    faint = (x >= FAINT[0]) & (x < FAINT[1])
    near_ink = F.max_pool2d((x >= INK).float(), 5, 1, 2) > 0
    return {"faint_share": faint.float().mean().item(),
            "faint_off_ink_per_image": (faint & ~near_ink).float().sum().item() / len(x)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="run directory (or checkpoint) of an image model with an EMA of G")
    p.add_argument("--data-root", default=None)
    p.add_argument("--seed", type=int, default=0, help="sampling seed is 10,000 + this (as quality.py)")
    p.add_argument("--num", type=int, default=10_000, help="samples for domain FID / precision / recall")
    p.add_argument("--inception-num", type=int, default=2000, help="samples for part 2's Inception FID; 0: skip")
    p.add_argument("--features", default="inception-bf16", choices=["inception", "inception-bf16"])
    p.add_argument("--calibration-batches", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# sample_diagnostics: {args.run}, seed {args.seed}; {machine()}", flush=True)

    state, source = load_checkpoint(args.run), resolve_checkpoint(args.run)  # read once; each sampler is a fresh copy
    dataset = config_from_dict(parse_yaml(state["config"], str(source))).data.name + ":test"
    sampler = sampler_from_state(state, source)
    sample_seed = 10_000 + args.seed
    out: dict = {"run": str(args.run), "seed": args.seed, "num": args.num, "machine": machine(), "bn": {}}

    def domain(name: str, s, *, batch_stats: bool = False) -> torch.Tensor:
        start = time.process_time()
        g = s.nets["G"]
        g.train(batch_stats)
        with torch.no_grad():
            fake = s.generate(args.num, seed=sample_seed)
        g.eval()
        r = evaluate(fake, dataset, ["fid", "precision", "recall"], features="domain", data_root=args.data_root,
                     progress=False, seed=args.seed)
        out["bn"][name] = {k: round(v, 4) for k, v in r.items()}
        print(f"{name:34s} domain FID {r['fid']:7.3f}  P {r['precision']:.3f}  R {r['recall']:.3f}"
              f"  ({time.process_time() - start:.0f} CPU-s)", flush=True)
        return fake

    fake = domain("ema, eval mode (shipped)", sampler)
    domain("live G, eval mode", sampler_from_state(state, source, use_ema=False))
    recalibrated = sampler_from_state(state, source)
    standing_statistics(recalibrated.nets["G"], batches=args.calibration_batches, batch_size=64, seed=123)
    domain("ema, standing statistics", recalibrated)
    domain("ema, batch statistics (train mode)", sampler_from_state(state, source), batch_stats=True)

    test = resolve_real(dataset, data_root=args.data_root).data[: args.num]  # uint8 (N, C, H, W)
    out["faint"] = {"generated": faint_stats(fake), "test": faint_stats(test)}
    for who, st in out["faint"].items():
        print(f"{who:9s} faint pixels (1..12/255) {st['faint_share']:.4f} of all, "
              f"{st['faint_off_ink_per_image']:.2f} per image > 2 px from ink", flush=True)
    if args.inception_num:
        n = args.inception_num
        cleaned = fake[:n].clone()
        cleaned[cleaned < FAINT[1]] = 0
        out["inception"] = {"features": args.features, "num": n}
        for name, images in [("as generated", fake[:n]), ("faint pixels zeroed", cleaned)]:
            r = evaluate(images, dataset, ["fid"], features=args.features, num_real=n, data_root=args.data_root,
                         progress=False, seed=args.seed)
            out["inception"][name] = round(r["fid"], 3)
            print(f"{args.features} FID, {n} vs {n} test, {name}: {r['fid']:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
