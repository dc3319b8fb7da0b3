"""2D mode-collapse benchmark: the ring and grid of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

Protocol (as the papers): ring = 8 Gaussians on the unit circle, std 0.01; grid = 25 Gaussians at
{-4, -2, 0, 2, 4}^2, std 0.05 (`ganforge.data.toy2d`, a fixed 100k-point sample). Every trained model draws
2,500 samples (its EMA generator when the run keeps one; sampling seed = 10,000 + training seed). A sample is
high quality when it lies within 3 std of its nearest mode; a mode is captured when at least one high-quality
sample is nearest to it; reverse KL compares the histogram of nearest modes with the uniform one
(`ganforge.metrics.toy_modes.mode_metrics`).

Every run goes through ganforge's own trainer (`ganforge.train.trainer.train`) with a config built exactly as
`ganforge train --preset P --set KEY=VALUE ...` builds it; the table prints those overrides, so any row can be
re-run from the command line. Rows other than the recommended presets share one baseline setting (BASELINE,
below) and change only what names the remedy.

    python benchmarks/modes2d.py                        # every config, ring and grid, 5 seeds -> RESULTS.md
    python benchmarks/modes2d.py --configs vanilla pacgan4 --datasets grid --seeds 3
    python benchmarks/modes2d.py --quick                # 2 seeds, 1/5 of the steps: a smoke run of the table

Finished runs are cached as JSON under --runs-dir (one file per config, dataset and seed), so an interrupted
benchmark continues where it stopped and `--configs x` refreshes one row; `--fresh` retrains everything.
Seconds per run are wall-clock training time on whatever machine ran it (the table says which).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge import config as C
from ganforge.data import load_dataset
from ganforge.data.toy2d import GRID_STD, RING_STD, grid_centers, ring_centers
from ganforge.metrics.toy_modes import mode_metrics
from ganforge.refine import generate_refined
from ganforge.sampling import generate
from ganforge.saved import load_critic, load_sampler
from ganforge.train.trainer import TrainResult, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import train_timed  # noqa: E402

HERE = Path(__file__).resolve().parent
SECTION = "## 2D mode collapse (ring, grid)"
NUM_SAMPLES = 2500  # samples drawn per trained model (the papers' protocol)
SAMPLE_SEED_OFFSET = 10_000  # sampling seed = this + training seed (never the training noise stream)
DATASETS = {"ring": (ring_centers, RING_STD), "grid": (grid_centers, GRID_STD)}

# The shared setting of every baseline row: a plain MLP GAN on PacGAN's toy protocol (2-D latent, batch 100),
# narrowed to fit a shared 2-core CPU (G and D 3 x 128 instead of G 4 x 400, D 3 x 200 maxout), Adam at a
# constant 1e-3 for 5,000 steps, no EMA. A row changes only what names its remedy.
BASELINE = {
    "model": {"family": "mlp", "latent_dim": 2, "g_hidden": 128, "g_layers": 3, "d_hidden": 128, "d_layers": 3},
    "loss": {"name": "nonsaturating"},
    "train": {"batch_size": 100, "steps": 5000, "lr_g": 1.0e-3, "lr_d": 1.0e-3, "betas_g": [0.5, 0.999],
              "betas_d": [0.5, 0.999]},
}


@dataclass(frozen=True)
class Setting:
    name: str  # the --configs name
    label: str  # the table's row label
    overrides: tuple[str, ...] = ()  # dotted `--set` overrides over the base
    preset: str = ""  # the base preset, "{dataset}" filled in (e.g. "toy-{dataset}"); "": BASELINE


SETTINGS = {s.name: s for s in (
    Setting("vanilla", "GAN, minimax loss (Goodfellow 2014)", ("loss.name=minimax",)),
    Setting("nonsaturating", "GAN, non-saturating loss", ("loss.name=nonsaturating",)),
    Setting("wgan-gp", "WGAN-GP (Gulrajani 2017), 5 critic steps",
            ("loss.name=wasserstein", "loss.regularizers.gp.weight=0.1", "train.n_critic=5",
             "train.betas_g=[0.5,0.9]", "train.betas_d=[0.5,0.9]")),
    Setting("hinge-sn", "hinge loss + spectral norm in D (Miyato 2018)",
            ("loss.name=hinge", "model.d_spectral_norm=true")),
    Setting("pacgan2", "PacGAN2 (Lin 2018): D judges packs of 2", ("model.d_pack=2",)),
    Setting("pacgan4", "PacGAN4: packs of 4", ("model.d_pack=4",)),
    Setting("minibatch-disc", "minibatch discrimination (Salimans 2016)", ("model.d_minibatch_discrimination=true",)),
    Setting("preset", "ganforge preset `toy-ring` / `toy-grid`", preset="toy-{dataset}"),
    # Issue 15's 30-second goal: narrower nets at twice the rate for 8,000 steps, samples refined by the run's D
    # (the presets' `sample` section: ganforge.refine).
    Setting("preset-fast", "ganforge preset `toy-ring-fast` / `toy-grid-fast`", preset="toy-{dataset}-fast"),
    # Time to quality (issue 15): the preset's recipe with 4x the batch, 2x the rate and a quarter of the steps.
    Setting("fast", "preset, batch 1024, lr 2e-3, 5k steps", ("train.batch_size=1024", "train.lr_g=2e-3",
            "train.lr_d=2e-3", "train.steps=5000", "train.ema_kimg=40"), preset="toy-{dataset}"),
)}

# Published results (modes captured, % high-quality samples), as the issue quotes them. The papers' networks,
# step counts and seeds differ from ganforge's; they are context, not a like-for-like comparison.
PUBLISHED = {
    ("vanilla", "ring"): ["GAN 1 / 99.3% (VEEGAN T1)"],
    ("vanilla", "grid"): ["GAN 3.3 / 0.5% (VEEGAN T1)", "GAN 17.3 / 94.8% (PacGAN T1)"],
    ("pacgan2", "ring"): ["PacGAN2 7.9 / 95.6% (PacGAN)"],
    ("pacgan4", "grid"): ["PacGAN4 24.8 / 93.6% (PacGAN T1)"],
    ("wgan-gp", "grid"): ["WGAN-GP 24.2 / 28.7% (GDPP)"],
}
OTHER_PUBLISHED = {"grid": "VEEGAN (Srivastava 2017, Table 1): 24.6 modes / 40% high quality"}  # no ganforge row
GOALS = {"ring": (8.0, 0.986), "grid": (25.0, 0.97)}  # issue 15's goals (the ring's own points score 98.9%)


def build_config(setting: Setting, dataset: str, seed: int, *, quick: bool, ttq_every: int = 0) -> C.Config:
    """The resolved config of one run: preset or BASELINE, then the row's overrides, then seed/dataset."""
    raw = C.load_preset(setting.preset.format(dataset=dataset)) if setting.preset else copy.deepcopy(BASELINE)
    raw.setdefault("data", {})["name"] = dataset
    for assignment in setting.overrides:
        C.apply_override(raw, assignment)
    train_raw = raw.setdefault("train", {})
    if quick:
        train_raw["steps"] = max(100, train_raw.get("steps", 2000) // 5)
    train_raw.update(seed=seed, progress=False, sample_every=10**9, checkpoint_every=10**9)
    if ttq_every:  # time to quality: the mode metrics of 2,500 samples every ttq_every steps during training
        raw["eval"] = {"every": ttq_every, "metrics": ["modes"], "num": NUM_SAMPLES}
    return C.config_from_dict(raw)


def config_hash(cfg: C.Config) -> str:
    """Identifies a resolved config, so a cached result is reused only for exactly the same run."""
    return hashlib.sha256(cfg.to_yaml().encode()).hexdigest()[:16]


def run_one(setting: Setting, dataset: str, seed: int, *, runs_dir: Path, quick: bool, keep_run: bool,
            threads: int = 1, fresh: bool = False, ttq_every: int = 0) -> dict:
    """Train one model through ganforge's trainer, sample it and score the samples."""
    torch.set_num_threads(threads)
    cfg = build_config(setting, dataset, seed, quick=quick, ttq_every=ttq_every)
    cache = cache_path(runs_dir, dataset, setting.name, seed, quick=quick)
    if cache.exists() and not fresh:  # finished meanwhile by another invocation sharing --runs-dir
        record = json.loads(cache.read_text())
        if record.get("config_hash") == config_hash(cfg):
            return record
    run_dir = runs_dir / f"{setting.name}-{dataset}-s{seed}{'-quick' if quick else ''}"
    start, start_cpu = time.perf_counter(), time.process_time()
    ttq = {}
    if ttq_every:
        timed = train_timed(cfg, run_dir)  # evaluation time is taken out of the CPU time
        result = TrainResult(run_dir, timed.steps, None)
        seconds, cpu_seconds = timed.wall_s, timed.train_cpu_s
        goal_modes, goal_hq = GOALS[dataset]
        hit = next((e for e in timed.curve if e["modes"] >= goal_modes and e["high_quality"] >= goal_hq), None)
        ttq = {"curve": timed.curve, "goal_cpu_s": hit and hit["train_cpu_s"], "goal_step": hit and hit["step"]}
    else:
        result = train(cfg, run_dir, overwrite=True)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    sampler = load_sampler(run_dir)  # EMA weights when the run has them, as `ganforge generate` does
    centers, std = DATASETS[dataset]
    start, start_cpu = time.perf_counter(), time.process_time()
    points = generate(sampler, NUM_SAMPLES, seed=SAMPLE_SEED_OFFSET + seed)  # (N, 2)
    metrics = mode_metrics(points, centers(), std)
    refined = {}
    if cfg.sample.refine_steps:  # what `ganforge generate` gives for this run: refined by its D (the plain kept)
        start, start_cpu = time.perf_counter(), time.process_time()
        points = generate_refined(sampler, load_critic(run_dir), NUM_SAMPLES, steps=cfg.sample.refine_steps,
                                  step_size=cfg.sample.refine_step_size, seed=SAMPLE_SEED_OFFSET + seed)
        refined = {"plain": metrics}
        metrics = mode_metrics(points, centers(), std)
    sample_seconds, sample_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if not keep_run:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"config": setting.name, "dataset": dataset, "seed": seed, "config_hash": config_hash(cfg),
            "steps": result.step, "stopped_by": result.stopped_by, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "sample_seconds": round(sample_seconds, 3), "sample_cpu_seconds": round(sample_cpu, 3),
            "num_samples": NUM_SAMPLES, **metrics, **refined, **ttq}


