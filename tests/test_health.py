"""The training-health monitor on synthetic per-tick stat streams, and the diversity ratio in closed form."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import pytest
import torch

from ganforge.errors import CheckpointError, ConfigError
from ganforge.train.health import (
    DIAGNOSES,
    REMEDIES,
    Diagnosis,
    HealthConfig,
    HealthMonitor,
    _count_swings,
    diversity_ratio,
)

LOG_EVERY = 50  # steps per tick in these streams, like train.log_every's default


def healthy_tick(rng: random.Random) -> dict[str, float]:
    """One tick of a balanced run: D mildly ahead, G's samples as spread as the data, noisy tick means."""
    return {
        "loss_d": 1.30 + rng.gauss(0, 0.08),
        "loss_g": 0.85 + rng.gauss(0, 0.08),
        "d_real": 0.60 + rng.gauss(0, 0.03),
        "d_fake": 0.40 + rng.gauss(0, 0.03),
        "d_acc_real": 0.60 + rng.gauss(0, 0.05),
        "d_acc_fake": 0.60 + rng.gauss(0, 0.05),
        "grad_norm_g": math.exp(rng.gauss(0, 0.3)),
        "grad_norm_d": math.exp(rng.gauss(0, 0.3)),
        "diversity": 0.90 + rng.gauss(0, 0.05),
    }


def run(monitor: HealthMonitor, stream: list[dict[str, float]], *, first_tick: int = 1) -> list[Diagnosis]:
    """Feed a stream, one tick every LOG_EVERY steps; return every diagnosis fired, in order."""
    fired = []
    for index, stats in enumerate(stream, start=first_tick):
        fired.extend(monitor.observe(index * LOG_EVERY, stats))
    return fired


def healthy_stream(ticks: int, seed: int = 0) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [healthy_tick(rng) for _ in range(ticks)]


def with_overrides(stream: list[dict[str, float]], **values: float) -> list[dict[str, float]]:
    return [{**stats, **values} for stats in stream]


def names(fired: list[Diagnosis]) -> list[str]:
    return [d.name for d in fired]


# --------------------------------------------------------------------------------------------- healthy runs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_noisy_run_raises_nothing(seed: int) -> None:
    monitor = HealthMonitor(HealthConfig())
    assert run(monitor, healthy_stream(300, seed)) == []
    assert monitor.active == ()
    assert "no problems detected in 300 ticks" in monitor.summary()


def test_missing_keys_are_no_evidence_not_an_error() -> None:
    monitor = HealthMonitor(HealthConfig())
    assert run(monitor, [{}] * 10 + [{"loss_d": 1.3}] * 10 + [{"step_time": 0.1}] * 5) == []


# ------------------------------------------------------------------------------------------- each diagnosis


def test_d_overpowering_with_vanishing_g_gradients() -> None:
    monitor = HealthMonitor(HealthConfig())
    run(monitor, healthy_stream(10))
    winning_d = with_overrides(healthy_stream(10, seed=5), d_acc_real=0.99, d_acc_fake=0.98, d_real=0.99,
                               d_fake=0.01, grad_norm_g=1e-6, loss_d=0.02, loss_g=0.01)
    fired = run(monitor, winning_d, first_tick=11)
    assert sorted(names(fired)) == ["d_overpowering", "vanishing_gradients"]
    assert {d.step for d in fired} == {13 * LOG_EVERY}  # the third tick in a row: patience_ticks=3
    by_name = {d.name: d for d in fired}
    assert "D accuracy 0.99 (real) / 0.98 (fake) for 3 ticks" in by_name["d_overpowering"].message
    assert "G grad norm 1e-06" in by_name["d_overpowering"].message
    assert "G grad norm 1e-06 for 3 ticks" in by_name["vanishing_gradients"].message
    assert all(d.action == "warn" for d in fired)
    assert by_name["d_overpowering"].remedies == REMEDIES["d_overpowering"]
    assert any("label smoothing" in r for r in by_name["d_overpowering"].remedies)


def test_vanishing_gradients_from_a_relative_drop() -> None:
    monitor = HealthMonitor(HealthConfig())
    run(monitor, with_overrides(healthy_stream(10), grad_norm_g=5.0))
    fired = run(monitor, with_overrides(healthy_stream(5), grad_norm_g=0.02), first_tick=11)  # 250x smaller
    assert names(fired) == ["vanishing_gradients"]
    assert "250x below its healthy level 5" in fired[0].message


