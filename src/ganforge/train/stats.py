"""Report stats from anywhere as tensors; sync once per tick into JSONL (and TensorBoard).

`report()` only appends a detached tensor: no `.item()` in the hot loop. `flush()` averages each name over
the tick with a single device-to-host copy.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganforge.train.loggers import Logger


class StatsCollector:
    def __init__(self) -> None:
        self._values: dict[str, list[Tensor]] = defaultdict(list)

    def report(self, name: str, value: Tensor) -> None:
        self._values[name].append(value.detach().float().mean())

    def flush(self) -> dict[str, float]:
        """Mean of each reported name since the last flush, as Python floats (one host sync)."""
        if not self._values:
            return {}
        names = list(self._values)
        means = torch.stack([torch.stack(self._values[n]).mean() for n in names]).cpu().tolist()
        self._values.clear()
        return dict(zip(names, means))


class MetricsLog:
    """Append-only JSONL log (RUN_DIR/metrics.jsonl), mirrored to a `Logger` (train.logger: TensorBoard)."""

    def __init__(self, path: Path, *, logger: Logger | None = None) -> None:
        self.path = path
        self._file = open(path, "a", buffering=1)  # line-buffered: a killed run keeps every full line
        self.logger = logger or Logger()

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self.logger.write(record)

    def image(self, tag: str, step: int, image: Tensor) -> None:
        """A sample grid (C, H, W) in [0, 1] for the logger (metrics.jsonl holds no images)."""
        self.logger.image(tag, step, image)

    def close(self) -> None:
        self._file.close()
        self.logger.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl; a torn last line (killed mid-write) is ignored."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
