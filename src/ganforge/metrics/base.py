"""What every metric shares: the METRICS registry and the cache directory.

A metric is registered where it is defined, as a function of an `EvalContext` (see `evaluate.py`) that returns
its result keys, e.g. `{"kid": ..., "kid_std": ...}`. The context computes features once and shares them, so
asking for fid, kid, precision and recall extracts each set's features a single time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ganforge.registry import Registry, UnknownNameError

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext

# name -> fn(ctx) -> {result key: value}; an unknown name raises an error listing the valid ones.
METRICS: Registry[Callable[[EvalContext], dict[str, float]]] = Registry("metric")


# Image feature extractors by name: "domain" (the dataset's small CNN), "inception" (the TF FID network, fp32: the
# published protocol's features) and "inception-bf16" (the same network in bfloat16: faster on CPUs with native
# bf16, other features; inception.py says how far apart).
FEATURES = ("domain", "inception", "inception-bf16")


def cache_dir() -> Path:
    """Downloads, classifiers and reference statistics live here: $GANFORGE_CACHE or ~/.cache/ganforge."""
    env = os.environ.get("GANFORGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganforge"


# The result keys each metric returns (see evaluate.py), so a config can name a key before anything is computed.
RESULT_KEYS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "is": ("is", "is_std"),
    "precision": ("precision",),
    "recall": ("recall",),
    "density": ("density",),
    "coverage": ("coverage",),
    "modes": ("modes", "high_quality", "reverse_kl", "mode_spread"),
    "stacked_mnist": ("stacked_modes", "stacked_kl"),
    "classes": ("class_kl", "class_tv"),  # generated class mix vs the real data's (domain classifier)
    "gan_test": ("gan_test_acc",),
    "cas": ("cas",),
    "accuracy": ("test_accuracy",),  # a classifier's (ssgan's D) accuracy on the test split, during training
}
# Metrics that check each sample's requested class against the dataset's classes (its domain classifier): they
# mean nothing for a model whose classes are k-means clusters (data.labels: clusters).
DATASET_CLASS_METRICS = frozenset({"gan_test", "cas"})


def dataset_class_metrics(names: list[str] | tuple[str, ...] | str) -> list[str]:
    """The metrics among `names` (aliases expanded) that need the dataset's classes, sorted."""
    return sorted(DATASET_CLASS_METRICS.intersection(expand_metric_names(names)))
# Keys where smaller is better (distances, divergences, spreads); for the other keys, but NO_DIRECTION's, larger is.
LOWER_IS_BETTER = frozenset({"fid", "kid", "kid_std", "is_std", "reverse_kl", "stacked_kl", "class_kl", "class_tv"})
# Keys with no better direction (best near a reference value), so they cannot pick a run's best checkpoint.
NO_DIRECTION = frozenset({"mode_spread"})  # the data's own ~0.97; lower: samples packed tighter than the data
# Short names for metrics that are computed together: `--metrics fid,pr` means fid, precision and recall.
ALIASES: dict[str, tuple[str, ...]] = {"pr": ("precision", "recall"), "dc": ("density", "coverage")}


def expand_metric_names(names: list[str] | tuple[str, ...] | str) -> list[str]:
    """Metric names with aliases expanded and duplicates dropped: "fid,pr" -> [fid, precision, recall].

    An unknown name raises an error listing the valid ones (aliases included)."""
    if isinstance(names, str):
        names = [n for n in names.replace(" ", "").split(",") if n]
    out: list[str] = []
    for name in names:
        for metric in ALIASES.get(name, (name,)):
            if metric not in RESULT_KEYS:
                valid = ", ".join(sorted([*RESULT_KEYS, *ALIASES]))
                raise UnknownNameError(f"unknown metric {metric!r}; valid: {valid}")
            if metric not in out:
                out.append(metric)
    return out


def is_improvement(key: str, new: float, old: float | None) -> bool:
    """Whether `new` beats the best value so far of result `key` (None: nothing yet, so any finite value)."""
    if new != new:  # NaN never improves
        return False
    if old is None:
        return True
    return new < old if key in LOWER_IS_BETTER else new > old