def test_vanishing_gradients_from_a_gradual_decline() -> None:
    # Saturation sets in over many ticks (a minimax loss against a D that keeps winning): a running median
    # would follow the decline down, so the healthy level is the highest running median seen.
    monitor = HealthMonitor(HealthConfig(vanishing_grad_norm=0.0))
    stream = healthy_stream(40)
    for index, stats in enumerate(stream):
        stats["grad_norm_g"] = 0.85**index  # 1 down to 0.002 over 40 ticks
    fired = run(monitor, stream)
    assert names(fired) == ["vanishing_gradients"]
    assert stream[fired[0].step // LOG_EVERY - 1]["grad_norm_g"] < 0.01


def test_separating_by_a_hair_is_not_d_overpowering() -> None:
    # Perfect sign accuracy with probabilities near 0.5: D is barely right and G still gets useful gradients.
    monitor = HealthMonitor(HealthConfig())
    stream = with_overrides(healthy_stream(20), d_acc_real=1.0, d_acc_fake=1.0, d_real=0.52, d_fake=0.48)
    assert run(monitor, stream) == []


def test_g_overpowering_when_d_is_fooled() -> None:
    monitor = HealthMonitor(HealthConfig())
    run(monitor, healthy_stream(5))
    fooled = with_overrides(healthy_stream(5), d_fake=0.97, d_real=0.9, d_acc_fake=0.02)
    fired = run(monitor, fooled, first_tick=6)
    assert names(fired) == ["g_overpowering"]
    assert fired[0].step == 8 * LOG_EVERY
    assert "D(G(z)) 0.97 for 3 ticks" in fired[0].message


@pytest.mark.parametrize("on_collapse", ["warn", "stop"])
def test_mode_collapse_with_the_configured_action(on_collapse: str) -> None:
    monitor = HealthMonitor(HealthConfig(on_collapse=on_collapse))
    run(monitor, healthy_stream(5))
    fired = run(monitor, with_overrides(healthy_stream(5), diversity=0.05), first_tick=6)
    assert names(fired) == ["mode_collapse"]
    assert fired[0].action == on_collapse
    assert "diversity 0.05" in fired[0].message
    assert any("PacGAN" in r for r in fired[0].remedies)


def test_collapse_counts_only_ticks_where_diversity_was_measured() -> None:
    monitor = HealthMonitor(HealthConfig())
    run(monitor, healthy_stream(5))
    stream = healthy_stream(9)
    for index, stats in enumerate(stream):
        if index % 3 == 0:
            stats["diversity"] = 0.05  # measured every third tick only
        else:
            del stats["diversity"]
    fired = run(monitor, stream, first_tick=6)
    assert names(fired) == ["mode_collapse"]
    assert fired[0].step == (6 + 6) * LOG_EVERY  # the third measured tick


def test_oscillation_of_the_loss() -> None:
    monitor = HealthMonitor(HealthConfig())
    run(monitor, healthy_stream(5))
    swinging = healthy_stream(8, seed=3)
    for index, stats in enumerate(swinging):
        stats["loss_d"] = 0.4 if index % 2 else 1.6
    fired = run(monitor, swinging, first_tick=6)
    assert names(fired) == ["oscillation"]
    assert fired[0].message.startswith("loss_d swung 4 times")


def test_mode_hopping_is_oscillation_of_the_diversity() -> None:
    # Tick-mean losses can look calm while G jumps between modes: its fixed-noise samples' spread swings.
    monitor = HealthMonitor(HealthConfig())
    run(monitor, healthy_stream(5))
    hopping = healthy_stream(8, seed=4)
    for index, stats in enumerate(hopping):
        stats["diversity"] = 0.3 if index % 2 else 1.4  # never 3 collapsed ticks in a row: not mode_collapse
    fired = run(monitor, hopping, first_tick=6)
    assert names(fired) == ["oscillation"]
    assert fired[0].message.startswith("diversity swung")


def test_slow_trend_and_small_noise_are_not_oscillation() -> None:
    assert _count_swings([3.0 - 0.2 * i for i in range(12)], 0.5) == 1  # a monotone fall: one leg
    assert _count_swings([1.0, 1.1, 0.95, 1.05, 0.9, 1.1], 0.5) == 0  # wiggles under the threshold
    assert _count_swings([0.0, 1.0, 0.0, 1.0, 0.0], 0.5) == 4
    monitor = HealthMonitor(HealthConfig())
    falling = healthy_stream(30)
    for index, stats in enumerate(falling):
        stats["loss_d"] = 3.0 - 0.08 * index
    assert run(monitor, falling) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_stats_diverge_at_once_even_in_warmup(bad: float) -> None:
    monitor = HealthMonitor(HealthConfig(on_divergence="stop"))
    fired = monitor.observe(50, {**healthy_tick(random.Random(0)), "grad_norm_d": bad})
    assert names(fired) == ["divergence"]
    assert fired[0].action == "stop"
    assert f"grad_norm_d={bad}" in fired[0].message
    assert "lower the learning rates" in fired[0].remedies[0]


def test_loss_explosion_is_divergence() -> None:
    monitor = HealthMonitor(HealthConfig())
    run(monitor, healthy_stream(10))
    fired = run(monitor, with_overrides(healthy_stream(1), loss_g=500.0), first_tick=11)
    assert names(fired) == ["divergence"]
    assert "loss_g 500" in fired[0].message and fired[0].action == "warn"


def test_a_run_born_diverged_is_caught_by_the_absolute_limit() -> None:
    # No sane history to compare with: the losses were huge from the first tick.
    fired = run(HealthMonitor(HealthConfig()), with_overrides(healthy_stream(3), loss_d=1e20))
    assert names(fired) == ["divergence"] and fired[0].step == LOG_EVERY
    assert "above the limit" in fired[0].message


def test_rollbacks_until_the_budget_is_spent_then_stop() -> None:
    monitor = HealthMonitor(HealthConfig(on_divergence="rollback", max_rollbacks=2))
    nan_tick = {"loss_d": float("nan")}
    actions = []
    for tick in range(1, 4):
        run(monitor, healthy_stream(3), first_tick=10 * tick)
        fired = monitor.observe((10 * tick + 3) * LOG_EVERY, nan_tick)
        actions.append(fired[0].action)
        monitor.after_rollback()
    assert actions == ["rollback", "rollback", "stop"]
    assert monitor.rollbacks == 2
    assert "rollbacks: 2 of 2 allowed" in monitor.summary()


# -------------------------------------------------------------------------------------- patience, re-firing


def test_conditions_shorter_than_patience_do_not_fire() -> None:
    stream = healthy_stream(45, seed=7)
    for index, stats in enumerate(stream[5:]):
        if index % 3 != 2:  # two collapsed ticks, one healthy, again and again
            stats["diversity"] = 0.05
    assert names(run(HealthMonitor(HealthConfig(patience_ticks=3)), stream)) == ["oscillation"]  # the flicker
    assert run(HealthMonitor(HealthConfig(patience_ticks=3, disabled=["oscillation"])), stream) == []


def test_warmup_ticks_are_not_counted() -> None:
    monitor = HealthMonitor(HealthConfig(warmup_ticks=2, patience_ticks=3))
    collapsed = with_overrides(healthy_stream(5), diversity=0.05)
    fired = run(monitor, collapsed)
    assert [d.step for d in fired] == [5 * LOG_EVERY]  # ticks 1-2 are warmup; 3, 4, 5 make the patience


def test_no_refire_while_active_and_refire_after_recovery() -> None:
    # Collapsing, recovering and collapsing again is also a (slow) oscillation of the diversity; leave it out.
    monitor = HealthMonitor(HealthConfig(recovery_ticks=3, disabled=["oscillation"]))
    run(monitor, healthy_stream(5))
    collapsed = with_overrides(healthy_stream(20), diversity=0.05)
    assert names(run(monitor, collapsed, first_tick=6)) == ["mode_collapse"]
    assert monitor.active == ("mode_collapse",)
    run(monitor, healthy_stream(2), first_tick=26)  # not yet recovered: 2 clear ticks < recovery_ticks
    assert names(run(monitor, with_overrides(healthy_stream(5), diversity=0.05), first_tick=28)) == []
    run(monitor, healthy_stream(3), first_tick=33)  # now recovered
    assert monitor.active == ()
    again = run(monitor, with_overrides(healthy_stream(5), diversity=0.05), first_tick=36)
    assert names(again) == ["mode_collapse"]
    summary = monitor.summary()
    assert f"mode_collapse: 2 times, first at step {8 * LOG_EVERY}, last at step {38 * LOG_EVERY}" in summary
    assert "      - PacGAN" in summary


def test_disabled_diagnoses_and_disabled_monitor() -> None:
    monitor = HealthMonitor(HealthConfig(disabled=["d_overpowering", "g_overpowering"]))
    assert run(monitor, with_overrides(healthy_stream(10), d_fake=0.99, d_acc_fake=0.0)) == []
    off = HealthMonitor(HealthConfig(enabled=False))
    assert run(off, [{"loss_d": float("nan")}] * 3) == []
    assert "disabled" in off.summary()


# ----------------------------------------------------------------------------------------------- resume


def test_state_dict_round_trip_continues_the_same_history() -> None:
    stream = healthy_stream(10) + with_overrides(healthy_stream(6, seed=9), diversity=0.05)
    for stats in stream[12:14]:
        stats["loss_d"] = 3.0  # mid-swing when the run is interrupted
    uninterrupted = HealthMonitor(HealthConfig())
    expected = run(uninterrupted, stream)

    first = HealthMonitor(HealthConfig())
    fired = run(first, stream[:11])
    state = json.loads(json.dumps(first.state_dict()))  # JSON-able: a checkpoint can hold it as is
    resumed = HealthMonitor(HealthConfig())
    resumed.load_state_dict(state)
    fired += run(resumed, stream[11:], first_tick=12)
    assert fired == expected and names(expected) == ["mode_collapse"]
    assert resumed.summary() == uninterrupted.summary()
    assert resumed.state_dict() == uninterrupted.state_dict()


def test_bad_state_is_a_checkpoint_error() -> None:
    monitor = HealthMonitor(HealthConfig())
    with pytest.raises(CheckpointError, match="version"):
        monitor.load_state_dict({"version": 99})
    state = monitor.state_dict()
    del state["tracks"]
    with pytest.raises(CheckpointError, match="malformed"):
        monitor.load_state_dict(state)


# -------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("on_divergence", "explode"),
        ("on_collapse", "rollback"),
        ("max_rollbacks", -1),
        ("rollback_lr_factor", 0.0),
        ("rollback_lr_factor", 1.5),
        ("patience_ticks", 0),
        ("recovery_ticks", 0),
        ("history_ticks", 2),
        ("d_overpowering_accuracy", 0.5),
        ("g_overpowering_d_fake", 1.2),
        ("vanishing_grad_ratio", 1.0),
        ("collapse_diversity", -0.1),
        ("oscillation_window", 4),
        ("oscillation_amplitude", 0.0),
        ("divergence_loss_factor", 1.0),
        ("divergence_loss_limit", 0.0),
        ("loss_floor", 0.0),
        ("disabled", ["mode_colapse"]),
    ],
)
def test_config_validation_names_the_bad_field(field: str, value: object) -> None:
    cfg = dataclasses.replace(HealthConfig(), **{field: value})
    with pytest.raises(ConfigError, match=f"health.{field}"):
        cfg.validate()
    with pytest.raises(ConfigError):
        HealthMonitor(cfg)


