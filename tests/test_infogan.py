"""InfoGAN: latent layout, code specs, the MI losses against hand-computed values, a short run whose Q recovers
the categorical code (and whose code picks the data's cluster), the sampler's codes control, save/load, resume,
and `generate --code / --sweep` with its errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from bars import NAME as BARS
from bars import NUM_CLASSES, bar_class
from conftest import assert_checkpoints_equal
from ganforge.aux_losses import class_loss, gaussian_code_nll, mse_code_loss
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.errors import ConfigError, GanforgeError
from ganforge.metrics.clustering import cluster_accuracy
from ganforge.models import FAMILIES, DataSpec
from ganforge.models.infogan import InfoGANSampler
from ganforge.saved import load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.trainer import train

SPEC = DataSpec(shape=(1, 16, 16), num_classes=0)


def model_config(**fields):
    raw = {"data": {"name": BARS}, "model": {"family": "infogan", "latent_dim": 5, "g_channels": 8, "d_channels": 8,
                                             "g_hidden": 16, "d_hidden": 16, "q_hidden": 8, **fields}}
    return config_from_dict(raw).model


# ------------------------------------------------------------------------------------------ shapes, codes


def test_latent_layout_and_code_specs():
    model = model_config(categorical_codes=[10, 3], continuous_codes=2, continuous_range=1.5)
    nets = FAMILIES["infogan"].networks(model, SPEC)
    G, D = nets["G"](), nets["D"]()
    assert G.latent_dim == 5 + 2 + 2  # noise, one column per categorical code, the continuous codes
    z = G.sample_latent(500, generator=torch.Generator().manual_seed(0))
    noise, cats, cont = G.split(z)
    assert noise.shape == (500, 5) and cats.shape == (500, 2) and cont.shape == (500, 2)
    assert cats[:, 0].min() == 0 and cats[:, 0].max() == 9 and cats[:, 1].max() == 2
    assert cont.abs().max() <= 1.5 and cont.abs().max() > 1.3
    assert G(z).shape == (500, 1, 16, 16)
    logits, q = D(G(z[:4]), aux=True)
    assert logits.shape == (4,) and q.shape == (4, 10 + 3 + 2 * 2)  # logits per code, Gaussian mean + log-std
    specs = G.code_specs()
    assert [(s.name, s.kind, s.size) for s in specs.values()] == [
        ("c0", "categorical", 10), ("c1", "categorical", 3), ("c2", "continuous", 1), ("c3", "continuous", 1)]
    assert (specs["c2"].low, specs["c2"].high) == (-3.0, 3.0)
    mse = model_config(continuous_loss="mse", continuous_codes=3)
    assert FAMILIES["infogan"].networks(mse, SPEC)["D"]().aux[-1].out_features == 10 + 3


def test_codes_are_set_checked_and_change_the_samples():
    model = model_config(categorical_codes=[4], continuous_codes=1)
    G = FAMILIES["infogan"].networks(model, SPEC)["G"]().eval()
    sampler = InfoGANSampler({"G": G}, config=model, spec=SPEC)
    assert list(sampler.codes) == ["c0", "c1"]
    z = G.sample_latent(3, generator=torch.Generator().manual_seed(1))
    set_ = G.with_codes(z, {"c0": 2, "c1": torch.tensor([0.5, -1.0, 2.0])})
    assert torch.equal(set_[:, 5], torch.full((3,), 2.0)) and torch.equal(set_[:, 6], torch.tensor([0.5, -1.0, 2.0]))
    assert torch.equal(set_[:, :5], z[:, :5])  # the noise is untouched
    assert not torch.allclose(sampler(z, codes={"c0": 0}), sampler(z, codes={"c0": 3}))
    for codes, message in [({"c7": 1}, "no code 'c7'; its codes: c0 (categorical, 4 values), c1 (continuous)"),
                           ({"c0": 4}, "whole numbers 0..3, got 4"), ({"c0": 1.5}, "whole numbers 0..3"),
                           ({"c1": torch.zeros(2)}, "one value per sample (3)")]:
        with pytest.raises(GanforgeError, match=message.replace("(", r"\(").replace(")", r"\)")):
            G.with_codes(z, codes)


@pytest.mark.parametrize(("fields", "message"), [
    ({"conditional": True}, "learns without labels"),
    ({"categorical_codes": [1]}, "sizes must be >= 2"),
    ({"categorical_codes": [], "continuous_codes": 0}, "at least one code"),
    ({"continuous_loss": "l1"}, "gaussian or mse"),
    ({"info_weight_continuous": -0.1}, "info_weight_continuous must be >= 0"),
])
def test_bad_configs_are_named(fields, message):
    with pytest.raises(ConfigError, match=message):
        model_config(**fields)


# ------------------------------------------------------------------------------------------ losses


def test_mi_losses_against_hand_computed_values():
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    mean, log_std = torch.zeros(2, 1), torch.tensor([[0.0], [math.log(2.0)]])
    value = torch.tensor([[1.0], [2.0]])
    # N(1; 0, 1): 0.5 + c;  N(2; 0, 2^2): ln 2 + 0.5 * (2/2)^2 + c
    expected = (0.5 + half_log_2pi + math.log(2.0) + 0.5 + half_log_2pi) / 2
    assert gaussian_code_nll(mean, log_std, value).item() == pytest.approx(expected)
    # Summed over codes, averaged over samples: ((1-0)^2 + (3-1)^2 + (0-0)^2 + (-1-1)^2) / 2
    assert mse_code_loss(torch.tensor([[1.0, 3.0], [0.0, -1.0]]),
                         torch.tensor([[0.0, 1.0], [0.0, 1.0]])).item() == pytest.approx(4.5)


def test_family_info_loss_weighs_each_code_type():
    model = model_config(categorical_codes=[2], continuous_codes=1, info_weight_categorical=2.0,
                         info_weight_continuous=0.5)
    latent = torch.tensor([[0.0] * 5 + [1.0, 1.0]])  # noise, c0 = 1, c1 = 1.0
    q = torch.tensor([[0.0, math.log(3.0), 0.0, 0.0]])  # c0 logits (p(1) = 3/4), c1 mean 0, log-std 0
    seen = {}
    loss = FAMILIES["infogan"].info_loss(model, q, latent, lambda name, v: seen.setdefault(name, float(v.mean())))
    expected_cat, expected_cont = -math.log(0.75), 0.5 + 0.5 * math.log(2 * math.pi)
    assert loss.item() == pytest.approx(2.0 * expected_cat + 0.5 * expected_cont)
    assert seen["info_categorical"] == pytest.approx(expected_cat) and seen["q_acc_c0"] == 1.0
    assert class_loss(q[:, :2], torch.tensor([1])).item() == pytest.approx(expected_cat)


# ------------------------------------------------------------------------------------------ learning


def bars_config(steps: int, **train_fields):
    return config_from_dict({
        "data": {"name": BARS},
        "model": {"family": "infogan", "latent_dim": 4, "g_channels": 8, "d_channels": 8, "g_hidden": 0,
                  "d_hidden": 0, "q_hidden": 16, "categorical_codes": [NUM_CLASSES], "continuous_codes": 1},
        "train": {"batch_size": 32, "steps": steps, "lr_g": 2e-3, "lr_d": 1e-3, "log_every": 25,
                  "sample_every": steps, "checkpoint_every": steps, "progress": False, "ema_kimg": 0.5,
                  **train_fields},
    })


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(bars_config(200), tmp_path_factory.mktemp("infogan") / "run").run_dir


def test_q_recovers_the_code_and_the_code_picks_the_cluster(run):
    sampler = load_sampler(run)
    codes = torch.arange(400) % NUM_CLASSES
    images = sampler.generate(400, seed=4, codes={"c0": codes})
    state = load_checkpoint(run)
    cfg = config_from_dict(__import__("yaml").safe_load(state["config"]))
    D = FAMILIES["infogan"].networks(cfg.model, DataSpec.from_dict(state["spec"]))["D"]()
    D.load_state_dict(state["networks"]["D"])
    with torch.no_grad():
        q = D.eval()(images.float() / 127.5 - 1, aux=True)[1][:, :NUM_CLASSES].argmax(1)
    assert (q == codes).float().mean() > 0.9  # Q reads the code back from G's samples (chance 0.25)
    # Unsupervised, the code has come to select the data's clusters: one bar position per value.
    assert cluster_accuracy(codes, bar_class(images)) > 0.7


def test_sampler_codes_control_save_load_and_defaults(run, tmp_path):
    sampler = load_sampler(run)
    assert isinstance(sampler, InfoGANSampler) and list(sampler.codes) == ["c0", "c1"]
    plain = sampler.generate(6, seed=2)
    assert torch.equal(plain, sampler.generate(6, seed=2))  # unset codes come from the seed
    fixed = sampler.generate(6, seed=2, codes={"c0": 1})
    # The same as drawing the latent (noise and codes) from the seed, then setting c0.
    z = sampler.sample_latent(6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        manual = sampler(z, codes={"c0": 1}).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(fixed, manual) and not torch.equal(fixed, plain)
    # Per-sample tensors are sliced with the generation batches.
    batched = sampler.generate(6, seed=2, codes={"c0": torch.tensor([0, 1, 2, 3, 3, 2])}, batch_size=4)
    for row, value in ((1, 1), (4, 3), (5, 2)):
        assert torch.equal(batched[row], sampler.generate(6, seed=2, codes={"c0": value}, batch_size=4)[row])
    again = load_sampler(sampler.save_pretrained(tmp_path / "pretrained"))
    assert torch.equal(again.generate(6, seed=2, codes={"c0": 1, "c1": -0.5}),
                       sampler.generate(6, seed=2, codes={"c0": 1, "c1": -0.5}))


def test_resume_is_exact(tmp_path):
    straight = load_checkpoint(train(bars_config(8, log_every=4), tmp_path / "a").run_dir)
    train(bars_config(4, log_every=4), tmp_path / "b")
    assert main(["train", "--resume", str(tmp_path / "b"), "--steps", "8"]) == 0
    assert_checkpoints_equal(straight, load_checkpoint(tmp_path / "b"))


# ------------------------------------------------------------------------------------------ CLI


def test_generate_code_and_sweep(run, tmp_path):
    out = tmp_path / "two.npz"
    assert main(["generate", str(run), "--code", "c0=2", "--code", "c1=0.5", "--num", "30", "--format", "npz",
                 "--out", str(out)]) == 0
    images = torch.from_numpy(np.load(out)["images"])
    sampler = load_sampler(run)
    assert torch.equal(images, sampler.generate(30, seed=0, codes={"c0": 2, "c1": 0.5}))
    # A categorical sweep on a grid: one row per noise, one column per value of c0, each column one cluster.
    grid_path = tmp_path / "sweep.png"
    assert main(["generate", str(run), "--sweep", "c0", "--grid", "--num", "12", "--out", str(grid_path)]) == 0
    grid = np.asarray(Image.open(grid_path).convert("L")).astype(np.float32)
    assert grid.shape == (3 * 10 + 2, 4 * 10 + 2)  # 12 // 4 = 3 rows, 4 columns
    cells = np.stack([grid[2 + 10 * r : 10 + 10 * r, 2 + 10 * c : 10 + 10 * c] for r in range(3) for c in range(4)])
    z = sampler.sample_latent(3, generator=torch.Generator().manual_seed(0)).repeat_interleave(4, 0)
    with torch.no_grad():
        expected = sampler(z, codes={"c0": torch.arange(4).repeat(3)}).add(1).mul(127.5).round().clamp(0, 255)
    assert np.array_equal(cells, expected[:, 0].numpy())  # row r: noise r; column c: c0 = c
    # A continuous sweep: every row holds one noise; along it only c1 moves (from -2 to 2).
    values = tmp_path / "cont.npz"
    assert main(["generate", str(run), "--sweep", "c1=-2:2:5", "--code", "c0=1", "--num", "10", "--format", "npz",
                 "--out", str(values)]) == 0
    swept = torch.from_numpy(np.load(values)["images"])
    z = sampler.sample_latent(2, generator=torch.Generator().manual_seed(0)).repeat_interleave(5, 0)
    codes = {"c0": 1.0, "c1": torch.linspace(-2, 2, 5).repeat(2)}
    with torch.no_grad():
        expected = sampler(z, codes=codes).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(swept, expected)


@pytest.mark.parametrize(("args", "message"), [
    (["--code", "c5=1"], "--code: this model has no code 'c5'; its codes: c0, c1"),
    (["--code", "c0=4"], "--code c0 is categorical: a whole number in 0..3, got 4"),
    (["--code", "c0"], "--code takes NAME=VALUE"),
    (["--code", "c1=abc"], "'abc' is not a number"),
    (["--sweep", "c1=-2:2"], "--sweep takes NAME=START:STOP:STEPS"),
    (["--sweep", "c1=-2:2:1"], "STEPS must be a whole number >= 2"),
    (["--sweep", "c0=0:3:3"], "does not fall on whole numbers"),
    (["--sweep", "c9"], "--sweep: this model has no code 'c9'"),
    (["--class", "1"], "--class needs a conditional model"),
])
def test_generate_bad_codes_are_one_error_line(run, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["generate", str(run), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()
