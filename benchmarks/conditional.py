"""Conditional GANs (concat and projection D), ACGAN and InfoGAN on MNIST and Fashion-MNIST.

Every run trains through ganforge's own trainer from a preset (the table prints preset and overrides, so any
row is `ganforge train --preset P --set ...`), for a CPU-time budget: a short calibration run measures CPU
seconds per step, then the real run takes as many steps as `--cpu-minutes` allows (or exactly `--steps`).

Scores (10,000 samples from the EMA generator, sampling seed 1, classes cycling 0..9):
  - conditional runs: GAN-test accuracy (ganforge's MNIST domain classifier reads each sample; share equal to
    the requested class), CAS (a fresh domain CNN trained on the fakes and their classes, 2 epochs, scored on
    the real MNIST test set), domain FID against the MNIST test set;
  - InfoGAN: agreement of the categorical code c0 with the class after the best one-to-one matching
    (scipy's linear_sum_assignment), two ways: Q's argmax on the real test set (10,000 images; the protocol of
    ClusterGAN's clustering accuracy), and c0 set to k for generated samples read by the domain classifier
    (MNIST only: the Fashion classifier reaches 91.6% on real data, which would bound the figure).

    python benchmarks/conditional.py                                   # every run, 4 CPU-minutes each
    python benchmarks/conditional.py --runs acgan cgan-projection --cpu-minutes 30   # longer runs
    python benchmarks/conditional.py --steps 20000 --device cuda       # fixed steps, e.g. on a GPU

Results go to --out (one JSON per run; a finished run is not retrained unless --fresh) and a markdown table
is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from ganforge import config as C
from ganforge.train.trainer import Trainer, prepare_run_dir, train

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = Path(os.environ.get("GANFORGE_SHARED", HERE.parent.parent / "shared")) / "data"
SAMPLE_SEED = 1
CALIBRATION_STEPS = 30

# name -> (preset, overrides, kind)
RUNS: dict[str, tuple[str, list[str], str]] = {
    "acgan": ("acgan-mnist", [], "conditional"),
    "acgan-paper": ("acgan-mnist", ["model.class_weight_fake=1"], "conditional"),
    "cgan-projection": ("cgan-mnist", [], "conditional"),
    "infogan-mnist": ("infogan-mnist", [], "infogan"),
    "cgan-concat": ("cgan-mnist", ["model.d_condition=concat"], "conditional"),
    "infogan-fashion": ("infogan-fashion", [], "infogan"),
}


def build_config(preset: str, overrides: list[str], args, *, steps: int) -> C.Config:
    raw = C.load_preset(preset)
    for assignment in [*overrides, f"data.root={args.data_root}", "data.download=false", "train.progress=false",
                       f"train.seed={args.seed}", f"train.steps={steps}", f"train.cpu_threads={args.threads}",
                       f"train.device={args.device}", f"train.checkpoint_every={max(steps, 1)}",
                       f"train.sample_every={max(steps // 4, 1)}"]:
        C.apply_override(raw, assignment)
    return C.config_from_dict(raw)


def cpu_seconds_per_step(preset: str, overrides: list[str], args, folder: Path) -> float:
    """CPU seconds of one training step (setup excluded), from a short throwaway run."""
    cfg = build_config(preset, overrides, args, steps=CALIBRATION_STEPS)
    prepare_run_dir(folder, overwrite=True)
    trainer = Trainer(cfg, folder)
    start = time.process_time()
    trainer.fit()
    seconds = (time.process_time() - start) / CALIBRATION_STEPS
    shutil.rmtree(folder)
    return seconds


def score_conditional(run_dir: Path, args) -> dict[str, float]:
    from ganforge.metrics.evaluate import evaluate
    from ganforge.sampling import class_cycle
    from ganforge.saved import load_sampler

    sampler = load_sampler(run_dir)
    labels = class_cycle(args.num, sampler.num_classes)
    fake = sampler.generate(args.num, seed=SAMPLE_SEED, labels=labels)
    return evaluate(fake, "mnist:test", ["gan_test", "cas", "fid"], fake_labels=labels, data_root=args.data_root,
                    features="domain", progress=False, seed=0)


def score_infogan(run_dir: Path, dataset: str, args) -> dict[str, float]:
    from ganforge.metrics.clustering import cluster_accuracy
    from ganforge.metrics.sources import resolve_real
    from ganforge.models import FAMILIES, DataSpec
    from ganforge.saved import load_sampler
    from ganforge.train.checkpoint import load_checkpoint

    state = load_checkpoint(run_dir)
    cfg = C.config_from_dict(C.parse_yaml(state["config"], str(run_dir)))
    spec = DataSpec.from_dict(state["spec"])
    D = FAMILIES["infogan"].networks(cfg.model, spec)["D"]()
    D.load_state_dict(state["networks"]["D"])
    D.eval()
    test = resolve_real(f"{dataset}:test", data_root=args.data_root, download=False)
    k = cfg.model.categorical_codes[0]
    with torch.inference_mode():
        q = torch.cat([D(x.float().div(127.5).sub(1.0), aux=True)[1][:, :k].argmax(1) for x in test.data.split(500)])
    out = {"q_test_agreement": cluster_accuracy(q, test.labels)}
    if dataset == "mnist":
        from ganforge.metrics.domain import load_domain_extractor

        sampler = load_sampler(run_dir)
        codes = torch.arange(args.num) % k
        fake = sampler.generate(args.num, seed=SAMPLE_SEED, codes={"c0": codes})
        extractor = load_domain_extractor("mnist", data_root=args.data_root, progress=False)
        with torch.inference_mode():
            predicted = torch.cat([extractor(b)["logits"].argmax(1) for b in fake.split(500)])
        out["generated_agreement"] = cluster_accuracy(codes, predicted)
    return out


def run_one(name: str, args) -> dict:
    preset, overrides, kind = RUNS[name]
    target = args.out / f"{name}.json"
    if target.exists() and not args.fresh:
        return json.loads(target.read_text())
    torch.set_num_threads(args.threads)
    per_step = None
    if args.steps is None:
        per_step = cpu_seconds_per_step(preset, overrides, args, args.out / f"{name}-calibration")
        steps = max(CALIBRATION_STEPS, int(args.cpu_minutes * 60 / per_step))
    else:
        steps = args.steps
    cfg = build_config(preset, overrides, args, steps=steps)
    run_dir = args.out / name
    start = time.process_time()
    wall = time.perf_counter()
    train(cfg, run_dir, overwrite=True)
    cpu = time.process_time() - start
    wall = time.perf_counter() - wall
    eval_start = time.process_time()
    dataset = cfg.data.name
    scores = score_conditional(run_dir, args) if kind == "conditional" else score_infogan(run_dir, dataset, args)
    record = {"name": name, "preset": preset, "overrides": overrides, "dataset": dataset, "steps": steps,
              "batch_size": cfg.train.batch_size, "epochs": steps * cfg.train.batch_size / 60_000,
              "train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1), "cpu_s_per_step": per_step,
              "eval_cpu_s": round(time.process_time() - eval_start, 1), "seed": args.seed, "num": args.num,
              "scores": scores,
              "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                         f"{args.threads} thread(s), device {args.device}"}
    target.write_text(json.dumps(record, indent=2) + "\n")
    return record


def table(records: list[dict]) -> str:
    lines = ["| run | preset (overrides) | steps (epochs) | train CPU | GAN-test | CAS | domain FID | "
             "code agreement: Q on test / generated |", "|" + " --- |" * 8]
    for r in records:
        s = r["scores"]

        def pct(key: str, s: dict = s) -> str:
            return f"{100 * s[key]:.2f}%" if key in s else ""

        fid = f"{s['fid']:.2f}" if "fid" in s else ""
        agree = " / ".join(x for x in (pct("q_test_agreement"), pct("generated_agreement")) if x)
        preset = r["preset"] + (f" (`{' '.join('--set ' + o for o in r['overrides'])}`)" if r["overrides"] else "")
        lines.append(f"| {r['name']} | {preset} | {r['steps']} ({r['epochs']:.2f}) | {r['train_cpu_s'] / 60:.1f} min | "
                     f"{pct('gan_test_acc')} | {pct('cas')} | {fid} | {agree} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS), help="which runs (default: all)")
    p.add_argument("--cpu-minutes", type=float, default=4.0, help="CPU-time budget of each run's training")
    p.add_argument("--steps", type=int, help="train exactly this many steps instead of a CPU budget")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--num", type=int, default=10_000, help="generated samples scored per run")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: CPU time is comparable)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--data-root", type=Path, default=DEFAULT_ROOT, help="folder with MNIST / FashionMNIST")
    p.add_argument("--out", type=Path, default=HERE / "runs" / "conditional", help="run folders and JSON results")
    p.add_argument("--fresh", action="store_true", help="retrain runs that already have results")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for name in args.runs:
        record = run_one(name, args)
        records.append(record)
        print(json.dumps(record), flush=True)
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
