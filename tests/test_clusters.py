"""Cluster labels (`data.labels: clusters`, ganforge.data.clusters): a conditional GAN trained on k-means clusters
of the images instead of the dataset's labels (a self-conditioned GAN)."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from ganforge.config import DataConfig, config_from_dict
from ganforge.data import load_dataset
from ganforge.data.clusters import cluster_labels
from ganforge.errors import ConfigError, DataError, GanforgeError
from ganforge.models import DataSpec
from ganforge.sampling import default_classes
from ganforge.saved import evaluate_checkpoint, load_sampler
from tiny_runs import tiny_run


def blobs(sizes: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 1, 6, 6) images of len(sizes) well-separated kinds (a bright square in a different place each),
    with pixel noise, shuffled; and each image's kind."""
    g = torch.Generator().manual_seed(seed)
    kind = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    kind = kind[torch.randperm(len(kind), generator=g)]
    images = torch.randint(0, 40, (len(kind), 1, 6, 6), generator=g)
    for k in range(len(sizes)):
        row, col = divmod(2 * k, 6)
        images[kind == k, :, row : row + 2, col : col + 2] += 200
    return images.to(torch.uint8), kind


def test_recovers_separate_kinds_numbered_by_size():
    images, kind = blobs([30, 80, 50])
    labels = cluster_labels(images, 3, seed=0)
    assert labels.dtype == torch.int64 and labels.shape == kind.shape
    # each kind is one cluster, and the largest kind (1: 80 images) is cluster 0, then kind 2 (50), then kind 0
    assert torch.equal(labels, torch.tensor([2, 0, 1])[kind])
    assert torch.equal(cluster_labels(images, 3, seed=0), labels)  # deterministic


def test_points_and_bad_counts():
    points = torch.cat([torch.randn(40, 2) * 0.1 + 5, torch.randn(60, 2) * 0.1 - 5])
    labels = cluster_labels(points, 2)
    assert torch.equal(labels, torch.cat([torch.ones(40), torch.zeros(60)]).long())
    with pytest.raises(DataError, match="cannot make 200 clusters of 100 examples"):
        cluster_labels(points, 200)
    with pytest.raises(ConfigError, match="data.clusters must be an integer >= 2"):
        cluster_labels(points, 1)


def test_load_dataset_replaces_the_labels_after_the_limit():
    cfg = DataConfig(name="digits", limit=300, labels="clusters", clusters=12)
    data = load_dataset(cfg)
    assert len(data) == 300 and data.num_classes == 12 and data.labels.shape == (300,)
    assert set(data.labels.tolist()) == set(range(12))
    assert torch.equal(data.labels, cluster_labels(load_dataset(DataConfig(name="digits", limit=300)).data, 12))


@pytest.mark.parametrize("data, message", [
    ({"labels": "kmeans"}, "data.labels must be 'dataset' or 'clusters'"),
    ({"labels": "clusters", "clusters": 1}, "data.clusters must be >= 2"),
])
def test_config_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {"name": "digits", **data}})


def test_metrics_of_the_datasets_classes_are_refused():
    raw = tiny_config(data={"name": "digits", "labels": "clusters", "clusters": 5},
                      model={"family": "cgan", "latent_dim": 4, "g_channels": 4, "d_channels": 4},
                      eval={"every": 10, "metrics": ["fid", "gan_test"]})
    with pytest.raises(ConfigError, match="gan_test compare samples with the dataset's classes"):
        config_from_dict(raw)


