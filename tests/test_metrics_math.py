"""Metric math in closed form, and parity with the reference implementations (pytorch-fid, torch-fidelity)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from ganforge.metrics import (
    METRICS,
    density_coverage,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_distance,
    mode_metrics,
    precision_recall,
    stacked_modes,
)
from ganforge.metrics.gan_test import label_accuracy
from ganforge.metrics.kid import polynomial_mmd2


def _gaussian(n: int, d: int, *, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / math.sqrt(d)  # correlated features, like a real network's
    return shift + scale * rng.normal(size=(n, d)) @ (np.eye(d) + 0.5 * mix)


# ------------------------------------------------------------------------------------------------- FID


def test_fid_of_identical_statistics_is_zero():
    mu, sigma = feature_statistics(_gaussian(300, 12, seed=0))
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_fid_with_equal_covariances_is_squared_mean_distance():
    _, sigma = feature_statistics(_gaussian(300, 12, seed=1))
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(
        float(((mu1 - mu2) ** 2).sum()), rel=1e-9
    )


def test_fid_of_scalar_gaussians():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations.
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


@pytest.mark.parametrize("n", [400, 8])  # 8 < 16 features: singular covariances, the eps retry path
def test_fid_matches_pytorch_fid(n):
    from pytorch_fid.fid_score import calculate_frechet_distance

    mu1, s1 = feature_statistics(_gaussian(n, 16, seed=3))
    mu2, s2 = feature_statistics(_gaussian(n, 16, seed=4, shift=0.3, scale=1.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy deprecations inside pytorch-fid
        expected = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-4)


def test_fid_rejects_mismatched_statistics():
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ------------------------------------------------------------------------------------------------- KID


def test_kid_of_identical_sets_is_about_zero():
    # With subsets as large as the set, every subset is the whole set and the estimator has a closed form:
    # 2 (S_off / (n (n - 1)) - S_all / n^2), S summing the kernel matrix: O(1/n), not exactly 0, because
    # the cross term keeps the diagonal k(x, x) (as torch-fidelity and the KID paper's code do).
    x = _gaussian(100, 8, seed=5)
    k = (x @ x.T / 8 + 1) ** 3
    n = len(x)
    closed = 2 * ((k.sum() - np.trace(k)) / (n * (n - 1)) - k.sum() / n**2)
    mean, std = kernel_distance(x, x, num_subsets=3, subset_size=n)
    assert mean == pytest.approx(closed, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    # Two independent draws of one distribution: ~0 next to a shifted one.
    a, b = np.split(_gaussian(1200, 8, seed=6), 2)
    same, _ = kernel_distance(a, b, num_subsets=10, subset_size=300)
    different, _ = kernel_distance(a, b + 0.5, num_subsets=10, subset_size=300)
    assert different > 0.1 and abs(same) < 0.05 * different


def test_kid_matches_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    x, y = _gaussian(300, 16, seed=7), _gaussian(250, 16, seed=8, shift=0.2, scale=1.2)
    mean, std = kernel_distance(x, y, num_subsets=10, subset_size=200, seed=11)
    ref = kid_features_to_metric(
        torch.from_numpy(x),
        torch.from_numpy(y),
        kid_subsets=10,
        kid_subset_size=200,
        rng_seed=11,
        verbose=False,
    )
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-4)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-4)


def test_polynomial_mmd_by_hand():
    # d = 1, x = {0, 1}, y = {2, 3}: k(a, b) = (ab + 1)^3.
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])
    xx = 2 * 1**3 / 2  # off-diagonal k(0, 1) twice, over m(m-1) = 2
    yy = 2 * 7**3 / 2  # k(2, 3) = 7^3
    xy = (1 + 1 + 27 + 64) / 4  # k(0,2), k(0,3), k(1,2), k(1,3)
    assert polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy)


def test_kid_clips_subset_size_to_the_smaller_set():
    mean, std = kernel_distance(_gaussian(30, 4, seed=9), _gaussian(20, 4, seed=10), num_subsets=3)
    assert math.isfinite(mean) and std >= 0


# -------------------------------------------------------------------------------------------------- IS


def test_is_of_uniform_predictions_is_one():
    mean, std = inception_score(np.full((100, 10), 0.1))
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)


def test_is_of_confident_evenly_spread_predictions_is_the_number_of_classes():
    probs = np.eye(10)[np.arange(200) % 10]  # each split of 20 holds every class twice
    mean, std = inception_score(probs)
    assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-9)


def test_is_matches_torch_fidelity():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.from_numpy(np.random.default_rng(12).normal(scale=3.0, size=(200, 10)))
    ref = isc_features_to_metric(logits, splits=10, shuffle=False)
    mean, std = inception_score(torch.softmax(logits, 1).numpy())
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-6)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-4)


# ----------------------------------------------------------------------------- precision / recall / D&C


def test_precision_recall_of_identical_sets_is_one():
    x = _gaussian(200, 8, seed=13)
    assert precision_recall(x, x) == (1.0, 1.0)


def test_precision_recall_constructed():
    real = _gaussian(100, 2, seed=14)
    far = real[:50] + 1000.0  # half the fakes copy real samples, half are nowhere near the real manifold
    fake = np.concatenate([real[:50], far])
    precision, recall = precision_recall(real, fake)
    assert precision == 0.5
    # Real samples inside the fake manifold: at least the 50 copied ones; the fake balls around the far half
    # are small (their neighbours are each other), so they cover none of the others.
    assert 0.5 <= recall < 1.0


def test_density_coverage_constructed():
    real = np.stack([np.arange(10.0), np.zeros(10)], 1)  # points 0..9 on a line: every 1-NN radius is 1
    fake = np.array([[0.5, 0.0]])  # inside the balls of 0 and 1 only
    density, coverage = density_coverage(real, fake, k=1)
    assert density == pytest.approx(2.0)  # two balls / (k * 1 fake)
    assert coverage == pytest.approx(0.2)  # real 0 and 1 have the fake inside their balls
    # 2-NN radii: 2 for the end points 0 and 9, 1 for the others. The fake at 0.5 is in the balls of 0 (r 2)
    # and 1 (r 1), not of 2 (r 1 < 1.5).
    density, coverage = density_coverage(real, fake, k=2)
    assert density == pytest.approx(2 / 2)
    assert coverage == pytest.approx(0.2)


def test_density_coverage_extremes():
    real = _gaussian(200, 4, seed=15)
    assert density_coverage(real, real + 1e6) == (0.0, 0.0)
    density, coverage = density_coverage(real, real)
    assert coverage == 1.0 and density >= 1.0  # every fake sits on its own ball's centre


# ------------------------------------------------------------------------------------------ mode metrics


def test_mode_metrics_exact_counts():
    from ganforge.data.toy2d import RING_STD, ring_centers

    c = ring_centers()  # 8 modes on the unit circle, std 0.01
    points = torch.stack(
        [
            c[0], c[0] + torch.tensor([0.02, 0.0]), c[0] + torch.tensor([0.0, -0.029]),  # mode 0: 3 good
            c[1] + torch.tensor([0.05, 0.0]),  # mode 1: 5 std away, low quality
            c[2], c[2],  # mode 2: 2 good
        ]
    )  # fmt: skip
    out = mode_metrics(points, c, RING_STD)
    assert out["modes"] == 2
    assert out["high_quality"] == pytest.approx(5 / 6)
    hist = np.array([3, 1, 2]) / 6
    assert out["reverse_kl"] == pytest.approx(float((hist * np.log(hist * 8)).sum()))


def test_mode_metrics_collapse_and_perfect_spread():
    from ganforge.data.toy2d import GRID_STD, grid_centers

    c = grid_centers()
    collapsed = mode_metrics(c[:1].repeat(100, 1), c, GRID_STD)
    assert collapsed == {"modes": 1.0, "high_quality": 1.0, "reverse_kl": pytest.approx(math.log(25)),
                         "mode_spread": 0.0}
    spread = mode_metrics(c.repeat(4, 1), c, GRID_STD)
    assert spread == {"modes": 25.0, "high_quality": 1.0, "reverse_kl": pytest.approx(0.0, abs=1e-12),
                      "mode_spread": 0.0}


def test_mode_spread_is_the_rms_offset_over_the_modes_own_and_the_data_score_097():
    from ganforge.data.toy2d import GRID_STD, grid_centers

    c = grid_centers()
    # offsets of 1 and 2 std along x, and one sample 4 std away (low quality, left out of the spread)
    points = torch.stack([c[0] + torch.tensor([GRID_STD, 0.0]), c[3] + torch.tensor([0.0, 2 * GRID_STD]),
                          c[5] + torch.tensor([4 * GRID_STD, 0.0])])
    out = mode_metrics(points, c, GRID_STD)
    assert out["high_quality"] == pytest.approx(2 / 3)
    assert out["mode_spread"] == pytest.approx(math.sqrt((1 + 4) / 2) / math.sqrt(2))
    gen = torch.Generator().manual_seed(0)
    data = c[torch.randint(25, (200_000,), generator=gen)] + GRID_STD * torch.randn(200_000, 2, generator=gen)
    # E[r^2 | r < 3 std] of a 2-D Gaussian: 2 std^2 (1 - 4.5 e^-4.5 / (1 - e^-4.5))
    cut = 1 - 4.5 * math.exp(-4.5) / (1 - math.exp(-4.5))
    assert mode_metrics(data, c, GRID_STD)["mode_spread"] == pytest.approx(math.sqrt(cut), abs=0.005)
    assert mode_metrics(c[5:6] + 10.0, c, GRID_STD)["mode_spread"] == 0.0  # no high-quality sample at all


def test_stacked_modes():
    every = torch.stack(torch.meshgrid(*[torch.arange(10)] * 3, indexing="ij"), -1).reshape(-1, 3)
    modes, kl = stacked_modes(every)
    assert modes == 1000 and kl == pytest.approx(0.0, abs=1e-12)
    modes, kl = stacked_modes(torch.tensor([[1, 2, 3]] * 50))
    assert modes == 1 and kl == pytest.approx(math.log(1000))


def test_label_accuracy():
    assert label_accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])) == 0.75


def test_metrics_registry_lists_valid_names():
    assert {"fid", "kid", "is", "precision", "recall", "density", "coverage", "modes", "stacked_mnist",
            "gan_test", "cas"} <= set(METRICS.names())  # fmt: skip
    with pytest.raises(KeyError, match="valid: .*fid"):
        METRICS["fidd"]
