"""Reference features and statistics of real data, cached as .npz under a key that names what they depend on.

The key hashes the dataset identity, split, number of samples, extractor (network + weights digest) and resize
mode, so changing any of them computes new statistics instead of silently reusing stale ones (StyleGAN3's
approach). Files: CACHE/refstats/<dataset>-<split>-<key>.npz with `features` (N, D) float32, `mu`, `sigma`
(float64) and `key` (the JSON that was hashed, for people reading the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganforge.metrics.base import cache_dir
from ganforge.metrics.features import extract
from ganforge.metrics.fid import feature_statistics
from ganforge.metrics.sources import Samples

REFERENCE_VERSION = 1  # bump when the stored format or its computation changes


@dataclass
class Reference:
    features: np.ndarray  # (N, D) float32
    mu: np.ndarray  # (D,) float64
    sigma: np.ndarray  # (D, D) float64


def reference_key(*, dataset: str, split: str, extractor: str, resize: str, num: int) -> dict:
    return {
        "dataset": dataset,
        "split": split,
        "extractor": extractor,
        "resize": resize,
        "num": num,
        "version": REFERENCE_VERSION,
    }


def reference_path(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{key['dataset']}-{key['split'] or 'all'}")[:80]
    return cache_dir() / "refstats" / f"{stem}-{digest}.npz"


def reference_for(
    real: Samples,
    extractor: nn.Module,
    *,
    resize: str,
    batch_size: int,
    device: str | torch.device = "cpu",
    progress: bool = True,
    cache: bool = True,
) -> Reference:
    """Features and statistics of the real set: from the cache when present, else computed (and cached).

    Sets without a name (raw tensors) are never cached.
    """
    path = key = None
    if cache and real.name is not None:
        key = reference_key(
            dataset=real.name, split=real.split, extractor=extractor.name, resize=resize, num=len(real)
        )
        path = reference_path(key)
        loaded = _load(path, key, ("features", "mu", "sigma"))
        if loaded is not None:
            return Reference(**loaded)
    features = extract(
        extractor, real.data, batch_size=batch_size, device=device, progress=progress, desc="real features"
    )["features"].numpy()
    mu, sigma = feature_statistics(features)
    ref = Reference(features, mu, sigma)
    if path is not None:
        _save(path, key, features=ref.features.astype(np.float32), mu=ref.mu, sigma=ref.sigma)
    return ref


def class_shares_for(real: Samples, extractor: nn.Module, *, cache: bool = True) -> np.ndarray:
    """(K,) share of each class of the domain classifier (`extractor`, a DomainExtractor) among the real images:
    cached as the statistics are (a named set), since classifying 60,000 digits takes ~10 CPU-s per call."""
    from ganforge.metrics.class_balance import class_shares
    from ganforge.metrics.domain import predict

    path = key = None
    if cache and real.name is not None:
        key = reference_key(dataset=real.name, split=real.split, extractor=extractor.name, resize="none",
                            num=len(real)) | {"what": "class_shares"}
        path = reference_path(key)
        loaded = _load(path, key, ("shares",))
        if loaded is not None:
            return loaded["shares"]
    classifier = extractor.classifier
    shares = class_shares(predict(classifier, real.data), classifier.head.out_features)
    if path is not None:
        _save(path, key, shares=shares)
    return shares


def _load(path: Path, key: dict, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays `names` of a cache file written under `key`; None when missing, foreign or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if json.loads(str(npz["key"])) != key:  # a digest collision or a hand-edited file
                return None
            return {name: npz[name] for name in names}
    except (OSError, ValueError, KeyError):  # truncated or foreign: recompute and overwrite
        return None


def _save(path: Path, key: dict, **arrays: np.ndarray) -> None:
    """Write the arrays and their key atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, key=np.array(json.dumps(key, sort_keys=True)))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
