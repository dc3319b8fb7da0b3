"""Shared fixtures: the real data beside the repo (../shared), tiny configs, a clean cache per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANFORGE_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
INCEPTION = SHARED / "models" / "inception-2015-12-05.pt"

# Tiny test models gain nothing from a second thread, and OpenMP spin-waits make them crawl on a busy machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache: each session gets its own cache directory."""
    if "GANFORGE_CACHE" not in os.environ:
        monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def tiny_config(**sections):
    """A config dict for a fast run: small MLP on the ring, or whatever the sections override."""
    from ganforge.config import merge

    base = {
        "data": {"name": "ring", "num_points": 2048},
        "model": {"family": "mlp", "latent_dim": 4, "g_hidden": 32, "g_layers": 2, "d_hidden": 32, "d_layers": 2},
        "loss": {"name": "nonsaturating"},
        "train": {"batch_size": 64, "steps": 40, "log_every": 10, "sample_every": 20, "checkpoint_every": 20,
                  "progress": False, "lr_g": 1e-3, "lr_d": 1e-3},
    }
    if "model" in sections:  # another family: its keys replace the MLP's instead of merging with them
        base["model"] = {}
    return merge(base, sections)


def assert_checkpoints_equal(a: dict, b: dict, *, sections=("networks", "ema", "optimizers"), atol: float | None = None,
                             rtol: float = 1e-4) -> None:
    """Every tensor of the named checkpoint sections (by network / optimizer name) equal; close with `atol`."""
    for section in sections:
        assert a[section].keys() == b[section].keys(), section
        for name in a[section]:
            flat_a, flat_b = _flat(a[section][name]), _flat(b[section][name])
            assert flat_a.keys() == flat_b.keys(), f"{section}.{name}"
            for key, value in flat_a.items():
                other = flat_b[key]
                where = f"{section}.{name}.{key} differs"
                if not isinstance(value, torch.Tensor):
                    assert value == other, where
                elif atol is not None and value.is_floating_point():
                    torch.testing.assert_close(other, value, atol=atol, rtol=rtol, msg=where)
                else:
                    assert torch.equal(value, other), where


def _flat(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    if isinstance(tree, list | tuple) and tree and isinstance(tree[0], dict):
        out = {}
        for i, v in enumerate(tree):
            out.update(_flat(v, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): tree}


@pytest.fixture
def small_mnist_classifier():
    """A briefly trained MNIST classifier installed as the cached one, so a class metric does not train the full one."""
    from ganforge.metrics.domain import classifier_path, save_classifier, set_feature_scale, train_classifier
    from ganforge.metrics.sources import resolve_real

    train_set = resolve_real("mnist:train", data_root=SHARED_DATA, download=False, limit=3000)
    model = train_classifier(train_set.data, train_set.labels, epochs=1.0, seed=0)
    set_feature_scale(model, train_set.data)
    path = classifier_path("mnist")
    save_classifier(model, path, {"dataset": "mnist", "note": "test"})
    yield model
    path.unlink(missing_ok=True)
