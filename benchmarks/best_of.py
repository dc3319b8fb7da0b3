"""Does ranking by the run's D help? Domain FID / precision / recall of a trained run's samples, plain and best-of-n.

For each N in --best-of, `ganforge.ranking.generate_best_of` keeps the best --num of N x --num samples by D's
logit (per class for conditional models); N = 1 is plain sampling. `--drs Q ...` adds Discriminator Rejection
Sampling's acceptance rule (Azadi et al. 2019: accept with probability sigmoid(F - gamma), F = d - M - log(1 -
exp(d - M - eps)), d the logit, M its maximum over the pool, gamma the Q-quantile of F) on a pool of
--drs-pool x --num samples, for comparison. `--refine K:S ...` adds latent refinement (`ganforge.refine`: each
sample's noise moved K steps of size S uphill on D's logit), which draws no extra samples. Scores: --num samples
against the test images, domain features.

    python benchmarks/best_of.py RUN_DIR --data-root /work/shared/data --best-of 1 2 4
    python benchmarks/best_of.py RUN_DIR --data-root /work/shared/data --best-of 1 4 --drs 0.5 0.8
    python benchmarks/best_of.py RUN_DIR --data-root /work/shared/data --best-of 1 --refine 10:0.03 10:0.1

The Inception FID of a best-of run comes from `benchmarks/quality.py --inception-only ROWS --best-of N`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import machine  # noqa: E402
from ganforge.config import config_from_dict, parse_yaml  # noqa: E402
from ganforge.metrics.evaluate import evaluate  # noqa: E402
from ganforge.ranking import generate_best_of, scored_pool  # noqa: E402
from ganforge.refine import generate_refined  # noqa: E402
from ganforge.saved import load_critic, load_sampler  # noqa: E402
from ganforge.train.checkpoint import load_checkpoint  # noqa: E402


@torch.no_grad()
def drs_samples(sampler, critic, num: int, pool: int, quantile: float, seed: int) -> torch.Tensor:
    """Unconditional models only: DRS's acceptance rule on pool x num candidates; the first num accepted."""
    pool_images, d = scored_pool(sampler, critic, num * pool, seed=seed, batch_size=500)
    shifted = d - d.max()
    f = shifted - torch.log1p(-torch.exp(shifted - 1e-6).clamp(max=1 - 1e-6))
    accept = torch.rand(len(d), generator=torch.Generator().manual_seed(seed + 1)) < torch.sigmoid(
        f - torch.quantile(f, quantile))
    kept = pool_images[accept]
    if len(kept) < num:
        raise SystemExit(f"error: DRS at quantile {quantile} accepted {len(kept)} of {len(d)}, fewer than --num")
    return kept[:num]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="run directory (or checkpoint) of an image model with a single D")
    p.add_argument("--data-root", default=None)
    p.add_argument("--best-of", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--drs", type=float, nargs="*", default=[], metavar="Q", help="DRS gamma quantiles to add")
    p.add_argument("--drs-pool", type=int, default=4, help="DRS candidates per requested sample")
    p.add_argument("--refine", nargs="*", default=[], metavar="K:S",
                   help="latent refinement rows: K steps of size S each (ganforge.refine)")
    p.add_argument("--num", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0, help="sampling seed is 10,000 + this (as quality.py)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# best_of: {args.run}, seed {args.seed}, {args.num} samples vs the test images; {machine()}", flush=True)
    state = load_checkpoint(args.run)
    dataset = config_from_dict(parse_yaml(state["config"], str(args.run))).data.name
    sampler, critic = load_sampler(args.run), load_critic(args.run)
    rows = []

    def score(name: str, make) -> None:
        start = time.process_time()
        fake = make()
        r = evaluate(fake, f"{dataset}:test", ["fid", "precision", "recall"], features="domain",
                     data_root=args.data_root, progress=False, seed=args.seed)
        rows.append({"sampling": name, **{k: round(v, 4) for k, v in r.items()},
                     "cpu_s": round(time.process_time() - start, 1)})
        print(f"{name:24s} domain FID {r['fid']:7.3f}  P {r['precision']:.3f}  R {r['recall']:.3f}  "
              f"({rows[-1]['cpu_s']:.0f} CPU-s)", flush=True)

    for n in args.best_of:
        score(f"best of {n}", lambda n=n: generate_best_of(sampler, critic, args.num, best_of=n,
                                                             seed=10_000 + args.seed))
    for q in args.drs:
        if sampler.num_classes:
            raise SystemExit("error: --drs is for unconditional models")
        score(f"DRS, gamma at q{q}", lambda q=q: drs_samples(sampler, critic, args.num, args.drs_pool, q,
                                                             10_000 + args.seed))
    for spec in args.refine:
        steps, step_size = int(spec.split(":")[0]), float(spec.split(":")[1])
        score(f"refined {steps} x {step_size}", lambda k=steps, s=step_size: generate_refined(
            sampler, critic, args.num, steps=k, step_size=s, seed=10_000 + args.seed, batch_size=500))
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "dataset": dataset, "seed": args.seed,
                                         "num": args.num, "machine": machine(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
