"""Periodic evaluation during training (eval.every, best checkpoint, early stopping) and `ganforge evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_checkpoints_equal, tiny_config
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.errors import ConfigError
from ganforge.metrics.base import expand_metric_names, is_improvement
from ganforge.saved import evaluate_checkpoint
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import train

EVAL = {"every": 20, "metrics": ["modes"], "num": 500, "best_metric": "high_quality"}


def eval_records(run_dir) -> list[dict]:
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("event") == "eval"]


def test_eval_events_and_best_checkpoint(tmp_path):
    result = train(config_from_dict(tiny_config(eval=EVAL, train={"steps": 60})), tmp_path / "run")
    records = eval_records(tmp_path / "run")
    assert [r["step"] for r in records] == [20, 40, 60]
    assert all({"modes", "high_quality", "reverse_kl"} <= r.keys() for r in records)
    best = max(records, key=lambda r: r["high_quality"])  # ties: the first, as only a strict gain counts
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert state["step"] == best["step"] and state["trainer"]["best"] == best["high_quality"]
    # The best checkpoint scores what was logged: evaluation is reproducible from the file alone.
    again = evaluate_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", ["modes"], num=500, seed=0 + 2)
    assert again["high_quality"] == pytest.approx(best["high_quality"])
    assert result.stopped_by is None


def test_evaluation_does_not_change_training(tmp_path):
    plain = train(config_from_dict(tiny_config()), tmp_path / "plain")
    evaluated = train(config_from_dict(tiny_config(eval=EVAL)), tmp_path / "eval")
    a, b = load_checkpoint(plain.run_dir), load_checkpoint(evaluated.run_dir)
    assert_checkpoints_equal(a, b, sections=("networks",))  # evaluation did not disturb the training RNG
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_resume_keeps_best_and_patience_state(tmp_path):
    raw = tiny_config(eval={**EVAL, "patience": 10}, train={"steps": 80})
    straight = train(config_from_dict(raw), tmp_path / "straight")
    half = dict(raw, train={**raw["train"], "steps": 40})
    train(config_from_dict(half), tmp_path / "split")
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "80"]) == 0
    a, b = load_checkpoint(straight.run_dir), load_checkpoint(tmp_path / "split")
    assert a["trainer"] == b["trainer"]
    assert_checkpoints_equal(a, b, sections=("networks",))


def test_early_stopping_when_the_metric_stalls(tmp_path):
    # G barely moves (lr_g 1e-12): the mode count cannot grow, so every evaluation after the first is no gain.
    raw = tiny_config(eval={**EVAL, "best_metric": "modes", "patience": 2, "every": 10},
                      train={"steps": 200, "lr_g": 1e-12})
    result = train(config_from_dict(raw), tmp_path / "run")
    assert result.stopped_by == "early_stopping" and result.step == 30
    events = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "event" in r]
    assert [e["event"] for e in events if e["event"] != "eval"][-1] == "early_stopping"
    assert load_checkpoint(tmp_path / "run")["step"] == 30  # the stopping point is saved


def test_improvement_direction():
    assert is_improvement("fid", 3.0, 4.0) and not is_improvement("fid", 5.0, 4.0)
    assert is_improvement("modes", 8.0, 7.0) and not is_improvement("modes", 7.0, 7.0)
    assert is_improvement("kid", 0.1, None) and not is_improvement("fid", float("nan"), None)
    assert expand_metric_names("fid,pr,precision") == ["fid", "precision", "recall"]
    with pytest.raises(ConfigError, match="valid: .*fid"):
        expand_metric_names(["fdi"])


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"every": 10, "metrics": []}, "eval.metrics is empty"),
        ({"every": 10, "metrics": ["fdi"]}, "eval.metrics: unknown metric 'fdi'"),
        ({"metrics": ["modes"], "best_metric": "fid"}, "not a result of eval.metrics"),
        ({"metrics": ["modes"], "best_metric": "mode_spread"}, "has no better direction"),
        ({"metrics": ["modes"], "patience": 3}, "needs eval.best_metric"),
        ({"num_real": 0}, "eval.num_real"),
        ({"resize": "nearest"}, "eval.resize"),
    ],
)
def test_bad_eval_config_is_rejected(section, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(tiny_config(eval=section))


def test_domain_features_on_a_dataset_without_classifier_fails_before_training(tmp_path):
    raw = tiny_config(data={"name": "digits", "image_size": [16], "limit": 256},
                      model={"family": "dcgan", "latent_dim": 8, "g_channels": 8, "d_channels": 8},
                      eval={"every": 10, "metrics": ["fid"]})
    with pytest.raises(ConfigError, match="no domain classifier|has none"):
        train(config_from_dict(raw), tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_cli_evaluate_run_and_npz(tmp_path, capsys):
    run = tmp_path / "run"
    train(config_from_dict(tiny_config()), run)
    out_json = tmp_path / "scores.json"
    assert main(["evaluate", str(run), "--num", "800", "--json", str(out_json), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "modes" in table and "precision" in table
    scores = json.loads(out_json.read_text())
    assert set(scores) == {"modes", "high_quality", "reverse_kl", "mode_spread", "precision", "recall"}
    assert 0 <= scores["modes"] <= 8 and 0.0 <= scores["precision"] <= 1.0

    # The same numbers from the samples written by `generate` and a named real set.
    npz = tmp_path / "fake.npz"
    assert main(["generate", str(run), "--num", "800", "--format", "npz", "--out", str(npz)]) == 0
    assert main(["evaluate", "--fake", str(npz), "--real", "ring", "--metrics", "modes", "--no-progress",
                 "--json", str(tmp_path / "npz.json")]) == 0
    assert json.loads((tmp_path / "npz.json").read_text())["modes"] == scores["modes"]

    # Nothing the user had is overwritten; wrong arguments are one line and status 2.
    before = out_json.read_text()
    assert main(["evaluate", str(run), "--json", str(out_json)]) == 2
    assert out_json.read_text() == before
    assert main(["evaluate", str(run), "--fake", str(npz)]) == 2
    assert main(["evaluate", str(run), "--metrics", "fid,bogus"]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --overwrite" in err and "not both" in err and "unknown metric 'bogus'" in err
    assert np.load(npz)["points"].shape == (800, 2)


def test_a_refining_run_is_scored_on_its_refined_samples(tmp_path):
    # sample.refine_steps: each evaluation scores what `ganforge evaluate` draws from the saved checkpoint (samples
    # refined on the run's D), so best.pt is chosen on those; and refining leaves training as it was.
    refine = {"refine_steps": 5, "refine_step_size": 0.5}
    train(config_from_dict(tiny_config(eval=EVAL, train={"steps": 60}, sample=refine)), tmp_path / "run")
    records = eval_records(tmp_path / "run")
    assert [r["step"] for r in records] == [20, 40, 60]
    best = max(records, key=lambda r: r["high_quality"])
    path = tmp_path / "run" / "checkpoints" / "best.pt"
    assert load_checkpoint(path)["step"] == best["step"]
    refined = evaluate_checkpoint(path, ["modes"], num=500, seed=0 + 2)  # the run's sample section: refined
    plain = evaluate_checkpoint(path, ["modes"], num=500, seed=0 + 2, refine_steps=0)
    keys = ("high_quality", "reverse_kl", "mode_spread")
    assert [refined[k] for k in keys] == pytest.approx([best[k] for k in keys])
    assert [plain[k] for k in keys] != pytest.approx([best[k] for k in keys])
    unevaluated = train(config_from_dict(tiny_config(train={"steps": 60}, sample=refine)), tmp_path / "plain")
    assert_checkpoints_equal(load_checkpoint(unevaluated.run_dir), load_checkpoint(tmp_path / "run"),
                             sections=("networks", "optimizers"))


def test_refined_evaluation_needs_a_single_discriminator(tmp_path):
    # GMAN trains several D's: there is no one D to refine on, said before training starts.
    raw = tiny_config(data={"name": "digits"}, model={"family": "gman", "latent_dim": 8, "g_channels": 8,
                                                      "d_channels": 8, "num_discriminators": 2},
                      eval={"every": 10, "metrics": ["fid"], "features": "inception", "num": 64},
                      sample={"refine_steps": 2},
                      train={"steps": 20})
    with pytest.raises(ConfigError, match="sample.refine_steps .*'D'"):
        train(config_from_dict(raw), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()
