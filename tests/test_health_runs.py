"""The health monitor on real (tiny) training runs: each failure is provoked the way users meet it, and the
named diagnosis must fire, be logged and be summarised with remedies; a healthy run raises none.

Small MLP GANs on the 8-Gaussian ring, 300-600 steps each (a second or two on one CPU thread). The failure
settings are the textbook ones: D's learning rate 100x G's, a saturating loss under a strong D, a D that
barely learns, a one-dimensional latent, a huge learning rate on an unbounded loss, and momentum-heavy Adam
at a high rate.
"""

from __future__ import annotations

import pytest

from conftest import tiny_config
from ganforge.config import config_from_dict
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import train

SMALL_LATENT = {"family": "mlp", "latent_dim": 1, "g_hidden": 32, "g_layers": 2, "d_hidden": 32, "d_layers": 2}

PROVOKED = {
    "d_overpowering": {"train": {"lr_d": 1e-2, "lr_g": 1e-4, "steps": 300}},
    "vanishing_gradients": {"loss": {"name": "minimax"},
                            "train": {"lr_d": 1e-2, "lr_g": 1e-4, "n_critic": 5, "steps": 300}},
    "g_overpowering": {"train": {"lr_d": 1e-6, "lr_g": 1e-2, "steps": 300}},
    "mode_collapse": {"model": SMALL_LATENT, "train": {"steps": 300}},
    "oscillation": {"train": {"lr_d": 5e-2, "lr_g": 5e-2, "betas_g": [0.9, 0.999], "betas_d": [0.9, 0.999],
                              "steps": 300}},
}


def events(run_dir) -> list[str]:
    return [r["event"] for r in read_metrics(run_dir / "metrics.jsonl") if "event" in r]


@pytest.mark.parametrize("diagnosis", sorted(PROVOKED))
def test_provoked_failure_is_diagnosed(diagnosis, tmp_path, capsys):
    result = train(config_from_dict(tiny_config(**PROVOKED[diagnosis])), tmp_path / "run")
    fired = [d.name for d in result.diagnoses]
    assert diagnosis in fired
    assert diagnosis in events(tmp_path / "run")  # logged in metrics.jsonl ...
    summary = (tmp_path / "run" / "health.txt").read_text()  # ... and summarised with the remedies
    assert f"{diagnosis}:" in summary and "remedies:" in summary
    assert diagnosis in capsys.readouterr().err


def test_mode_collapse_can_stop_the_run(tmp_path):
    raw = tiny_config(model=SMALL_LATENT, train={"steps": 300}, health={"on_collapse": "stop"})
    result = train(config_from_dict(raw), tmp_path / "run")
    assert result.stopped_by == "mode_collapse" and result.step < 300


def test_huge_learning_rate_diverges_and_rolls_back_until_the_budget_is_spent(tmp_path):
    raw = tiny_config(loss={"name": "wasserstein"}, train={"lr_d": 5.0, "lr_g": 5.0, "steps": 300},
                      health={"on_divergence": "rollback", "max_rollbacks": 3})
    result = train(config_from_dict(raw), tmp_path / "run")
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "event" in r]
    assert [r["event"] for r in records].count("rollback") == 3
    assert records[-1]["event"] == "divergence" and records[-1]["action"] == "stop"  # the 4th: out of rollbacks
    assert result.stopped_by == "divergence"
    summary = (tmp_path / "run" / "health.txt").read_text()
    assert "divergence: 4 times" in summary and "rollbacks: 3 of 3 allowed" in summary
    lrs = [r["lr_d"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "lr_d" in r]
    assert min(lrs) <= 5.0 * 0.5**3  # each rollback halved the learning rates (health.rollback_lr_factor)


def test_healthy_run_raises_nothing(tmp_path):
    result = train(config_from_dict(tiny_config(train={"steps": 600})), tmp_path / "run")
    assert result.diagnoses == [] and result.stopped_by is None
    assert events(tmp_path / "run") == []
    assert "no problems detected" in (tmp_path / "run" / "health.txt").read_text()