def real_data_reference(dataset: str) -> dict:
    """The metrics of the dataset's own points, 2,500 at a time: the best a perfect generator scores."""
    centers, std = DATASETS[dataset]
    points = load_dataset(C.DataConfig(name=dataset)).data  # (100_000, 2)
    chunks = [mode_metrics(points[i : i + NUM_SAMPLES], centers(), std) for i in range(0, 20 * NUM_SAMPLES,
                                                                                        NUM_SAMPLES)]
    return {k: [c[k] for c in chunks] for k in ("modes", "high_quality", "reverse_kl")}


# ----------------------------------------------------------------------------------------------- report


def _mean_std(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{format(statistics.mean(values), fmt)} ± {format(std, fmt)}"


def _setting_text(setting: Setting, dataset: str) -> str:
    if setting.preset:
        return f"`--preset {setting.preset.format(dataset=dataset)}`"
    return " ".join(f"`{o}`" for o in setting.overrides) or "(baseline)"


def render(results: list[dict], *, settings: list[Setting], datasets: list[str], seeds: list[int],
           quick: bool, command: str) -> str:
    base_text = json.dumps(BASELINE, separators=(", ", ": ")).replace('"', "")
    lines = [
        SECTION,
        "",
        f"Generated by `{command}` (benchmarks/modes2d.py) on {platform.node() or 'this machine'}: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s), {time.strftime('%Y-%m-%d')}."
        + (" **Quick mode: 1/5 of the steps; not the benchmark.**" if quick else ""),
        "",
        f"Protocol: training seeds {', '.join(map(str, seeds))} ({len(seeds)} per row); {NUM_SAMPLES:,} samples per "
        f"trained model (EMA generator when the run keeps one; sampling seed {SAMPLE_SEED_OFFSET:,} + training "
        "seed). High quality: within 3 std of the nearest mode (ring std 0.01, grid std 0.05); a mode is captured "
        "when at least one high-quality sample is nearest to it; reverse KL: histogram of nearest modes vs uniform "
        "(`ganforge.metrics.toy_modes.mode_metrics`). Values are mean ± std over seeds. Seconds: training time per "
        "run (no evaluation), wall-clock and, in brackets, the process's CPU time; on a shared machine the wall "
        "time includes waiting for other jobs, while the single-threaded CPU time is about what the run takes "
        "on an idle core.",
        "",
        f"Baseline rows share `{base_text}` on `data.name=ring|grid` and change only the overrides shown. "
        "Published numbers come from other networks and step counts: context, not a like-for-like comparison.",
        "",
    ]
    for dataset in datasets:
        goal_modes, goal_hq = GOALS[dataset]
        real = real_data_reference(dataset)
        lines += [
            f"### {dataset.capitalize()} ({len(DATASETS[dataset][0]())} modes)",
            "",
            "| config | setting (`--set` overrides) | steps | modes | high quality % | reverse KL | s / run (CPU) | "
            "published (modes / HQ) |",
            "|---|---|---|---|---|---|---|---|",
            f"| real data | the dataset's own points, 20 x {NUM_SAMPLES:,} | - | "
            f"{_mean_std(real['modes'], '.1f')} | {_mean_std([100 * v for v in real['high_quality']], '.1f')} | "
            f"{_mean_std(real['reverse_kl'], '.3f')} | - | - |",
        ]
        for setting in settings:
            rows = [r for r in results if r["config"] == setting.name and r["dataset"] == dataset]
            if not rows:
                continue
            steps = sorted({r["steps"] for r in rows})
            stopped = sum(1 for r in rows if r["stopped_by"])
            label = setting.label + (f" ({stopped} stopped early)" if stopped else "")
            lines.append(
                f"| {label} | {_setting_text(setting, dataset)} | {'/'.join(map(str, steps))} | "
                f"{_mean_std([r['modes'] for r in rows], '.1f')} | "
                f"{_mean_std([100 * r['high_quality'] for r in rows], '.1f')} | "
                f"{_mean_std([r['reverse_kl'] for r in rows], '.3f')} | "
                f"{statistics.mean(r['seconds'] for r in rows):.0f} "
                f"({statistics.mean(r['cpu_seconds'] for r in rows):.0f}) | "
                f"{'; '.join(PUBLISHED.get((setting.name, dataset), [])) or '-'} |"
            )
        timed = [r for r in results if r["dataset"] == dataset and "goal_cpu_s" in r]
        for name in dict.fromkeys(r["config"] for r in timed):
            rows = [r for r in timed if r["config"] == name]
            hits = [r["goal_cpu_s"] for r in rows if r["goal_cpu_s"] is not None]
            lines += ["", f"Time to quality, `{name}` ({goal_modes:.0f} modes and >= {100 * goal_hq:.1f}% high "
                      f"quality, scored every {rows[0]['curve'][0]['step']} steps): {len(hits)}/{len(rows)} seeds "
                      f"reach it; training CPU-s to the goal per seed: "
                      f"{', '.join('-' if r['goal_cpu_s'] is None else str(r['goal_cpu_s']) for r in rows)}."]
        if dataset in OTHER_PUBLISHED:
            lines += ["", f"Also published on the {dataset}: {OTHER_PUBLISHED[dataset]}."]
        fast_rows = [r for r in results if r["config"] == "preset-fast" and r["dataset"] == dataset]
        if fast_rows:
            lines += ["", _fast_goal_line(fast_rows, dataset)]
        preset_rows = [r for r in results if r["config"] == "preset" and r["dataset"] == dataset]
        if preset_rows:
            modes = statistics.mean(r["modes"] for r in preset_rows)
            hq = statistics.mean(r["high_quality"] for r in preset_rows)
            slowest = max(r["seconds"] for r in preset_rows)
            slowest_cpu = max(r["cpu_seconds"] for r in preset_rows)
            met = modes >= goal_modes and hq >= goal_hq and slowest_cpu <= 300
            lines += ["", f"Goal for `toy-{dataset}`: {goal_modes:.0f} modes and ≥ {100 * goal_hq:.1f}% high quality "
                      f"over the seeds, ≤ 5 min per run. Reached: {modes:.1f} modes, {100 * hq:.1f}% high quality, "
                      f"slowest run {slowest:.0f} s wall, {slowest_cpu:.0f} s CPU: **{'met' if met else 'not met'}**."]
        lines.append("")
    return "\n".join(lines)


def _fast_goal_line(rows: list[dict], dataset: str) -> str:
    """Issue 15's toy goal for `toy-<dataset>-fast`: the modes and high-quality share, each seed's run (training and
    drawing the refined samples) within 30 s wall-clock; the plain samples' share beside it."""
    goal_modes, goal_hq = GOALS[dataset]
    per_seed = [r["seconds"] + r.get("sample_seconds", 0.0) for r in rows]
    hits = sum(r["modes"] >= goal_modes and r["high_quality"] >= goal_hq and t <= 30 for r, t in zip(rows, per_seed))
    modes = statistics.mean(r["modes"] for r in rows)
    hq = statistics.mean(r["high_quality"] for r in rows)
    plain = [r["plain"] for r in rows if "plain" in r] or [r for r in rows]  # unrefined rows: their own samples
    met = modes >= goal_modes and hq >= goal_hq and max(per_seed) <= 30
    per_seed_hq = ", ".join(f"{100 * r['high_quality']:.1f}" for r in rows)
    return (f"Goal for `toy-{dataset}-fast` (issue 15): {goal_modes:.0f} modes and >= {100 * goal_hq:.1f}% high "
            f"quality in <= 30 s wall-clock per run. Reached: {modes:.1f} modes, {100 * hq:.1f}% high quality (refined "
            f"samples, per seed {per_seed_hq}; plain samples "
            f"{statistics.mean(p['modes'] for p in plain):.1f} modes, "
            f"{100 * statistics.mean(p['high_quality'] for p in plain):.1f}%), mode spread "
            f"{statistics.mean(r['mode_spread'] for r in rows):.2f} refined, "
            f"{statistics.mean(p['mode_spread'] for p in plain):.2f} plain (the data 0.97), {max(per_seed):.1f} s "
            f"wall for the slowest run (training + refined sampling: {min(per_seed):.1f}-{max(per_seed):.1f} s; "
            f"{statistics.mean(r['cpu_seconds'] for r in rows):.1f} training CPU-s on average); {hits}/{len(rows)} "
            f"seeds meet all three: **{'met' if met else 'not met'}**.")


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it), leaving the other sections alone."""
    text = path.read_text() if path.exists() else "# ganforge benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text.rstrip("\n") + "\n")


# ------------------------------------------------------------------------------------------------- main


def cache_path(runs_dir: Path, dataset: str, config: str, seed: int, *, quick: bool) -> Path:
    return runs_dir / f"{config}-{dataset}-s{seed}{'-quick' if quick else ''}.json"


def report(done: int, total: int, record: dict, origin: str) -> None:
    print(f"[{done}/{total}] {record['dataset']} {record['config']} seed {record['seed']}: {record['modes']:.0f} "
          f"modes, {100 * record['high_quality']:.1f}% high quality, reverse KL {record['reverse_kl']:.3f} "
          f"({record['steps']} steps; {origin})" + (f"; goal reached at {record['goal_cpu_s']} CPU-s (step "
                                                    f"{record['goal_step']})" if record.get("goal_cpu_s") else
                                                    "; goal not reached" if "goal_cpu_s" in record else ""),
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, help="training seeds per row: 0 .. N-1 (default 5; 2 with --quick)")
    parser.add_argument("--configs", nargs="+", choices=list(SETTINGS), default=list(SETTINGS), metavar="NAME",
                        help=f"rows to run (default: all): {', '.join(SETTINGS)}")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--quick", action="store_true", help="2 seeds and 1/5 of the steps (a smoke run)")
    parser.add_argument("--runs-dir", type=Path, default=HERE / "runs" / "modes2d",
                        help="run directories and cached per-run results (default: benchmarks/runs/modes2d)")
    parser.add_argument("--fresh", action="store_true", help="retrain even where a cached result exists")
    parser.add_argument("--keep-runs", action="store_true", help="keep run directories (checkpoints, samples)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="markdown file to update")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per run (default 1: tiny MLPs run fastest single-threaded)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained at once, one process each (default 1; wall times then include contention)")
    parser.add_argument("--ttq-every", type=int, default=0,
                        help="time to quality: score the modes every N steps during training and report the "
                             "training CPU time to the goal (ring 8 modes / 98.6%%, grid 25 / 97%%)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    settings = [SETTINGS[name] for name in args.configs]
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/modes2d.py " + " ".join(argv if argv is not None else sys.argv[1:])

    total = len(settings) * len(args.datasets) * len(seeds)
    print(f"modes2d: {len(settings)} configs x {len(args.datasets)} datasets x {len(seeds)} seeds "
          f"({', '.join(map(str, seeds))}) = {total} runs; {NUM_SAMPLES} samples per model, {args.jobs} at a time"
          + ("; quick mode (1/5 of the steps)" if args.quick else ""), flush=True)
    results: dict[tuple[str, str, int], dict] = {}
    todo = []
    for dataset in args.datasets:
        for setting in settings:
            for seed in seeds:
                key = (dataset, setting.name, seed)
                cache = cache_path(args.runs_dir, *key, quick=args.quick)
                wanted = config_hash(build_config(setting, dataset, seed, quick=args.quick, ttq_every=args.ttq_every))
                record = json.loads(cache.read_text()) if cache.exists() and not args.fresh else None
                if record is not None and record.get("config_hash") == wanted:
                    results[key] = record
                    report(len(results), total, record, "cached")
                else:
                    todo.append((setting, dataset, seed))
    kwargs = {"runs_dir": args.runs_dir, "quick": args.quick, "keep_run": args.keep_runs, "threads": args.threads,
              "fresh": args.fresh, "ttq_every": args.ttq_every}
    # A fresh process per run: no state (threads, RNG, caches) leaks from one run into the next.
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_one, setting, dataset, seed, **kwargs) for setting, dataset, seed in todo]
        for future in futures:
            record = future.result()
            key = (record["dataset"], record["config"], record["seed"])
            cache_path(args.runs_dir, *key, quick=args.quick).write_text(json.dumps(record, indent=1) + "\n")
            results[key] = record
            report(len(results), total, record, f"{record['seconds']:.0f} s, {record['cpu_seconds']:.0f} s CPU")
    # The table shows every row whose seeds are all done with today's configs, also rows run by an earlier
    # call (so `--configs x` refreshes one row and keeps the others).
    for dataset in DATASETS:
        for setting in SETTINGS.values():
            for seed in seeds:
                cache = cache_path(args.runs_dir, dataset, setting.name, seed, quick=args.quick)
                if (dataset, setting.name, seed) in results or not cache.exists():
                    continue
                record = json.loads(cache.read_text())
                if record.get("config_hash") == config_hash(build_config(setting, dataset, seed, quick=args.quick,
                                                                         ttq_every=args.ttq_every)):
                    results[(dataset, setting.name, seed)] = record
    shown = [(d, s) for d in DATASETS for s in SETTINGS.values() if all((d, s.name, n) in results for n in seeds)]
    section = render([results[(d, s.name, n)] for d, s in shown for n in seeds],
                     settings=[s for s in SETTINGS.values() if any(s is t for _, t in shown)],
                     datasets=[d for d in DATASETS if any(d == e for e, _ in shown)], seeds=seeds,
                     quick=args.quick, command=command.strip())
    print("\n" + section)
    write_section(args.out, section)
    print(f"updated {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
