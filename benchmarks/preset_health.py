"""Does the health monitor stay quiet on the shipped presets' real runs?

A monitor that warns on healthy runs gets ignored, so every shipped preset's final run must end with "no
problems detected". This trains each preset through ganforge's own trainer (the config built exactly as
`ganforge train --preset P --set ...` builds it, plus `train.cpu_threads=1`, `train.progress=false`), at its
real length or at the fraction given in PRESETS (the long image presets do not fit a shared 2-core CPU), keeps
each run's `metrics.jsonl` and prints / appends a table of the health summaries.

    python benchmarks/preset_health.py                      # train every preset, table -> RESULTS.md
    python benchmarks/preset_health.py --presets default    # one preset
    python benchmarks/preset_health.py --replay             # re-judge the kept runs with today's thresholds

`--replay` feeds the kept `metrics.jsonl` ticks through a fresh `HealthMonitor` built from the preset's
config with the current defaults: the way the thresholds in `ganforge.train.health.HealthConfig` were
calibrated without retraining (the trainer gives the monitor exactly these per-tick means; nothing in the
presets rolls back, so the replay follows the same trajectory).

MNIST presets need the torchvision files in --data-root (../shared/data); dcgan-64 trains on a folder of
Fashion-MNIST images written once as PNGs (it ships pointing at "your images").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTION = "## Health monitor on the presets' real runs"


@dataclass(frozen=True)
class PresetRun:
    steps: int | None = None  # None: the preset's own length; else the steps run (a stated fraction)
    overrides: tuple[str, ...] = ()  # extra --set assignments (data location only: never the training recipe)
    needs: str = ""  # "mnist" (../shared/data) or "folder" (Fashion-MNIST written as PNGs)
    note: str = field(default="", compare=False)


# Full length unless a fraction is stated; the overrides only say where the data is. The fractions fit the run
# into a CPU budget shared with six other jobs (the table states them); a fraction keeps the preset's schedule
# shape (a linear LR decay still reaches 0 at the last step), only compressed.
PRESETS: dict[str, PresetRun] = {
    "default": PresetRun(),
    "toy-ring": PresetRun(steps=5000, note="5,000 of 20,000 steps"),
    "toy-grid": PresetRun(steps=5000, note="5,000 of 20,000 steps"),
    "mlp-mnist": PresetRun(steps=1500, needs="mnist", note="1,500 of 10,000 steps"),
    "seed001": PresetRun(steps=235, needs="mnist", note="1 of 50 epochs (235 of 11,719 steps)"),
    "dcgan-64": PresetRun(steps=300, needs="folder",
                          note="300 of 20,000 steps, on 4,000 Fashion-MNIST images as 64x64 RGB"),
}


def preset_config(name: str, data_root: Path, folder: Path, steps: int | None):
    """The resolved Config of `ganforge train --preset name` with the data location and length set."""
    from ganforge import config as C

    raw = C.load_preset(name)
    run = PRESETS[name]
    assignments = list(run.overrides) + ["train.cpu_threads=1", "train.progress=false"]
    if run.needs == "mnist":
        assignments += [f"data.root={data_root}", "data.download=false"]
    elif run.needs == "folder":
        assignments += [f"data.root={folder}"]
    if steps is not None:
        assignments += [f"train.steps={steps}", "train.epochs=null"]
    for assignment in assignments:
        C.apply_override(raw, assignment)
    return C.config_from_dict(raw)


def write_folder(data_root: Path, folder: Path, count: int = 4000) -> None:
    """Fashion-MNIST's first `count` training images as PNG files (once): a real folder for dcgan-64."""
    if folder.exists() and len(list(folder.glob("*.png"))) >= count:
        return
    from PIL import Image
    from torchvision.datasets import FashionMNIST

    folder.mkdir(parents=True, exist_ok=True)
    images = FashionMNIST(str(data_root), train=True, download=False).data[:count].numpy()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")


def kept_ticks(run_dir: Path) -> list[dict]:
    """The per-tick stats of run_dir/metrics.jsonl in step order (events left out)."""
    ticks: dict[int, dict] = {}  # by step: a resumed run logs again the ticks after its checkpoint (same values)
    with open(run_dir / "metrics.jsonl") as f:
        for line in f:
            record = json.loads(line)
            if "event" not in record:
                ticks[record["step"]] = record
    return [{k: v for k, v in ticks[step].items() if k not in ("kimg", "images_per_s") and not k.startswith("lr_")}
            for step in sorted(ticks)]


def replay(name: str, run_dir: Path, cfg) -> str:
    """The end-of-run summary today's HealthMonitor gives for the ticks kept in run_dir/metrics.jsonl."""
    from ganforge.train.health import HealthMonitor

    monitor = HealthMonitor(cfg.health)
    for tick in kept_ticks(run_dir):
        monitor.observe(tick["step"], {k: v for k, v in tick.items() if k != "step"})
    return monitor.summary()