def test_a_run_on_clusters_samples_them_and_refuses_class_metrics(tmp_path):
    run = tiny_run(tmp_path / "run", data={"labels": "clusters", "clusters": 6}, model={"conditional": True})
    sampler = load_sampler(run)
    assert sampler.num_classes == 6  # the clusters, not the 10 digits
    counts = load_dataset(DataConfig(name="digits", image_size=[8], limit=256, labels="clusters", clusters=6)
                          ).labels.bincount().tolist()
    assert list(sampler.spec.class_counts) == counts and sum(counts) == 256
    assert sampler.generate(4, labels=torch.tensor([0, 1, 5, 5]), seed=0).shape == (4, 1, 8, 8)
    # no classes asked for: clusters drawn in proportion, the same as default_classes says
    drawn = default_classes(sampler, 12, seed=3)
    assert torch.equal(sampler.generate(12, seed=3), sampler.generate(12, seed=3, labels=drawn))
    again = load_sampler(sampler.save_pretrained(tmp_path / "pretrained"))
    assert again.spec.class_counts == sampler.spec.class_counts  # what a user runs keeps the proportions
    with pytest.raises(GanforgeError, match="gan_test compare samples .* k-means clusters"):
        evaluate_checkpoint(run, ["fid", "gan_test"], num=16, real="digits")


def test_default_classes_cycle_dataset_classes_and_draw_clusters_in_proportion():
    class Sampler:  # what default_classes reads of a sampler
        def __init__(self, spec):
            self.spec, self.num_classes = spec, spec.num_classes

    digits = Sampler(DataSpec(shape=(1, 8, 8), num_classes=3))
    assert default_classes(digits, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert default_classes(Sampler(DataSpec(shape=(2,))), 5) is None
    clusters = Sampler(DataSpec(shape=(1, 8, 8), num_classes=3, class_counts=(700, 300, 0)))
    drawn = default_classes(clusters, 4000, seed=1)
    share = drawn.bincount(minlength=3).double() / 4000
    assert abs(share[0] - 0.7) < 0.03 and abs(share[1] - 0.3) < 0.03 and share[2] == 0
    assert torch.equal(default_classes(clusters, 4000, seed=1), drawn)
    assert not torch.equal(default_classes(clusters, 4000, seed=2), drawn)


def test_specs_saved_before_clusters_still_load():
    old = {"shape": [1, 8, 8], "num_classes": 10, "extra_shapes": {}}  # a checkpoint's spec before class_counts
    assert DataSpec.from_dict(old) == DataSpec(shape=(1, 8, 8), num_classes=10)
    spec = DataSpec(shape=(1, 8, 8), num_classes=2, class_counts=(5, 7))
    assert DataSpec.from_dict(spec.to_dict()) == spec


def test_large_sets_fit_the_projection_on_a_subset(monkeypatch):
    import ganforge.data.clusters as clusters

    images, kind = blobs([120, 200, 80], seed=1)
    monkeypatch.setattr(clusters, "PCA_DIMS", 4)  # fewer components than pixels, so the PCA path runs
    whole = cluster_labels(images, 3, seed=0)
    monkeypatch.setattr(clusters, "PCA_FIT_VALUES", 100 * 36)  # 100 of the 400 images fit the projection
    subset = cluster_labels(images, 3, seed=0)
    assert torch.equal(whole, torch.tensor([1, 0, 2])[kind]) and torch.equal(subset, whole)


@pytest.mark.parametrize("fake_classes", ["uniform", "data"])
def test_fakes_classes_follow_the_training_proportions_when_asked(tmp_path, fake_classes):
    from ganforge.train.trainer import Trainer

    raw = tiny_config(data={"name": "digits", "image_size": [8], "limit": 256, "labels": "clusters", "clusters": 6},
                      model={"family": "cgan", "latent_dim": 4, "g_channels": 4, "d_channels": 4},
                      train={"fake_classes": fake_classes})
    trainer = Trainer(config_from_dict(raw), tmp_path / "run")
    counts = trainer.data.labels.bincount(minlength=6).double()
    torch.manual_seed(0)
    _, labels = trainer.ctx.sample_inputs(6000)
    share = labels.bincount(minlength=6).double() / 6000
    expected = counts / counts.sum() if fake_classes == "data" else torch.full((6,), 1 / 6, dtype=torch.float64)
    assert counts.max() > 1.5 * counts.min()  # the clusters are imbalanced, so the two ways differ
    assert (share - expected).abs().max() < 0.025


def test_fake_classes_must_be_named():
    with pytest.raises(ConfigError, match="train.fake_classes must be uniform or data"):
        config_from_dict(tiny_config(train={"fake_classes": "balanced"}))
