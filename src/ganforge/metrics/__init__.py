"""Evaluation: FID, KID, IS, precision/recall, density/coverage, mode metrics and class-based scores.

One file per metric (pure math on features or predictions, tested in closed form); feature extractors apart
(`inception.py`, `domain.py`, `features.py`); `evaluate.py` ties them to data for the CLI. Importing this
package registers every metric in METRICS.
"""

from __future__ import annotations

# Importing the metric modules registers them in METRICS.
from ganforge.metrics import accuracy, cas, class_balance, gan_test, stacked_mnist, toy_modes  # noqa: F401  isort: skip
from ganforge.metrics.base import METRICS, cache_dir
from ganforge.metrics.class_balance import class_divergence
from ganforge.metrics.density_coverage import density_coverage
from ganforge.metrics.evaluate import EvalContext, evaluate
from ganforge.metrics.fid import feature_statistics, frechet_distance
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kernel_distance
from ganforge.metrics.precision_recall import precision_recall
from ganforge.metrics.sources import Samples, resolve_fake, resolve_real
from ganforge.metrics.stacked_mnist import stacked_modes
from ganforge.metrics.toy_modes import mode_metrics

__all__ = [
    "METRICS",
    "EvalContext",
    "Samples",
    "cache_dir",
    "class_divergence",
    "density_coverage",
    "evaluate",
    "feature_statistics",
    "frechet_distance",
    "inception_score",
    "kernel_distance",
    "mode_metrics",
    "precision_recall",
    "resolve_fake",
    "resolve_real",
    "stacked_modes",
]
