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

from ganforge.registry import Registry

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalContext

# name -> fn(ctx) -> {result key: value}; an unknown name raises an error listing the valid ones.
METRICS: Registry[Callable[[EvalContext], dict[str, float]]] = Registry("metric")


def cache_dir() -> Path:
    """Downloads, classifiers and reference statistics live here: $GANFORGE_CACHE or ~/.cache/ganforge."""
    env = os.environ.get("GANFORGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganforge"
