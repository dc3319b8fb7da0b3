"""Small per-dataset CNN classifiers for fast CPU evaluation ("domain" features).

ganforge trains one on the real train split the first time it is needed and caches it as safetensors under
CACHE/classifiers/. Its penultimate layer (128 ReLU units) gives "domain FID" and the other feature metrics;
its predictions give the class-based metrics (domain IS, stacked-MNIST modes, GAN-test, CAS). Values are
comparable only between runs scored with the same classifier: its digest is part of every cache key.

Recipe: two 5x5 conv blocks (16, 32 channels) with batch norm, a 128-unit layer, Adam with a one-cycle
schedule, batch 128. Measured on the 2-core dev CPU: see benchmarks/RESULTS.md (MNIST >= 99.0% test accuracy,
Fashion-MNIST >= 90%).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ganforge.errors import GanforgeError
from ganforge.metrics.base import cache_dir

INPUT_SIZE = (28, 28)
# Bump when the architecture or recipe changes: cached weights of other versions are then ignored.
CLASSIFIER_VERSION = 2


@dataclass(frozen=True)
class DomainSpec:
    epochs: float  # passes over the 60k train images
    min_accuracy: float  # test accuracy the recipe must reach (checked by tests/benchmarks, kept in metadata)


DOMAINS: dict[str, DomainSpec] = {
    "mnist": DomainSpec(epochs=2.0, min_accuracy=0.99),
    "fashion-mnist": DomainSpec(epochs=3.0, min_accuracy=0.90),
}


class DomainClassifier(nn.Module):
    def __init__(self, *, num_classes: int = 10, feature_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(  # (B, 1, 28, 28) in [-1, 1]
            nn.Conv2d(1, 16, 5, padding=2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 5, padding=2),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 7, 7)
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, feature_dim),
            nn.ReLU(),  # (B, feature_dim)
        )
        self.head = nn.Linear(feature_dim, num_classes)
        # Metric features are body(x) * feature_scale, set after training so that their mean square on the
        # train set is 1: KID's cubic kernel (x.y / d + 1)^3 depends on scale, and on raw ReLU features (mean
        # square ~12) its subset noise swamped the signal (std 20x the mean, MNIST test vs train).
        self.register_buffer("feature_scale", torch.ones(()))

    def features(self, x: Tensor) -> Tensor:
        """(B, feature_dim) scaled penultimate features: what FID, KID, precision, ... are computed on."""
        return self.body(x) * self.feature_scale

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def to_domain_input(images: Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> float (B, 1, 28, 28) in [-1, 1]: luma for colour, antialiased resize to 28."""
    from ganforge.data.base import resize_images, set_channels

    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3, 4):
        raise ValueError(
            f"domain classifiers take uint8 images (B, C, H, W) with 1, 3 or 4 channels, got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    x = resize_images(set_channels(images, 1), INPUT_SIZE)
    return x.float().div_(127.5).sub_(1.0)


class DomainExtractor(nn.Module):
    """uint8 images -> {"features": (B, 128), "logits": (B, 10)} from a domain classifier."""

    has_logits = True
    default_batch_size = 500

    def __init__(self, classifier: DomainClassifier, name: str) -> None:
        super().__init__()
        self.classifier = classifier
        self.name = name  # e.g. "domain-mnist@<weights digest>"

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        raw = self.classifier.body(to_domain_input(images))
        return {"features": raw * self.classifier.feature_scale, "logits": self.classifier.head(raw)}


def train_classifier(
    images: Tensor,  # uint8 (N, C, H, W), converted by to_domain_input
    labels: Tensor,  # int64 (N,)
    *,
    num_classes: int = 10,
    epochs: float = 2.0,  # passes over the data (fractions allowed)
    batch_size: int = 128,
    lr: float = 3e-3,  # peak of the one-cycle schedule
    seed: int = 0,  # weights and batch order
    progress: bool = False,
    desc: str = "classifier",
) -> DomainClassifier:
    """Train a DomainClassifier on the CPU; works inside torch.no_grad / inference_mode callers."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images, got {len(labels)} labels for {len(images)} images")
    with torch.inference_mode(False), torch.enable_grad():
        x_all = to_domain_input(images.clone())  # clone: inference tensors cannot be saved for backward
        y_all = labels.clone().long()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DomainClassifier(num_classes=num_classes)
        gen = torch.Generator().manual_seed(seed)
        steps = max(1, round(epochs * len(x_all) / batch_size))
        opt = torch.optim.Adam(model.parameters(), lr=lr / 10)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        order, pos = torch.randperm(len(x_all), generator=gen), 0
        model.train()
        for _ in tqdm(range(steps), desc=desc, unit="step", disable=not progress, leave=False):
            if pos + batch_size > len(order):
                order, pos = torch.randperm(len(x_all), generator=gen), 0
            idx = order[pos : pos + batch_size]
            pos += batch_size
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def predict(model: DomainClassifier, images: Tensor, *, batch_size: int = 1000) -> Tensor:
    """(N,) predicted classes of uint8 images."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(to_domain_input(b)).argmax(1) for b in images.split(batch_size)])


def classifier_accuracy(model: DomainClassifier, images: Tensor, labels: Tensor) -> float:
    return (predict(model, images) == labels.long()).double().mean().item()


def classifier_path(dataset: str) -> Path:
    return cache_dir() / "classifiers" / f"{dataset}-cnn-v{CLASSIFIER_VERSION}.safetensors"


def _check_dataset(dataset: str) -> DomainSpec:
    if dataset not in DOMAINS:
        raise GanforgeError(
            f"no domain classifier for {dataset!r}; available: {', '.join(sorted(DOMAINS))} "
            "(use features='inception' for other data)"
        )
    return DOMAINS[dataset]


def train_domain_classifier(
    dataset: str, *, data_root: str | Path | None = None, progress: bool = True, seed: int = 0
) -> tuple[DomainClassifier, dict[str, str]]:
    """Train the dataset's classifier on its real train split, score it on the test split, cache it.

    Returns the model and its metadata (test_accuracy, train_seconds, epochs, ...), also stored in the file.
    """
    from ganforge.metrics.sources import resolve_real

    spec = _check_dataset(dataset)
    train = resolve_real(f"{dataset}:train", data_root=data_root)
    test = resolve_real(f"{dataset}:test", data_root=data_root)
    start = time.perf_counter()
    model = train_classifier(
        train.data,
        train.labels,
        epochs=spec.epochs,
        seed=seed,
        progress=progress,
        desc=f"training the {dataset} classifier",
    )
    seconds = time.perf_counter() - start
    set_feature_scale(model, train.data)
    meta = {
        "dataset": dataset,
        "version": str(CLASSIFIER_VERSION),
        "epochs": str(spec.epochs),
        "seed": str(seed),
        "test_accuracy": f"{classifier_accuracy(model, test.data, test.labels):.4f}",
        "train_seconds": f"{seconds:.1f}",
        "torch": torch.__version__,
    }
    save_classifier(model, classifier_path(dataset), meta)
    return model, meta


def set_feature_scale(model: DomainClassifier, images: Tensor, *, num: int = 10_000) -> None:
    """Scale the metric features to mean square 1 on (a seeded subset of) the given images."""
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:num]
    model.eval()
    with torch.inference_mode():
        raw = torch.cat([model.body(to_domain_input(b)) for b in images[idx].split(1000)])
    model.feature_scale.fill_(raw.double().square().mean().rsqrt().item())


def save_classifier(model: DomainClassifier, path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(
            state, tmp, metadata={**metadata, "config": json.dumps({"num_classes": model.head.out_features})}
        )
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_classifier(path: Path) -> tuple[DomainClassifier, dict[str, str]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        state = load_file(str(path))
        model = DomainClassifier(num_classes=json.loads(meta.get("config", "{}")).get("num_classes", 10))
        model.load_state_dict(state)
    except Exception as err:  # a truncated or foreign file: say which, then retrain or fail cleanly
        raise GanforgeError(f"cannot load the domain classifier {path}: {err}") from None
    return model.eval(), meta


def load_domain_extractor(
    dataset: str, *, data_root: str | Path | None = None, train: bool = True, progress: bool = True
) -> DomainExtractor:
    """The dataset's cached classifier as a feature extractor, trained first (and cached) when missing."""
    _check_dataset(dataset)
    path = classifier_path(dataset)
    if not path.is_file():
        if not train:
            raise GanforgeError(f"no cached {dataset} classifier at {path}")
        train_domain_classifier(dataset, data_root=data_root, progress=progress)
    model, _ = load_classifier(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return DomainExtractor(model, f"domain-{dataset}@{digest}")
