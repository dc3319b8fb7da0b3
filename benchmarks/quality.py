"""Image quality of the recommended presets `mnist` and `fashion-mnist`, by the protocol of Lucic et al. 2018.

Those two are conditional (they train on the labels); `mnist-unconditional` and `fashion-mnist-unconditional`
are the same recipe without labels, the setting of the published figures. A conditional model's samples take
their classes in the training set's proportions.

Protocol ("Are GANs Created Equal?", Lucic et al. 2018): Inception FID of 10,000 generated images against the
10,000 test images, grayscale tiled to RGB (ganforge's fast Inception path, `--resize legacy`: bilinear, as the
TF FID code; `--resize clean` for antialiased bicubic). Published best (mean +- std over seeds): MNIST 6.7 +- 0.4
(WGAN), 6.8 (NS GAN); Fashion-MNIST 21.5 +- 1.6 (WGAN), 15.8 +- 1.1 (PA-GAN). Also reported: domain FID (the
dataset's small CNN) and precision/recall (k = 3, domain features) of --num-domain samples against the test
images, and a domain-FID-vs-training-CPU-minutes curve from the periodic evaluations during training (domain
FID of --eval-num samples against 10,000 training images every --eval-every steps).

    python benchmarks/quality.py --data-root /work/shared/data                        # full: presets as shipped
    python benchmarks/quality.py --data-root /work/shared/data --presets mnist --steps 600 --num 1000

`--steps` shortens a run (the LR schedule then spans the shorter run), `--num` scores fewer Inception samples
(FID is biased upwards at small N: compare figures only at equal N). Training CPU time is process time of this
single-threaded process with the evaluations taken out. Grids of the final models go to --grids.
`--skip-inception --json F` then `--inception-only F` splits the training from the Inception scoring.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import REPO, build_config, machine, train_timed  # noqa: E402
from ganforge.config import config_from_dict, parse_yaml  # noqa: E402
from ganforge.data import load_dataset  # noqa: E402
from ganforge.devices import select_device  # noqa: E402
from ganforge.metrics.evaluate import evaluate  # noqa: E402
from ganforge.refine import DEFAULT_STEP_SIZE  # noqa: E402
from ganforge.saved import critic_from_state, critic_guided_samples, sampler_from_state  # noqa: E402
from ganforge.train.checkpoint import load_checkpoint, resolve_checkpoint  # noqa: E402

PUBLISHED = {"mnist": "6.7 +- 0.4 (WGAN), 6.8 (NS GAN)", "fashion-mnist": "21.5 +- 1.6 (WGAN), 15.8 +- 1.1 (PA-GAN)"}
GOALS = {"mnist": 5.0, "fashion-mnist": 15.0}


def run_one(preset: str, seed: int, args: argparse.Namespace) -> dict:
    overrides = [f"train.seed={seed}", f"train.cpu_threads={args.threads}", f"train.device={args.device}",
                 "train.progress=false",
                 f"eval.every={args.eval_every}", "eval.metrics=[fid]", f"eval.num={args.eval_num}",
                 "eval.features=domain"]
    if args.steps:
        overrides += [f"train.steps={args.steps}"]
    overrides += args.set
    cfg = build_config(preset, overrides, data_root=args.data_root)
    if args.steps:
        cfg.train.epochs = None
    cfg.train.sample_every = cfg.train.checkpoint_every = min(cfg.train.sample_every, args.steps or 10**9)
    run = train_timed(cfg, args.out / f"{preset}-seed{seed}")
    cpu = time.process_time()
    row = {"preset": preset, "seed": seed, "steps": run.steps, "batch_size": cfg.train.batch_size,
           "train_cpu_min": round(run.train_cpu_s / 60, 2), "wall_min": round(run.wall_s / 60, 1),
           "curve": [(round(e["train_cpu_s"] / 60, 2), e["step"], round(e["fid"], 2)) for e in run.curve]}
    if args.set:
        row["overrides"] = list(args.set)  # a row made with --set is not the preset as shipped: say so
    row |= final_scores(run.run_dir, cfg.data.name, seed, args, inception=not args.skip_inception)
    row["eval_cpu_min"] = round((time.process_time() - cpu) / 60, 1)
    print(json.dumps(row), flush=True)
    if args.grids:
        args.grids.mkdir(parents=True, exist_ok=True)
        grid = sorted((run.run_dir / "samples").glob("step-*.png"))[-1]
        shutil.copyfile(grid, args.grids / f"{preset}-seed{seed}.png")
    return row


def final_scores(run_dir: Path, dataset: str, seed: int, args: argparse.Namespace, *, inception: bool) -> dict:
    """Domain FID / precision / recall / class mix (class_tv) of --num-domain final samples against the test
    images, and (`inception`) the Inception FID of the first --num of the same samples."""
    state, source = load_checkpoint(run_dir), resolve_checkpoint(run_dir)  # read once: G, and D for --best-of
    sampler = sampler_from_state(state, source, device=args.device)
    critic = critic_from_state(state, source, device=args.device) if args.best_of > 1 or args.refine_steps else None
    test = f"{dataset}:test"
    num = max(args.num, args.num_domain)
    labels = class_counts(training_class_counts(state, sampler, args), num) if sampler.num_classes else None
    fake = final_samples(sampler, critic, labels, seed, args)
    domain = evaluate(fake[: args.num_domain], test, ["fid", "precision", "recall", "classes"], features="domain",
                      device=args.device, data_root=args.data_root, progress=False, seed=seed)
    row = {"domain_fid": round(domain["fid"], 3), "precision": round(domain["precision"], 3),
           "recall": round(domain["recall"], 3), "class_tv": round(domain["class_tv"], 3),
           "num_domain": args.num_domain}
    if args.best_of > 1:
        row["best_of"] = args.best_of
    if args.refine_steps:
        row["refine"] = f"{args.refine_steps} x {args.refine_step_size}"
    return row | (inception_fid(fake, test, seed, args) if inception else {})


def final_samples(sampler, critic, labels: torch.Tensor | None, seed: int, args: argparse.Namespace
                  ) -> torch.Tensor:
    """The final model's samples every score uses, max(--num, --num-domain) of them: sampling seed 10,000 +
    training seed (not training noise); with --best-of N, the best of N times as many by the run's D; with
    --refine-steps N, each noise moved N steps uphill on D (ganforge.refine). A
    conditional model draws the classes `labels` (class_counts), not cycling evenly."""
    num = len(labels) if labels is not None else max(args.num, args.num_domain)
    if args.best_of > 1 or args.refine_steps:
        return critic_guided_samples(sampler, critic, num, best_of=args.best_of, refine_steps=args.refine_steps,
                                     refine_step_size=args.refine_step_size, seed=10_000 + seed, labels=labels,
                                     batch_size=500 if args.refine_steps else 256)
    with torch.no_grad():
        return sampler.generate(num, seed=10_000 + seed, labels=labels)


def training_class_counts(state: dict, sampler, args: argparse.Namespace) -> torch.Tensor:
    """How many training examples each class of the run had: stored in the sampler's spec for a run on k-means
    clusters, else counted from the dataset's labels (runs from before the spec kept them re-cluster: load_dataset
    makes the same clusters again from the stored config, deterministically)."""
    if sampler.spec.class_counts:
        return torch.tensor(sampler.spec.class_counts)
    cfg = config_from_dict(parse_yaml(state["config"], "the run's stored config"))
    cfg.data.root = str(args.data_root) if args.data_root else cfg.data.root
    return torch.bincount(load_dataset(cfg.data).labels)


def class_counts(train_counts: torch.Tensor, num: int) -> torch.Tensor:
    """`num` class labels, sorted, each class as often as its share of the training examples (largest
    remainder): as an unconditional model would learn them."""
    share = train_counts.double() / train_counts.sum() * num
    counts = share.floor().long()
    counts[(share - counts).argsort(descending=True)[: num - int(counts.sum())]] += 1
    return torch.repeat_interleave(torch.arange(len(counts)), counts)


def inception_fid(fake: torch.Tensor, test: str, seed: int, args: argparse.Namespace) -> dict:
    """Inception FID of the first --num samples against --num test images, with its CPU minutes."""
    start = time.process_time()
    inc = evaluate(fake[: args.num], test, ["fid"], features="inception", num_real=args.num, resize=args.resize,
                   device=args.device, data_root=args.data_root, progress=True, seed=seed)
    return {"inception_fid": round(inc["fid"], 2), "num_inception": args.num,
            "inception_cpu_min": round((time.process_time() - start) / 60, 1)}


def score_again(row: dict, args: argparse.Namespace) -> dict:
    """Add the Inception FID to a row of an earlier --skip-inception run, from its run folder under --out."""
    run_dir = args.out / f"{row['preset']}-seed{row['seed']}"
    dataset = build_config(row["preset"], [], data_root=args.data_root).data.name
    args.num_domain = row["num_domain"]  # the first pass's samples (or, with --best-of, scored afresh)
    kept = {k: v for k, v in row.items() if k not in ("best_of", "refine")}
    row = kept | final_scores(run_dir, dataset, row["seed"], args, inception=True)
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| preset | seed | steps | train CPU min | Inception FID (N gen vs N test) | domain FID | precision "
             "| recall | published best | goal |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        inc = f"{r['inception_fid']} (N = {r['num_inception']})" if "inception_fid" in r else "not run"
        preset = r["preset"] + "".join(f" `{o}`" for o in r.get("overrides", []))
        preset += f" (best of {r['best_of']})" if r.get("best_of", 1) > 1 else ""
        preset += f" (refined {r['refine']})" if r.get("refine") else ""
        dataset = r["preset"].removesuffix("-unconditional")  # the published figures are per dataset
        lines.append(f"| {preset} | {r['seed']} | {r['steps']} | {r.get('train_cpu_min', '-')} | {inc} | "
                     f"{r['domain_fid']} | {r['precision']} | {r['recall']} | {PUBLISHED.get(dataset, '')} | "
                     f"<= {GOALS.get(dataset, '')} |")
    lines.append("")
    lines.append("Domain FID during training (train CPU minutes: FID):")
    for r in rows:
        lines.append(f"- {r['preset']} seed {r['seed']}: " + ", ".join(f"{m}: {f}" for m, _, f in r.get("curve", [])))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with the datasets (torchvision layout)")
    parser.add_argument("--presets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=0, help="train this many steps instead of the preset's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides")
    parser.add_argument("--num", type=int, default=10_000, help="generated and test images for Inception FID")
    parser.add_argument("--num-domain", type=int, default=10_000, help="generated images for domain FID and P/R")
    parser.add_argument("--resize", default="legacy", choices=["legacy", "clean"], help="Inception resize")
    parser.add_argument("--skip-inception", action="store_true", help="domain metrics only (minutes, not hours)")
    parser.add_argument("--eval-every", type=int, default=500, help="steps between domain FIDs in training")
    parser.add_argument("--eval-num", type=int, default=2000, help="samples per domain FID in training")
    parser.add_argument("--inception-only", type=Path, metavar="JSON",
                        help="no training: add the Inception FID to the rows of an earlier --skip-inception run's "
                             "--json, sampling its run folders under --out again")
    parser.add_argument("--best-of", type=int, default=1, metavar="N",
                        help="score the best --num of N x --num final samples by the run's D (ganforge.ranking)")
    parser.add_argument("--refine-steps", type=int, default=0, metavar="N",
                        help="score final samples whose noise moved N steps uphill on the run's D (ganforge.refine)")
    parser.add_argument("--refine-step-size", type=float, default=DEFAULT_STEP_SIZE, metavar="S")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto",
                        help="training, sampling and features: auto (cuda when there is one), cuda, cpu, ...")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "quality")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--grids", type=Path, help="copy the final sample grids here")
    args = parser.parse_args()
    args.device = str(select_device(args.device))
    torch.set_num_threads(args.threads)
    print(f"# quality: presets {args.presets}, seeds {args.seeds}, steps {args.steps or 'as preset'}, Inception N "
          f"{args.num}; {machine()}", flush=True)
    if args.inception_only:
        rows = [score_again(row, args) for row in json.loads(args.inception_only.read_text())]
    else:
        rows = [run_one(p, s, args) for p in args.presets for s in args.seeds]
    if args.json:  # first: the rows cost CPU-hours, the table is only their view
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    print(f"# {machine()}")


if __name__ == "__main__":
    main()
