"""The health monitor stays quiet on the presets' real runs: the per-tick stats of the default preset's full run
(2,000 steps), toy-ring and toy-grid (5,000 steps) and mlp-mnist (1,500 steps), kept by
`benchmarks/preset_health.py`, replayed through a monitor with today's thresholds. The old oscillation threshold
(0.5) warned on the default run at step 1700.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganforge.config import config_from_dict, load_preset
from ganforge.train.health import HealthConfig, HealthMonitor

DATA = Path(__file__).resolve().parent / "data"


def replay(name: str, health: HealthConfig) -> list[str]:
    monitor = HealthMonitor(health)
    fired = []
    for line in (DATA / f"health-ticks-{name}.jsonl").read_text().splitlines():
        tick = json.loads(line)
        step = tick.pop("step")
        fired += [d.name for d in monitor.observe(step, tick)]
    return fired


@pytest.mark.parametrize("name", ["default", "toy-ring", "toy-grid", "mlp-mnist"])
def test_presets_real_runs_report_no_problem(name):
    assert replay(name, config_from_dict(load_preset(name)).health) == []


def test_the_old_threshold_warned_on_the_default_run():
    # The recorded run is the one the issue describes: with oscillation_amplitude 0.5 it warns.
    assert replay("default", HealthConfig(oscillation_amplitude=0.5)) == ["oscillation"]
