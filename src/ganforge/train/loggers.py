"""Where a run's numbers and sample grids go besides metrics.jsonl, chosen by name (`train.logger`).

metrics.jsonl is always written (the report, the health summary and `--resume` read it); a logger mirrors the
same records elsewhere. `jsonl` and `none` add nothing; `tensorboard` writes event files to RUN_DIR/tb:
scalars grouped by kind (loss/, D/, grad/, lr/, perf/), evaluation results under eval/, health events as a
scalar under health/ and a text entry with the message, and every fixed-noise sample grid as an image.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from torch import Tensor

from ganforge.errors import ConfigError

LOGGERS = ("jsonl", "tensorboard", "none")  # the valid values of train.logger / --logger


class Logger:
    """The no-op logger (`jsonl`, `none`): metrics.jsonl alone holds the run's records."""

    def write(self, record: dict[str, Any]) -> None:
        """One record as written to metrics.jsonl: a tick's stats, or an event ("event" key) at a step."""

    def image(self, tag: str, step: int, image: Tensor) -> None:
        """An image (C, H, W) with values in [0, 1]."""

    def close(self) -> None:
        pass


def _tag(key: str) -> str:
    """A tick stat's TensorBoard tag: grouped by kind so related curves share a section."""
    if key.startswith("loss"):
        return f"loss/{key}"
    if key.startswith(("d_real", "d_fake", "d_acc")):
        return f"D/{key}"
    if key.startswith("grad_norm"):
        return f"grad/{key}"
    if key.startswith("lr_"):
        return f"lr/{key}"
    if key in ("images_per_s", "kimg"):
        return f"perf/{key}"
    return f"train/{key}"


class TensorBoardLogger(Logger):
    def __init__(self, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(folder))

    def write(self, record: dict[str, Any]) -> None:
        step = record.get("step")
        if step is None:
            return
        event = record.get("event")
        numbers = {k: v for k, v in record.items() if k not in ("step", "event") and _is_number(v)}
        if event is None:
            for key, value in numbers.items():
                self._writer.add_scalar(_tag(key), value, step)
        elif event == "eval":
            for key, value in numbers.items():
                self._writer.add_scalar(f"eval/{key}", value, step)
        else:  # a health diagnosis or a trainer event (rollback, early stopping, skipped checkpoint)
            self._writer.add_scalar(f"health/{event}", 1.0, step)
            text = record.get("message") or ""
            action = record.get("action")
            self._writer.add_text("health", f"step {step}: **{event}**: {text}" + (f" ({action})" if action else ""),
                                  step)
        self._writer.flush()  # once per tick: a run watched live shows its latest numbers

    def image(self, tag: str, step: int, image: Tensor) -> None:
        self._writer.add_image(tag, image.clamp(0, 1), step)

    def close(self) -> None:
        self._writer.close()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_logger(name: str) -> None:
    """A clear error now, before training, for an unknown logger or a missing optional package."""
    if name not in LOGGERS:
        raise ConfigError(f"train.logger must be one of {', '.join(LOGGERS)}, got {name!r}")
    if name == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--logger tensorboard needs the tensorboard package: pip install 'ganforge[tensorboard]'")


def build_logger(name: str, run_dir: Path) -> Logger:
    """The logger named by train.logger, writing under run_dir."""
    check_logger(name)
    if name == "tensorboard":
        return TensorBoardLogger(Path(run_dir) / "tb")
    return Logger()