def oscillation_margin(run_dir: Path, cfg) -> float:
    """The largest oscillation_amplitude at which some window of the run holds oscillation_min_swings swings:
    the run stays quiet for any threshold above it (the calibration's evidence, per preset)."""
    import statistics

    from ganforge.train.health import DIVERSITY_LEVEL, OSCILLATION_KEYS, _count_swings

    h = cfg.health
    ticks = kept_ticks(run_dir)[h.warmup_ticks:]  # the monitor's windows skip the warm-up ticks
    worst = 0.0
    for key in OSCILLATION_KEYS:
        series = [t[key] for t in ticks if key in t]
        floor = DIVERSITY_LEVEL if key == "diversity" else h.loss_floor
        for end in range(h.oscillation_min_swings + 1, len(series) + 1):
            window = series[max(0, end - h.oscillation_window):end]
            level = max(statistics.median(abs(v) for v in window), floor)
            low, high = 0.0, 10.0
            for _ in range(40):  # bisection: swings only fall as the threshold rises
                mid = (low + high) / 2
                swings = _count_swings(window, mid * level)
                low, high = (mid, high) if swings >= h.oscillation_min_swings else (low, mid)
            worst = max(worst, low)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    shared = Path(os.environ.get("GANFORGE_SHARED", HERE.parent.parent / "shared"))  # as tests/conftest.py
    parser.add_argument("--data-root", default=str(shared / "data"), help="MNIST / Fashion-MNIST files")
    parser.add_argument("--runs-dir", default=str(HERE / "runs" / "preset_health"))
    parser.add_argument("--replay", action="store_true", help="re-judge kept runs; train nothing")
    parser.add_argument("--no-results", action="store_true", help="print the table only")
    args = parser.parse_args(argv)

    import torch

    from ganforge.train.trainer import train

    torch.set_num_threads(1)
    runs_dir, data_root = Path(args.runs_dir), Path(args.data_root)
    folder = runs_dir / "fashion-png"
    records_path = runs_dir / "records.json"
    records = json.loads(records_path.read_text()) if records_path.exists() else {}
    for name in args.presets:
        run = PRESETS[name]
        cfg = preset_config(name, data_root, folder, run.steps)
        run_dir = runs_dir / name
        if args.replay:
            if not (run_dir / "metrics.jsonl").exists():
                print(f"{name}: no kept run in {run_dir}", file=sys.stderr)
                continue
            records.setdefault(name, {})["summary"] = replay(name, run_dir, cfg)
        else:
            if run.needs == "folder":
                write_folder(data_root, folder)
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            result = train(cfg, run_dir, overwrite=True)
            records[name] = {"steps": result.step, "cpu_s": round(time.process_time() - start_cpu, 1),
                             "wall_s": round(time.perf_counter() - start_wall, 1),
                             "recorded_summary": (run_dir / "health.txt").read_text().strip()}
            records[name]["summary"] = replay(name, run_dir, cfg)
        records[name]["note"] = run.note or f"full length ({records[name].get('steps', '?')} steps)"
        records[name]["oscillation_margin"] = round(oscillation_margin(run_dir, cfg), 3)
        print(f"{name}: {records[name]['summary']}", flush=True)
        runs_dir.mkdir(parents=True, exist_ok=True)
        records_path.write_text(json.dumps(records, indent=2) + "\n")
    table = format_table(records)
    print(table)
    if not args.no_results and not args.replay:
        append_results(table, argv)
    return 0


def format_table(records: dict) -> str:
    lines = ["| preset | run | CPU s | largest swing / level | health summary (today's thresholds) |",
             "| --- | --- | --- | --- | --- |"]
    for name in PRESETS:
        if name not in records:
            continue
        r = records[name]
        first = r["summary"].splitlines()
        problems = "; ".join(line.strip() for line in first[1:] if line.startswith("  ") and
                             not line.startswith("    "))
        verdict = first[0] if not problems else f"{first[0]} {problems}"
        margin = r.get("oscillation_margin", "?")
        lines.append(f"| {name} | {r['note']} | {r.get('cpu_s', '?')} | {margin} | {verdict} |")
    return "\n".join(lines)


def append_results(table: str, argv) -> None:
    command = "python benchmarks/preset_health.py" + (" " + " ".join(argv) if argv else "")
    text = (f"\n{SECTION}\n\n`{command}` ({platform.machine()}, {os.cpu_count()} cores, no GPU, shared with "
            f"parallel jobs: CPU seconds are the cost, wall time is inflated; one thread per run, nice 10).\n\n"
            f"{table}\n")
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
