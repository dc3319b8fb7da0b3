"""Stacked MNIST (`data.name: stacked-mnist`): three digits as R, G, B, built deterministically from data.seed,
labelled by mode; and the stacked_mnist metric on a run trained on it."""

from __future__ import annotations

import pytest
import torch

from conftest import SHARED_DATA
from ganforge.config import DataConfig, config_from_dict
from ganforge.data import load_dataset
from ganforge.data.stacked_mnist import STACKED_SIZE, stack_digits
from ganforge.errors import ConfigError
from ganforge.metrics.evaluate import evaluate
from ganforge.saved import evaluate_checkpoint
from ganforge.train.trainer import train

needs_mnist = pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="no MNIST files")


def _data(**fields) -> DataConfig:
    cfg = DataConfig(**{"name": "stacked-mnist", "root": str(SHARED_DATA), "download": False, **fields})
    cfg.validate()
    return cfg


def test_stack_digits_puts_one_digit_per_channel_and_labels_the_mode():
    digits = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2) * 20  # image i is 20*i
    labels = torch.tensor([7, 3, 9, 0, 1, 2, 4, 5, 6, 8])
    triples = torch.tensor([[0, 1, 2], [3, 3, 9]])
    data = stack_digits(digits, labels, triples)
    assert data.data.shape == (2, 3, 2, 2) and data.num_classes == 1000
    assert data.data[0, :, 0, 0].tolist() == [0, 20, 40] and data.data[1, :, 1, 1].tolist() == [60, 60, 180]
    assert data.labels.tolist() == [7 * 100 + 3 * 10 + 9, 0 * 100 + 0 * 10 + 8]


@needs_mnist
def test_stacked_mnist_is_deterministic_from_its_seed():
    a = load_dataset(_data(limit=300))
    assert a.data.shape == (300, 3, 28, 28) and a.labels.max() < 1000 and a.name == "stacked-mnist"
    b = load_dataset(_data(limit=300))
    assert torch.equal(a.data, b.data) and torch.equal(a.labels, b.labels)
    c = load_dataset(_data(limit=300, seed=1))
    assert not torch.equal(a.data, c.data)
    # The first N images do not depend on how many are built (limit only truncates the seeded sequence).
    assert torch.equal(load_dataset(_data(limit=50)).data, a.data[:50])
    assert STACKED_SIZE == 128_000
    with pytest.raises(ConfigError, match="3 channels"):
        load_dataset(_data(limit=10, channels=1))


@needs_mnist
def test_metric_reads_the_modes_of_the_dataset_and_of_a_run_trained_on_it(tmp_path, small_mnist_classifier):
    real = load_dataset(_data(limit=400))
    # The classifier reads each channel's digit: the modes it finds are the dataset's labels (channel order R, G, B).
    from ganforge.metrics.domain import predict

    digits = predict(small_mnist_classifier, real.data.reshape(-1, 1, 28, 28)).reshape(-1, 3)
    predicted_modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    assert (predicted_modes == real.labels).double().mean() >= 0.6
    out = evaluate(real.data, None, ["stacked_mnist"], data_root=SHARED_DATA, progress=False)
    assert out["stacked_modes"] >= 0.7 * real.labels.unique().numel()

    raw = {"data": {"name": "stacked-mnist", "root": str(SHARED_DATA), "download": False, "limit": 256},
           "model": {"family": "dcgan", "latent_dim": 8, "g_channels": 8, "d_channels": 8},
           "train": {"batch_size": 32, "steps": 2, "progress": False}}
    run = train(config_from_dict(raw), tmp_path / "run").run_dir
    scores = evaluate_checkpoint(run, ["stacked_mnist"], num=200, progress=False)
    assert set(scores) == {"stacked_modes", "stacked_kl"}
    assert 1 <= scores["stacked_modes"] <= 200 and scores["stacked_kl"] > 0
