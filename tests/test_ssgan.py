"""Semi-supervised GAN (model.family ssgan) and `ganforge classify`: losses against hand-computed values, shapes,
the labelled subset (balanced, seeded, recorded), learning on tiny data, exact resume, and the CLI's errors."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import assert_checkpoints_equal
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.data import DATASETS, TensorData
from ganforge.errors import ConfigError
from ganforge.losses import get_loss
from ganforge.models import DataSpec
from ganforge.models.ssgan import (
    LabelledSubset,
    SSGANConfig,
    SSGANDiscriminator,
    SSGANGenerator,
    choose_labelled,
    feature_matching_loss,
    labelled_indices,
    realness_logit,
    supervised_loss,
    unsupervised_loss,
)
from ganforge.saved import load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import train

DATASET = "test-digits-split"
TEST_ROWS = 400  # the last 400 of scikit-learn's 1,797 digits are the test split


def _digits_split(cfg) -> TensorData:
    data = DATASETS["digits"](cfg)
    rows = slice(-TEST_ROWS, None) if cfg.split == "test" else slice(None, -TEST_ROWS)
    return TensorData(data.data[rows].contiguous(), data.labels[rows], 10, DATASET)


if DATASET not in DATASETS:
    DATASETS.register(DATASET)(_digits_split)

RAW = {
    "data": {"name": DATASET, "image_size": [8, 8]},
    "model": {"family": "ssgan", "latent_dim": 16, "g_hidden": [64], "d_hidden": [96, 48], "labels_per_class": 3},
    "train": {"batch_size": 50, "steps": 160, "log_every": 40, "sample_every": 160, "checkpoint_every": 80,
              "progress": False, "lr_g": 3e-3, "lr_d": 3e-3},
    "eval": {"every": 80, "metrics": ["accuracy"]},
}


def _raw(**train):
    return {**RAW, "train": {**RAW["train"], **train}}


# ------------------------------------------------------------------------------------------ losses, shapes


def test_unsupervised_loss_matches_the_papers_formula_with_d_as_z_over_z_plus_1():
    real = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    fake = torch.tensor([[-3.0, 1.0, 0.2], [1.5, -0.5, 0.0]])

    def d_of(logits):  # D(x) = Z / (Z + 1), Z = sum_k exp(l_k), computed directly
        z = logits.exp().sum(1)
        return z / (z + 1)

    expected = -0.5 * d_of(real).log().mean() - 0.5 * (1 - d_of(fake)).log().mean()
    assert unsupervised_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-6)
    # What the D phase computes: the config's loss (nonsaturating: BCE) on the logsumexp "realness" logit, halved.
    via_loss = 0.5 * get_loss("nonsaturating").d(realness_logit(real), realness_logit(fake))
    assert via_loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Stable where exp would overflow: D(x) -> 1 for huge logits, so the real term -> 0.
    big = torch.full((1, 3), 200.0)
    assert torch.isfinite(unsupervised_loss(big, -big))
    assert unsupervised_loss(big, -big).item() == pytest.approx(0.5 * math.log1p(3 * math.exp(-200)), abs=1e-6)


def test_supervised_and_feature_matching_losses_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    by_hand = -(math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
                + math.log(math.exp(0.3) / (math.exp(0.1) + math.exp(0.2) + math.exp(0.3)))) / 2
    assert supervised_loss(logits, labels).item() == pytest.approx(by_hand, rel=1e-6)
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # means (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])  # means (1, 1)
    assert feature_matching_loss(real, fake).item() == pytest.approx((1 + 4) / 2)


def test_shapes_and_noise_only_while_training():
    model = SSGANConfig(latent_dim=8, g_hidden=[16], d_hidden=[32, 24, 12], feature_layer=1)
    spec = DataSpec(shape=(1, 8, 8), num_classes=10)
    G, D = SSGANGenerator(config=model, spec=spec), SSGANDiscriminator(config=model, spec=spec)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 1, 8, 8) and x.abs().max() <= 1
    assert D(x).shape == (5, 10) and D.features(x).shape == (5, 24)
    assert not torch.equal(D(x), D(x))  # Gaussian noise layers are on while training
    D.eval()
    assert torch.equal(D(x), D(x))


def test_config_rejects_what_ssgan_cannot_do():
    for bad in ({"labels_per_class": 0}, {"d_pack": 2}, {"conditional": True}, {"feature_layer": 5}):
        with pytest.raises(ConfigError):
            config_from_dict({**RAW, "model": {**RAW["model"], **bad}})


def test_cluster_labels_are_refused(tmp_path):
    raw = {**RAW, "data": {**RAW["data"], "labels": "clusters", "clusters": 4}, "eval": {}}
    with pytest.raises(ConfigError, match="ssgan learns the dataset's classes .* data.labels: clusters"):
        train(config_from_dict(raw), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


# ------------------------------------------------------------------------------------------ labelled subset


def test_labelled_subset_is_balanced_seeded_and_bounded():
    labels = torch.arange(200) % 10
    a = choose_labelled(labels, 10, 4, seed=0)
    assert len(a) == 40 and torch.equal(torch.bincount(labels[a], minlength=10), torch.full((10,), 4))
    assert len(set(a.tolist())) == 40
    assert torch.equal(a, choose_labelled(labels, 10, 4, seed=0))  # reproducible from the seed
    assert not torch.equal(a, choose_labelled(labels, 10, 4, seed=1))  # another seed, another draw
    with pytest.raises(ConfigError, match="labels_per_class 21 is more than the data has: class 0 has 20"):
        choose_labelled(labels, 10, 21, seed=0)


def test_labelled_batches_depend_only_on_the_step():
    subset = LabelledSubset(num=6, shape=(1, 2, 2), seed=3)
    images = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 1, 2, 2)
    subset.fill(torch.arange(6), images, torch.arange(6))
    _, first = subset.batch(0, 6)
    assert sorted(first.tolist()) == list(range(6))  # one batch of the subset's size is one permutation of it
    _, again = subset.batch(0, 6)
    assert torch.equal(first, again)
    _, crossing = subset.batch(1, 4)  # positions 4..7: the end of epoch 0 and the start of epoch 1
    assert torch.equal(crossing[:2], first[4:])


# ------------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def ssgan_run(tmp_path_factory):
    return train(config_from_dict(RAW), tmp_path_factory.mktemp("ssgan") / "run").run_dir


def test_ssgan_learns_to_classify_from_30_labels(ssgan_run):
    evals = [r for r in read_metrics(ssgan_run / "metrics.jsonl") if r.get("event") == "eval"]
    assert [r["step"] for r in evals] == [80, 160]
    assert evals[-1]["test_accuracy"] >= 0.6, evals  # 10 classes: chance is 0.1; 30 labels, 160 steps
    # The labelled rows the run used are recorded in its checkpoint: 3 of each class, chosen by the seed.
    indices = labelled_indices(ssgan_run)
    train_labels = _digits_split(config_from_dict(RAW).data).labels
    assert torch.equal(indices, choose_labelled(train_labels, 10, 3, seed=0))
    state = load_checkpoint(ssgan_run)
    assert torch.equal(state["family_state"]["labelled"]["labels"], train_labels[indices])


def test_ssgan_resumes_bitwise(tmp_path):
    straight = train(config_from_dict(_raw(steps=40, log_every=10)), tmp_path / "straight").run_dir
    train(config_from_dict(_raw(steps=20, log_every=10)), tmp_path / "split")
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "40"]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(tmp_path / "split")
    assert_checkpoints_equal(a, b, sections=("networks", "optimizers", "family_state"))


def test_too_many_labels_per_class_is_one_error_line(tmp_path, capsys):
    import yaml

    config = tmp_path / "ssgan.yaml"
    config.write_text(yaml.safe_dump(RAW))
    code = main(["train", "--preset", "ssgan-mnist", "--config", str(config), "--labels-per-class", "500",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "labels_per_class 500 is more than the data has" in err


def test_accuracy_metric_is_for_classifiers_only(tmp_path):
    dcgan = {"data": {"name": DATASET, "image_size": [8, 8]}, "model": {"family": "dcgan"},
             "train": {"steps": 1, "progress": False}, "eval": {"every": 1, "metrics": ["accuracy"]}}
    with pytest.raises(ConfigError, match="scores a classifier"):
        train(config_from_dict(dcgan), tmp_path / "r")


# ------------------------------------------------------------------------------------------ classify


def test_classify_cli_prints_accuracy_and_writes_predictions(ssgan_run, tmp_path, capsys):
    test = _digits_split(config_from_dict({**RAW, "data": {**RAW["data"], "split": "test"}}).data)
    npz = tmp_path / "test.npz"
    np.savez(npz, images=test.data.numpy(), labels=test.labels.numpy())
    out = tmp_path / "preds.csv"
    assert main(["classify", str(ssgan_run), "--data", str(npz), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == TEST_ROWS and set(rows[0]) == {"index", "predicted", "probability", "label"}
    correct = sum(r["predicted"] == r["label"] for r in rows)
    assert f"accuracy {correct / TEST_ROWS:.4%} ({correct} of {TEST_ROWS})" in printed
    # The same numbers as the sampler (what the run logged at its last evaluation, on the same images).
    sampler = load_sampler(ssgan_run)
    assert sampler.task == "classify"
    assert [int(r["predicted"]) for r in rows] == sampler.predict(test.data).tolist()
    last_eval = [r for r in read_metrics(ssgan_run / "metrics.jsonl") if r.get("event") == "eval"][-1]
    assert last_eval["test_accuracy"] == pytest.approx(correct / TEST_ROWS)

    # An existing --out is kept without --overwrite.
    before = out.read_bytes()
    assert main(["classify", str(ssgan_run), "--data", str(npz), "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before

    # save_pretrained -> load_sampler: the same classifier.
    again = load_sampler(sampler.save_pretrained(tmp_path / "pretrained"))
    assert again.task == "classify" and torch.equal(again.classify(test.data), sampler.classify(test.data))


def test_classify_a_folder_with_class_subfolders(ssgan_run, tmp_path, capsys):
    test = _digits_split(config_from_dict({**RAW, "data": {**RAW["data"], "split": "test"}}).data)
    folder = tmp_path / "images"
    for i in range(6):
        label = int(test.labels[i])
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.data[i, 0].numpy()).save(folder / str(label) / f"img{i}.png")
    out = tmp_path / "preds.csv"
    assert main(["classify", str(ssgan_run), "--data", str(folder), "--out", str(out)]) == 0
    assert "accuracy" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and all(Path(r["file"]).parent.name == r["label"] for r in rows)


def test_classify_on_a_generator_is_one_error_line(tmp_path, capsys):
    raw = {"data": {"name": DATASET, "image_size": [8, 8]}, "model": {"family": "dcgan", "g_channels": 8,
           "d_channels": 8, "latent_dim": 4}, "train": {"steps": 1, "progress": False}}
    run = train(config_from_dict(raw), tmp_path / "dcgan").run_dir
    capsys.readouterr()  # the training's health summary
    assert main(["classify", str(run), "--data", "digits"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a classifier" in err
    assert main(["evaluate", str(run), "--metrics", "accuracy", "--num", "10"]) == 2
    assert "use `ganforge classify" in capsys.readouterr().err


def test_supervised_logits_are_plain_cross_entropy():
    logits = torch.randn(4, 10)
    labels = torch.tensor([1, 2, 3, 4])
    assert torch.equal(supervised_loss(logits, labels), F.cross_entropy(logits, labels))


def test_data_dependent_init_standardises_each_layer():
    model = SSGANConfig(latent_dim=8, g_hidden=[16], d_hidden=[32, 24], d_input_noise=0.0, d_hidden_noise=0.0)
    D = SSGANDiscriminator(config=model, spec=DataSpec(shape=(1, 8, 8), num_classes=10))
    x = torch.rand(200, 1, 8, 8) * 2 - 1
    D.initialise_from_data(x)
    with torch.no_grad():
        first = D.linears[0](x.flatten(1))  # (200, 32) pre-activations
        second = D.linears[1](F.relu(first))
        logits = D(x)
    for t in (first, second, logits):
        torch.testing.assert_close(t.mean(0), torch.zeros(t.shape[1]), atol=1e-4, rtol=0)
        torch.testing.assert_close(t.std(0), torch.ones(t.shape[1]), atol=1e-3, rtol=0)
