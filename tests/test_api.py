"""The Python API mirrors the CLI, and the first run picks a model that fits the data the user named."""

from __future__ import annotations

import runpy
import sys

import pytest
import torch
import yaml

import ganforge
from conftest import REPO
from ganforge.api import resolve_raw
from ganforge.cli import main
from ganforge.errors import GanforgeError
from tiny_runs import tiny_run

TINY = ["data.limit=128", "train.batch_size=16", "train.log_every=1", "train.progress=false",
        "data.num_points=512"]


@pytest.mark.parametrize("dataset", ["grid", "ring", "spiral"])
def test_points_named_alone_get_the_toy_mlp(dataset):
    raw, note = resolve_raw(dataset=dataset)
    toy = ganforge.load_preset("toy-ring")
    assert raw["model"] == toy["model"] and raw["loss"] == toy["loss"] and raw["data"]["name"] == dataset
    assert "2-D points" in note and "toy MLP" in note
    ganforge.config_from_dict(raw)  # valid as is


def test_images_named_alone_get_dcgan_at_their_own_size():
    raw, note = resolve_raw(dataset="mnist")
    assert raw["model"]["family"] == "dcgan" and "image_size" not in raw["data"]
    assert "DCGAN" in note and "own size" in note
    raw, note = resolve_raw(dataset="folder", image_size=[64, 48], channels=3, data_root="/pics")
    assert raw["data"]["image_size"] == [64, 48] and raw["data"]["channels"] == 3 and "at 64x48" in note


def test_a_named_preset_or_family_is_kept(tmp_path):
    assert resolve_raw(dataset="digits") == (ganforge.load_preset("default"), None)  # the default's own data
    raw, note = resolve_raw("default", dataset="grid")
    assert raw["model"]["family"] == "dcgan" and note is None
    raw, note = resolve_raw(dataset="grid", overrides=["model.family=dcgan"])
    assert raw["model"]["family"] == "dcgan" and note is None
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"family": "mlp"}}))
    raw, note = resolve_raw(dataset="mnist", config=config)
    assert raw["model"] == {**ganforge.load_preset("default")["model"], "family": "mlp"} and note is None


