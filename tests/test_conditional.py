"""Conditional GAN (concat / cbn G; concat / projection D) and ACGAN: shapes, losses against hand-computed
values, config checks, short runs that learn the requested class, sampler round trips, `generate --class`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from bars import NAME as BARS
from bars import NUM_CLASSES, UNLABELLED, bar_class
from ganforge.aux_losses import acgan_d_class_loss, class_loss
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.errors import ConfigError
from ganforge.metrics.clustering import cluster_accuracy
from ganforge.models import FAMILIES, DataSpec
from ganforge.nn.conditional import ConditionalBatchNorm2d, label_maps
from ganforge.saved import load_sampler
from ganforge.train.trainer import train

SPEC = DataSpec(shape=(1, 16, 16), num_classes=10)


def model_config(family: str, **fields):
    raw = {"data": {"name": BARS}, "model": {"family": family, "latent_dim": 8, "g_channels": 8, "d_channels": 8,
                                             **fields}}
    return config_from_dict(raw).model


# ------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize(("g_condition", "d_condition"), [("concat", "concat"), ("cbn", "projection")])
def test_cgan_shapes(g_condition, d_condition):
    model = model_config("cgan", g_condition=g_condition, d_condition=d_condition, g_hidden=12, d_hidden=12)
    nets = FAMILIES["cgan"].networks(model, SPEC)
    G, D = nets["G"](), nets["D"]()
    z, y = G.sample_latent(5), G.sample_labels(5)
    assert z.shape == (5, 8) and y.shape == (5,) and int(y.max()) < 10
    x = G(z, y)
    assert x.shape == (5, 1, 16, 16) and x.abs().max() <= 1
    assert D(x, y).shape == (5,) and D.features(x, y).shape == (5, 12)
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    # The class changes what G draws from the same noise.
    assert not torch.allclose(G.eval()(z, y), G(z, (y + 1) % 10))


def test_acgan_discriminator_has_a_class_head():
    model = model_config("acgan")
    D = FAMILIES["acgan"].networks(model, SPEC)["D"]()
    logits, classes = D(torch.zeros(3, 1, 16, 16), aux=True)
    assert logits.shape == (3,) and classes.shape == (3, 10)
    assert D.projection is None and not D.concat  # the paper's D reads no label


def test_concat_d_reads_the_label_maps():
    maps = label_maps(torch.tensor([2, 0]), 3, (2, 2), dtype=torch.float32)
    assert maps.shape == (2, 3, 2, 2)
    assert maps[0, 2].eq(1).all() and maps[0, :2].eq(0).all() and maps[1, 0].eq(1).all()
    D = FAMILIES["cgan"].networks(model_config("cgan", d_condition="concat"), SPEC)["D"]()
    assert D.trunk[0].in_channels == 1 + 10
    x = torch.randn(4, 1, 16, 16)
    assert not torch.allclose(D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.ones(4, dtype=torch.long)))


def test_conditional_batch_norm_starts_plain_and_then_depends_on_the_class():
    torch.manual_seed(0)
    cbn, bn = ConditionalBatchNorm2d(3, 4), torch.nn.BatchNorm2d(3)
    x, y = torch.randn(6, 3, 2, 2), torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(cbn(x, y), bn(x))
    with torch.no_grad():
        cbn.gain.weight[1] = 2.0
        cbn.bias.weight[1] = 0.5
    normed = bn(x)
    torch.testing.assert_close(cbn(x, y)[1], normed[1] * 2 + 0.5)
    torch.testing.assert_close(cbn(x, y)[0], normed[0])


# ------------------------------------------------------------------------------------------ losses


def test_class_losses_against_hand_computed_values():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    labels = torch.tensor([1, 0])
    # softmax of [0, ln 3] is [1/4, 3/4]; of [0, 0] is [1/2, 1/2]
    expected = -(math.log(0.75) + math.log(0.5)) / 2
    assert class_loss(logits, labels).item() == pytest.approx(expected)
    fake_logits, fake_labels = torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([1])  # p(1) = 1/4
    d = acgan_d_class_loss(logits, labels, fake_logits, fake_labels, real_weight=1.0, fake_weight=0.5)
    assert d.item() == pytest.approx(expected + 0.5 * -math.log(0.25))


def test_cluster_accuracy_finds_the_best_matching():
    assert cluster_accuracy([2, 2, 0, 0, 1, 1], [0, 0, 1, 1, 2, 2]) == 1.0  # a relabelling is perfect
    # clusters 0 -> class 0 (2 of 3) and 1 -> class 1 (2 of 3): 4 of 6, not the 5 of 6 a many-to-one map gives
    assert cluster_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0]) == pytest.approx(4 / 6)
    assert cluster_accuracy([0, 0, 0, 0], [0, 1, 0, 1]) == pytest.approx(0.5)


# ------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize(("family", "fields", "message"), [
    ("cgan", {"conditional": False}, "always conditional"),
    ("cgan", {"d_condition": "none"}, "d_condition must be one of concat, projection"),
    ("cgan", {"g_condition": "film"}, "g_condition must be one of"),
    ("cgan", {"d_pack": 2}, "does not support d_pack"),
    ("acgan", {"class_weight_g": -1.0}, "class_weight_g must be >= 0"),
    ("acgan", {"d_condition": "both"}, "d_condition must be one of none, concat, projection"),
])
def test_bad_configs_are_named(family, fields, message):
    with pytest.raises(ConfigError, match=message):
        model_config(family, **fields)


def test_unlabelled_data_is_rejected(tmp_path):
    raw = {"data": {"name": UNLABELLED}, "model": {"family": "cgan", "g_channels": 4, "d_channels": 4},
           "train": {"progress": False}}
    with pytest.raises(ConfigError, match="needs labelled data"):
        train(config_from_dict(raw), tmp_path / "r")


# ------------------------------------------------------------------------------------------ learning


def bars_config(family: str, steps: int, **model):
    return config_from_dict({
        "data": {"name": BARS},
        "model": {"family": family, "latent_dim": 8, "g_channels": 8, "d_channels": 8, "label_embed_dim": 4,
                  **model},
        "train": {"batch_size": 32, "steps": steps, "lr_g": 2e-3, "lr_d": 2e-3, "log_every": 50,
                  "sample_every": steps, "checkpoint_every": steps, "progress": False, "ema_kimg": 0.5},
    })


def requested_class_accuracy(sampler, num: int = 400) -> float:
    labels = torch.arange(num) % NUM_CLASSES
    return (bar_class(sampler.generate(num, seed=3, labels=labels)) == labels).float().mean().item()


@pytest.fixture(scope="module")
def projection_run(tmp_path_factory):
    return train(bars_config("cgan", 150), tmp_path_factory.mktemp("cgan") / "run").run_dir


@pytest.mark.parametrize(("family", "model"), [("cgan", {"d_condition": "concat"}),
                                               ("cgan", {"g_condition": "cbn", "d_condition": "projection"}),
                                               ("acgan", {})])
def test_short_runs_draw_the_requested_class(tmp_path, family, model):
    run = train(bars_config(family, 150, **model), tmp_path / "run").run_dir
    accuracy = requested_class_accuracy(load_sampler(run))
    assert accuracy > 0.8, accuracy  # chance: 0.25


def test_projection_run_learns_and_its_sampler_round_trips(projection_run, tmp_path):
    sampler = load_sampler(projection_run)
    assert requested_class_accuracy(sampler) > 0.8
    again = load_sampler(sampler.save_pretrained(tmp_path / "pretrained"))
    labels = torch.tensor([3, 1, 0, 2])
    assert torch.equal(again.generate(4, seed=5, labels=labels), sampler.generate(4, seed=5, labels=labels))


# ------------------------------------------------------------------------------------------ CLI


def test_generate_class_and_label_alias(projection_run, tmp_path):
    out = tmp_path / "three.npz"
    assert main(["generate", str(projection_run), "--class", "3", "--num", "40", "--format", "npz",
                 "--out", str(out)]) == 0
    images = torch.from_numpy(np.load(out)["images"])
    assert images.shape == (40, 1, 8, 8)
    assert (bar_class(images) == 3).float().mean() > 0.8
    alias = tmp_path / "alias.npz"
    assert main(["generate", str(projection_run), "--label", "3", "--num", "40", "--format", "npz",
                 "--out", str(alias)]) == 0
    assert np.array_equal(np.load(alias)["images"], images.numpy())
    several = tmp_path / "several.npz"
    assert main(["generate", str(projection_run), "--class", "0,2", "--num", "40", "--format", "npz",
                 "--out", str(several)]) == 0
    drawn = bar_class(torch.from_numpy(np.load(several)["images"]))
    assert (drawn == torch.tensor([0, 2]).repeat(20)).float().mean() > 0.8


def test_generate_grid_has_one_row_per_class(projection_run, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["generate", str(projection_run), "--grid", "--class", "1,3,0", "--num", "12",
                 "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out).convert("L")).astype(np.float32)
    assert grid.shape == (3 * 10 + 2, 4 * 10 + 2)  # 3 rows (classes) x 4 columns, 8x8 cells, 2-pixel padding
    cells = np.stack([grid[2 + 10 * r : 10 + 10 * r, 2 + 10 * c : 10 + 10 * c] for r in range(3) for c in range(4)])
    classes = bar_class(torch.from_numpy(cells)[:, None]).view(3, 4)  # (rows, cols)
    assert (classes == torch.tensor([1, 3, 0])[:, None]).float().mean() > 0.8


@pytest.mark.parametrize(("args", "message"), [
    (["--class", "4"], "--class must be in [0, 3], got 4"),
    (["--class", "1,x"], "--class takes class numbers"),
    (["--code", "c0=1"], "--code: this model has no latent codes"),
    (["--sweep", "c1=-2:2:8"], "--sweep: this model has no latent codes"),
])
def test_generate_bad_input_is_one_error_line(projection_run, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["generate", str(projection_run), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_class_on_an_unconditional_model_is_an_error(tmp_path, capsys):
    run = train(config_from_dict({"data": {"name": "ring", "num_points": 256},
                                  "model": {"family": "mlp", "latent_dim": 2, "g_hidden": 8, "d_hidden": 8},
                                  "train": {"batch_size": 32, "steps": 2, "progress": False}}), tmp_path / "r").run_dir
    assert main(["generate", str(run), "--class", "1", "--out", str(tmp_path / "o")]) == 2
    assert "needs a conditional model" in capsys.readouterr().err
