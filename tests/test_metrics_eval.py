"""The evaluation API on real MNIST, with a briefly trained domain classifier (CI starts with no cache)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA
from ganforge.errors import DataError, GanforgeError
from ganforge.metrics import evaluate, resolve_fake, resolve_real
from ganforge.metrics import reference as reference_module
from ganforge.metrics.domain import (
    DomainClassifier,
    classifier_accuracy,
    classifier_path,
    load_classifier,
    save_classifier,
    set_feature_scale,
    train_classifier,
)

needs_mnist = pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="no MNIST files")


@pytest.fixture(scope="module")
def mnist():
    return {
        "train": resolve_real("mnist:train", data_root=SHARED_DATA, download=False, limit=4000),
        "test": resolve_real("mnist:test", data_root=SHARED_DATA, download=False, limit=1000),
    }


@pytest.fixture(scope="module")
def small_classifier(mnist):
    """A classifier trained briefly on 4,000 train images (the full recipe is in the benchmark)."""
    model = train_classifier(mnist["train"].data, mnist["train"].labels, epochs=1.0, seed=0)
    set_feature_scale(model, mnist["train"].data)
    return model


@pytest.fixture
def cached_mnist_classifier(small_classifier):
    """Install the small classifier as the cached MNIST classifier, so evaluate() does not train one."""
    path = classifier_path("mnist")
    save_classifier(small_classifier, path, {"dataset": "mnist", "note": "test"})
    yield small_classifier
    path.unlink(missing_ok=True)


@needs_mnist
def test_briefly_trained_classifier_is_sensible(mnist, small_classifier):
    acc = classifier_accuracy(small_classifier, mnist["test"].data, mnist["test"].labels)
    assert acc >= 0.88, acc  # 4,000 images, 1 epoch; the full recipe reaches >= 99% (benchmarks/RESULTS.md)


@needs_mnist
def test_classifier_safetensors_round_trip(tmp_path, small_classifier, mnist):
    path = tmp_path / "c.safetensors"
    save_classifier(small_classifier, path, {"test_accuracy": "0.9"})
    loaded, meta = load_classifier(path)
    assert meta["test_accuracy"] == "0.9"
    assert small_classifier.feature_scale != 1 and loaded.feature_scale == small_classifier.feature_scale
    x = mnist["test"].data[:16]
    with torch.inference_mode():
        from ganforge.metrics.domain import to_domain_input

        torch.testing.assert_close(loaded(to_domain_input(x)), small_classifier(to_domain_input(x)))
    path.write_bytes(b"truncated")
    with pytest.raises(GanforgeError, match="cannot load the domain classifier"):
        load_classifier(path)


@needs_mnist
def test_domain_metrics_real_vs_real_noise_and_collapse(mnist, cached_mnist_classifier):
    real, train = mnist["test"], mnist["train"]
    good_fake = train.data[:250]
    gen = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (250, 1, 28, 28), dtype=torch.uint8, generator=gen)
    ones = train.data[train.labels == 1][:50].repeat(5, 1, 1, 1)  # mode collapse onto one digit
    names = ["fid", "kid", "precision", "recall", "density", "coverage", "is"]
    good = evaluate(good_fake, real, names, progress=False)  # the domain comes from the real set's name
    bad = evaluate(noise, real, ["fid", "kid", "coverage"], progress=False)
    collapsed = evaluate(ones, real, ["recall", "coverage", "is"], progress=False)
    keys = {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "is", "is_std"}
    assert set(good) == keys
    assert good["fid"] < bad["fid"] / 10 and good["kid"] < bad["kid"] / 10
    assert good["precision"] > 0.6 and good["recall"] > 0.6 and good["coverage"] > 0.6
    assert bad["coverage"] < 0.2
    assert collapsed["recall"] < 0.3 and collapsed["coverage"] < 0.3
    assert good["is"] > 5 and collapsed["is"] < 2  # one confident class scores ~1


@needs_mnist
def test_reference_statistics_are_cached_under_a_key(mnist, cached_mnist_classifier, monkeypatch):
    fake = mnist["train"].data[:200]
    first = evaluate(fake, "mnist:test", ["fid"], data_root=SHARED_DATA, num_real=300, progress=False)
    files = list((reference_module.cache_dir() / "refstats").glob("mnist_300_0_-test-*.npz"))
    assert len(files) == 1
    with np.load(files[0]) as npz:
        key = str(npz["key"])
    assert '"dataset": "mnist[300@0]"' in key and '"num": 300' in key and '"split": "test"' in key
    assert '"extractor": "domain-mnist@' in key and '"resize": "none"' in key

    def no_extraction(*args, **kwargs):
        raise AssertionError("the reference features should come from the cache")

    monkeypatch.setattr(reference_module, "extract", no_extraction)
    again = evaluate(fake, "mnist:test", ["fid"], data_root=SHARED_DATA, num_real=300, progress=False)
    assert again == first
    files[0].unlink()


@needs_mnist
def test_class_metrics_under_inference_mode(mnist, cached_mnist_classifier):
    train, test = mnist["train"], mnist["test"]
    with torch.inference_mode():  # a trainer may sample and evaluate like this; CAS must still train
        fake = train.data[:1500].clone()  # an inference tensor, as a generator's output would be here
        out = evaluate(
            fake, test, ["gan_test", "cas"], fake_labels=train.labels[:1500], domain="mnist", cas_epochs=2.0,
            progress=False,
        )  # fmt: skip
    assert out["gan_test_acc"] > 0.85
    assert out["cas"] > 0.6  # a classifier trained briefly on 1,500 "generated" (real) digits
    wrong = evaluate(train.data[:300], None, ["gan_test"], fake_labels=(train.labels[:300] + 1) % 10,
                     domain="mnist", progress=False)  # fmt: skip
    assert wrong["gan_test_acc"] < 0.2


@needs_mnist
def test_stacked_mnist_modes(mnist, cached_mnist_classifier):
    data, labels = mnist["test"].data, mnist["test"].labels
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, len(data), (300, 3), generator=g)
    stacked = data[idx].squeeze(2)  # (300, 3, 28, 28): one digit per channel
    out = evaluate(stacked, None, ["stacked_mnist"], progress=False)
    true_modes = len(torch.unique(labels[idx] @ torch.tensor([100, 10, 1])))
    assert abs(out["stacked_modes"] - true_modes) <= 0.15 * true_modes
    collapsed = evaluate(stacked[:1].repeat(100, 1, 1, 1), None, ["stacked_mnist"], progress=False)
    assert collapsed["stacked_modes"] == 1 and collapsed["stacked_kl"] == pytest.approx(np.log(1000))


def test_points_modes_and_feature_metrics():
    from ganforge.data.toy2d import RING_STD, gaussian_mixture, ring_centers

    points, _ = gaussian_mixture(ring_centers(), RING_STD, 2000, torch.Generator().manual_seed(1))
    out = evaluate(points, "ring", ["modes", "fid", "precision", "recall"], progress=False)
    assert out["modes"] == 8 and out["high_quality"] > 0.98 and out["reverse_kl"] < 0.01
    assert out["fid"] < 1e-3 and out["precision"] > 0.9 and out["recall"] > 0.9
    one_mode = points[:500] * 0 + ring_centers()[3]
    out = evaluate(one_mode, None, ["modes"], centers=ring_centers(), std=RING_STD, progress=False)
    assert out["modes"] == 1 and out["reverse_kl"] == pytest.approx(np.log(8))


def test_errors_are_one_line_and_helpful():
    points = torch.zeros(20, 2)
    with pytest.raises(GanforgeError, match="unknown metric 'fidd'; valid: .*fid"):
        evaluate(points, None, ["fidd"])
    with pytest.raises(GanforgeError, match="pass the real set"):
        evaluate(points, None, ["fid"], progress=False)
    with pytest.raises(GanforgeError, match="centres"):
        evaluate(points, None, ["modes"], progress=False)
    with pytest.raises(GanforgeError, match="needs images"):
        evaluate(points, None, ["is"], progress=False)
    images = torch.zeros(20, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(GanforgeError, match="domain classifier"):
        evaluate(images, images, ["fid"], progress=False)  # unnamed real data: which classifier?
    with pytest.raises(GanforgeError, match="requested class"):
        evaluate(images, None, ["gan_test"], domain="mnist", progress=False)
    with pytest.raises(GanforgeError, match="no domain classifier for 'cifar10'"):
        evaluate(images, None, ["is"], domain="cifar10", progress=False)


def test_resolve_fake_npz_and_folder(tmp_path):
    from PIL import Image

    images = np.random.default_rng(0).integers(0, 256, (6, 1, 12, 12), dtype=np.uint8)
    np.savez(tmp_path / "imgs.npz", images=images, labels=np.arange(6))
    fake = resolve_fake(tmp_path / "imgs.npz")
    assert fake.data.dtype == torch.uint8 and fake.data.shape == (6, 1, 12, 12) and fake.name is None
    assert fake.labels.tolist() == list(range(6))
    np.savez(tmp_path / "pts.npz", points=np.zeros((5, 2), np.float64))
    assert resolve_fake(tmp_path / "pts.npz").data.dtype == torch.float32
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img[0]).save(folder / f"{i}.png")
    from_folder = resolve_fake(folder)
    assert torch.equal(from_folder.data, torch.from_numpy(images))
    np.savez(tmp_path / "bad.npz", pictures=images)
    with pytest.raises(DataError, match="neither 'images' nor 'points'"):
        resolve_fake(tmp_path / "bad.npz")
    np.savez(tmp_path / "badlabels.npz", images=images, labels=np.arange(5))
    with pytest.raises(DataError, match="'labels'"):
        resolve_fake(tmp_path / "badlabels.npz")
    with pytest.raises(DataError, match=".npz file or a folder"):
        resolve_fake(tmp_path / "nothing.png")
    real = resolve_real(str(folder))
    assert real.name.startswith("folder-") and len(real) == 6
    with pytest.raises(DataError, match="neither a dataset"):
        resolve_real("no-such-dataset")


def test_domain_classifier_shapes():
    model = DomainClassifier()
    x = torch.zeros(2, 1, 28, 28)
    assert model.features(x).shape == (2, 128) and model(x).shape == (2, 10)