def test_a_config_file_may_extend_a_preset(tmp_path, capsys):
    """`extends: mnist` in a --config file starts from that preset, as in a preset file; two presets is an error."""
    config = tmp_path / "mine.yaml"
    config.write_text("extends: mnist-fast\ntrain: {steps: 7}\nmodel: {g_channels: 16}\n")
    raw, note = resolve_raw(config=config)
    fast = ganforge.load_preset("mnist-fast")
    assert raw["train"] == {**fast["train"], "steps": 7} and raw["data"] == fast["data"] and note is None
    assert raw["model"] == {**fast["model"], "g_channels": 16} and "extends" not in raw
    assert resolve_raw("mnist-fast", config=config) == (raw, None)  # the same preset named twice is fine
    assert resolve_raw(config={"extends": "toy-ring"})[0] == ganforge.load_preset("toy-ring")
    ganforge.config_from_dict(raw)  # valid as is
    with pytest.raises(GanforgeError, match=f"config {config} extends preset 'mnist-fast' but preset 'toy-ring'"):
        resolve_raw("toy-ring", config=config)
    config.write_text("extends: mnist-fats\n")
    with pytest.raises(GanforgeError, match="extends must name a preset, got 'mnist-fats'; valid: .*mnist-fast"):
        resolve_raw(config=config)
    assert main(["train", "--config", str(config), "--dry-run"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line naming the problem


@pytest.mark.parametrize("text,problem", [("data: -1\n", "section 'data' must be a mapping, got int"),
                                          ("model: !!binary aGk=\n", "section 'model' must be a mapping, got bytes")])
def test_a_config_section_that_is_not_a_mapping_is_one_error_line(tmp_path, capsys, text, problem):
    config = tmp_path / "bad.yaml"
    config.write_text(text)  # both once crashed resolve_raw with a traceback (found by tests/test_fuzz.py)
    assert main(["train", "--preset", "toy-ring", "--config", str(config), "--dataset", "grid", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1


def test_an_empty_config_section_changes_nothing(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\ntrain: {steps: 3}\n")
    raw, _ = resolve_raw("toy-ring", config=config)
    assert raw["data"] == ganforge.load_preset("toy-ring")["data"] and raw["train"]["steps"] == 3


def test_cli_says_what_it_chose_and_a_misfit_family_stays_an_error(tmp_path, capsys):
    assert main(["train", "--dataset", "grid", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "toy MLP" in out.err and yaml.safe_load(out.out)["model"]["family"] == "mlp"
    args = ["train", "--dataset", "grid", "--set", "model.family=dcgan", "--steps", "2", "--out", str(tmp_path / "r")]
    assert main(args + [f"--set={a}" for a in TINY]) == 2
    assert "the dcgan family needs image data" in capsys.readouterr().err


def test_cli_resize_flag_reaches_the_config(capsys):
    assert main(["train", "--dataset", "folder", "--data-root", "/x", "--image-size", "16", "--resize", "center-crop",
                 "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["resize"] == "center-crop"


def test_train_by_preset_name_and_keywords(tmp_path, capsys):
    result = ganforge.train("toy-ring", tmp_path / "ring", steps=3, seed=5, overrides=TINY)
    assert result.step == 3
    saved = yaml.safe_load((tmp_path / "ring" / "config.yaml").read_text())
    assert saved["train"]["seed"] == 5 and saved["model"]["latent_dim"] == 2 and saved["data"]["limit"] == 128
    again = ganforge.train(run_dir=tmp_path / "ring", resume=True, steps=5)
    assert again.step == 5
    grid = ganforge.train(dataset="grid", run_dir=tmp_path / "grid", steps=2, overrides=TINY)
    assert "toy MLP" in capsys.readouterr().out and grid.step == 2
    with pytest.raises(GanforgeError, match="takes a resolved Config as is"):
        ganforge.train(ganforge.resolve_config("toy-ring"), tmp_path / "x", steps=3)
    with pytest.raises(GanforgeError, match="not empty"):
        ganforge.train("toy-ring", tmp_path / "ring", steps=3, overrides=TINY)


def test_generate_and_evaluate_take_a_path(tmp_path):
    run = tiny_run(tmp_path / "cond", model={"conditional": True})
    threes = ganforge.generate(run, 6, labels=3, seed=2)
    sampler = ganforge.load_sampler(run)
    assert torch.equal(threes, sampler.generate(6, seed=2, labels=torch.full((6,), 3)))
    with pytest.raises(GanforgeError, match=r"labels must be in \[0, 9\]"):
        ganforge.generate(run, 2, labels=10)
    ganforge.generate(run, 4, out=tmp_path / "s.npz")
    assert (tmp_path / "s.npz").exists()
    points = tiny_run(tmp_path / "ring", "points")
    scores = ganforge.evaluate(points, "modes", num=200)
    assert set(scores) == {"modes", "high_quality", "reverse_kl", "mode_spread"} and 0 <= scores["modes"] <= 8
    fake = ganforge.generate(points, 200)
    assert ganforge.evaluate(fake, "modes", real="ring") == pytest.approx(scores)  # samples: the same numbers


def test_public_api_has_docstrings():
    for name in ("train", "generate", "evaluate", "interpolate", "export", "load_sampler", "resolve_config"):
        assert getattr(ganforge, name).__doc__, name


@pytest.mark.parametrize("script, args", [
    ("conditional_digits.py", ["--steps", "2"]),
    ("synthetic_training_set.py", ["--steps", "2", "--per-class", "10"]),
])
def test_examples_run(script, args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [script, *args, "--out", str(tmp_path / "run")])
    runpy.run_path(str(REPO / "examples" / script), run_name="__main__")
    out = capsys.readouterr().out
    if script == "conditional_digits.py":
        from PIL import Image

        with Image.open(tmp_path / "run" / "per-class.png") as im:
            assert im.size == (8 * 34 + 2, 10 * 34 + 2)  # 8 per row, a row per class, 32x32 + padding 2
    else:
        assert "synthetic only (100 images)" in out and "real + synthetic" in out


def test_every_subcommand_and_option_has_help():
    from ganforge.cli import build_parser

    subparsers = build_parser()._subparsers._group_actions[0]
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    for name, parser in subparsers.choices.items():
        assert helps.get(name) and parser.description, f"ganforge {name}: no help/description"
        for action in parser._actions:
            assert action.help, f"ganforge {name} {action.option_strings or action.dest}: no help text"
