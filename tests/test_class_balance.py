"""The `classes` metric: the generated class mix against the real data's, in closed form and through evaluate()."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA
from ganforge.errors import GanforgeError
from ganforge.metrics import class_divergence, evaluate
from ganforge.metrics.base import LOWER_IS_BETTER, RESULT_KEYS
from ganforge.metrics.class_balance import class_shares

needs_mnist = pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="no MNIST files")


def divergence(fake_classes, real_classes, num_classes: int) -> tuple[float, float]:
    return class_divergence(class_shares(fake_classes, num_classes), class_shares(real_classes, num_classes))


def test_the_same_mix_scores_zero_whatever_the_order_and_count():
    real = torch.arange(10).repeat(30)
    fake = torch.arange(10).flip(0).repeat(7)
    assert divergence(fake, real, 10) == pytest.approx((0.0, 0.0), abs=1e-12)


def test_one_class_for_every_sample_against_a_uniform_mix():
    kl, tv = divergence(torch.full((50,), 3), torch.arange(10).repeat(5), 10)
    assert kl == pytest.approx(math.log(10)) and tv == pytest.approx(0.9)


def test_a_known_two_class_mix():
    # fake 3:1 over classes 0, 1; real 1:1: KL = 0.75 ln 1.5 + 0.25 ln 0.5, TV = 0.25.
    kl, tv = divergence(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1]), 2)
    assert kl == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert tv == pytest.approx(0.25)


def test_classes_the_fakes_drop_count_but_a_class_the_real_set_lacks_is_an_error():
    kl, tv = divergence(torch.tensor([0, 0]), torch.tensor([0, 1, 2, 3]), 4)  # three of four classes dropped
    assert kl == pytest.approx(math.log(4)) and tv == pytest.approx(0.75)
    with pytest.raises(ValueError, match="missing from the real set"):
        divergence(torch.tensor([0, 2]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="two \\(K,\\) arrays"):
        class_divergence(np.ones(3) / 3, np.ones(4) / 4)
    with pytest.raises(ValueError, match="class indices in 0..9"):
        class_shares(torch.tensor([0, 10]), 10)
    with pytest.raises(ValueError, match="class indices"):
        class_shares(torch.tensor([], dtype=torch.long), 10)


def test_registered_with_its_keys_and_direction():
    assert RESULT_KEYS["classes"] == ("class_kl", "class_tv")
    assert {"class_kl", "class_tv"} <= LOWER_IS_BETTER


@needs_mnist
def test_evaluate_reads_the_class_mix_of_real_digits_and_of_a_lopsided_set(small_mnist_classifier):
    from ganforge.metrics.sources import resolve_real

    test = resolve_real("mnist:test", data_root=SHARED_DATA, download=False)
    balanced = test.data[:2000]
    # The classifier's own classes: 2,000 test digits against the other 8,000 have nearly the same mix.
    near = evaluate(balanced, test.data[2000:], ["classes"], data_root=SHARED_DATA, domain="mnist", progress=False)
    assert near["class_tv"] < 0.05 and near["class_kl"] < 0.01
    # Keep only the digits labelled 0 or 1: a G that dropped eight classes.
    lopsided = balanced[(test.labels[:2000] <= 1)]
    far = evaluate(lopsided, "mnist:test", "classes", data_root=SHARED_DATA, progress=False)
    assert far["class_tv"] > 0.6 and far["class_kl"] > 1.0
    # No real set: the domain's test split is the reference.
    alone = evaluate(lopsided, None, ["classes"], domain="mnist", data_root=SHARED_DATA, progress=False)
    assert alone["class_tv"] == pytest.approx(far["class_tv"], abs=0.02)


def test_points_are_refused():
    with pytest.raises(GanforgeError, match="needs images"):
        evaluate(torch.randn(20, 2), None, ["classes"], domain="mnist", progress=False)


@needs_mnist
def test_a_named_real_sets_class_shares_are_cached_and_read_back(small_mnist_classifier):
    from ganforge.metrics.domain import load_domain_extractor, predict
    from ganforge.metrics.reference import _save, reference_key, reference_path
    from ganforge.metrics.sources import resolve_real

    test = resolve_real("mnist:test", data_root=SHARED_DATA, download=False)
    extractor = load_domain_extractor("mnist", data_root=SHARED_DATA, progress=False)
    key = reference_key(dataset=test.name, split=test.split, extractor=extractor.name, resize="none",
                        num=len(test)) | {"what": "class_shares"}
    path = reference_path(key)
    path.unlink(missing_ok=True)
    fake = test.data[:300]
    first = evaluate(fake, "mnist:test", "classes", data_root=SHARED_DATA, progress=False)
    with np.load(path, allow_pickle=False) as npz:
        shares = npz["shares"]
    expected = class_shares(predict(small_mnist_classifier, test.data), 10)
    np.testing.assert_allclose(shares, expected)
    # The second call reads the file instead of classifying the real set again: a changed file changes the score.
    _save(path, key, shares=np.full(10, 0.1))
    second = evaluate(fake, "mnist:test", "classes", data_root=SHARED_DATA, progress=False)
    fake_shares = class_shares(predict(small_mnist_classifier, fake), 10)
    assert second["class_tv"] == pytest.approx(0.5 * np.abs(fake_shares - 0.1).sum())
    assert first["class_tv"] == pytest.approx(0.5 * np.abs(fake_shares - expected).sum())
    # cache=False classifies afresh.
    assert evaluate(fake, "mnist:test", "classes", data_root=SHARED_DATA, progress=False,
                    cache=False)["class_tv"] == pytest.approx(first["class_tv"])
