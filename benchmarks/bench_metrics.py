"""Evaluation benchmarks: speed of domain FID and Inception features, real-vs-real sanity values, classifiers.

    python benchmarks/bench_metrics.py                     # everything (Inception real-vs-real is long)
    python benchmarks/bench_metrics.py --skip-inception-fid
    python benchmarks/bench_metrics.py --inception-num 200  # a quicker Inception real-vs-real

Reads the real files beside the repository (../shared: MNIST, Fashion-MNIST, the Inception TorchScript), or
--data-root / --inception. Classifiers and reference statistics go to the ganforge cache ($GANFORGE_CACHE,
default ~/.cache/ganforge): the first run trains the classifiers, later runs reuse them (--retrain to measure
training again). Record results in benchmarks/RESULTS.md, "## Evaluation".
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from ganforge.metrics import evaluate, resolve_real
from ganforge.metrics.domain import DOMAINS, classifier_path, load_classifier, train_domain_classifier
from ganforge.metrics.features import extract
from ganforge.metrics.inception import InceptionExtractor

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANFORGE_SHARED", REPO.parent / "shared"))


def line(label: str, value: str) -> None:
    print(f"{label:<58} {value}", flush=True)


def load() -> str:
    return "load avg " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def classifiers(data_root: Path, retrain: bool) -> None:
    for dataset, spec in DOMAINS.items():
        path = classifier_path(dataset)
        if retrain or not path.is_file():
            _, meta = train_domain_classifier(dataset, data_root=data_root, progress=False)
            fresh = "trained now"
        else:
            _, meta = load_classifier(path)
            fresh = "cached"
        acc = float(meta["test_accuracy"])
        status = "ok" if acc >= spec.min_accuracy else f"BELOW {spec.min_accuracy:.0%}"
        line(
            f"{dataset} classifier test accuracy ({fresh})",
            f"{acc:.2%} [{status}]; trained {meta['epochs']} epochs in {meta['train_seconds']} s ({load()})",
        )


def domain_fid(data_root: Path, num: int) -> None:
    real = "mnist:train"
    fake = resolve_real("mnist:test", data_root=data_root, download=False, limit=num)
    # First call computes (and caches) the 60k reference statistics; the timed call uses the cache, as a
    # training run's periodic evaluation does.
    start = time.perf_counter()
    evaluate(fake.data[:10], real, ["fid"], data_root=data_root, progress=False)
    line("domain reference stats, MNIST train 60k (first run only)", f"{time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    out = evaluate(fake.data, real, ["fid"], data_root=data_root, progress=False)
    seconds = time.perf_counter() - start
    line(f"domain FID of {len(fake):,} MNIST samples (ref cached)", f"{seconds:.1f} s ({load()})")
    line("  = real-vs-real domain FID, MNIST test 10k vs train 60k", f"{out['fid']:.3f}")
    start = time.perf_counter()
    names = ["kid", "precision", "recall", "density", "coverage"]
    more = evaluate(fake.data, real, names, data_root=data_root, progress=False)
    line(f"domain KID + P/R + D/C of {len(fake):,} samples", f"{time.perf_counter() - start:.1f} s")
    line("  values (test vs train)", ", ".join(f"{k} {v:.4f}" for k, v in more.items()))


def inception_throughput(data_root: Path, path: Path, num: int, batch: int) -> None:
    ext = InceptionExtractor(path)
    images = resolve_real("mnist:test", data_root=data_root, download=False, limit=num).data
    extract(ext, images[:2], batch_size=2, progress=False)  # warm-up (TorchScript profiling runs)
    start = time.perf_counter()
    extract(ext, images, batch_size=batch, progress=False)
    seconds = time.perf_counter() - start
    line(f"Inception features, {num} MNIST images, batch {batch}", f"{num / seconds:.2f} images/s ({load()})")


def inception_fid(data_root: Path, path: Path, num: int, batch: int) -> None:
    start = time.perf_counter()
    fake = resolve_real("mnist:test", data_root=data_root, download=False, limit=num)
    out = evaluate(fake.data, "mnist:train", ["fid"], features="inception", inception=path,
                   data_root=data_root, num_real=num, batch_size=batch, progress=True)  # fmt: skip
    seconds = time.perf_counter() - start
    line(f"Inception FID, MNIST test {num} vs train {num} (clean resize)", f"{out['fid']:.3f}")
    line("  time (both sets extracted)", f"{seconds:.0f} s, {2 * num / seconds:.2f} images/s ({load()})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=SHARED / "data")
    parser.add_argument("--inception", type=Path, default=SHARED / "models" / "inception-2015-12-05.pt")
    parser.add_argument("--num", type=int, default=10_000, help="generated samples for the domain FID timing")
    parser.add_argument("--inception-num", type=int, default=2000, help="images per set, Inception FID")
    parser.add_argument("--throughput-num", type=int, default=64, help="images for the Inception throughput")
    parser.add_argument("--batch", type=int, default=32, help="Inception batch size")
    parser.add_argument("--retrain", action="store_true", help="train the classifiers even when cached")
    parser.add_argument("--skip-inception-fid", action="store_true", help="skip the long Inception FID")
    args = parser.parse_args()

    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores; {load()}")  # fmt: skip
    classifiers(args.data_root, args.retrain)
    domain_fid(args.data_root, args.num)
    inception_throughput(args.data_root, args.inception, args.throughput_num, args.batch)
    if not args.skip_inception_fid:
        inception_fid(args.data_root, args.inception, args.inception_num, args.batch)