def test_every_config_field_and_diagnosis_is_covered() -> None:
    HealthConfig().validate()
    assert set(REMEDIES) == set(DIAGNOSES)
    assert all(REMEDIES[name] for name in DIAGNOSES)


# ---------------------------------------------------------------------------------------- diversity_ratio


def test_diversity_ratio_closed_forms() -> None:
    real = torch.randn(16, 3, 4, 4)
    assert diversity_ratio(real, real) == pytest.approx(1.0)
    collapsed = real[:1].expand(16, 3, 4, 4)  # G's every sample is the same image
    assert diversity_ratio(collapsed, real) == 0.0
    # 1-D points {0, 2} vs {0, 1}: mean pairwise distances 2 and 1.
    assert diversity_ratio(torch.tensor([[0.0], [2.0]]), torch.tensor([[0.0], [1.0]])) == pytest.approx(2.0)
    # Scaling samples scales distances: half the spread, half the ratio.
    assert diversity_ratio(0.5 * real, real) == pytest.approx(0.5)


def test_diversity_ratio_guards() -> None:
    same_point = torch.zeros(4, 2)
    assert diversity_ratio(same_point, same_point) == 1.0  # no spread anywhere: no sign of collapse
    assert math.isfinite(diversity_ratio(torch.randn(4, 2), same_point))
    assert diversity_ratio(torch.randn(4, 2, dtype=torch.float16), torch.randn(4, 2)) > 0
    with pytest.raises(ValueError, match="at least 2"):
        diversity_ratio(torch.randn(1, 2), torch.randn(4, 2))
