"""The evaluation API the CLI calls: `evaluate(fake, real, metrics, ...) -> {key: value}`.

Metric names (see METRICS) and the keys they return:
  fid -> fid            kid -> kid, kid_std          is -> is, is_std
  precision, recall     density, coverage            (k-NN manifolds, k = 3 and k = 5)
  modes -> modes, high_quality, reverse_kl, mode_spread  (2D toy data; centres from the ring/grid datasets)
  stacked_mnist -> stacked_modes, stacked_kl         (3-channel stacked MNIST, MNIST classifier per channel)
  gan_test -> gan_test_acc    cas -> cas             (conditional: needs the requested class of each sample)
  classes -> class_kl, class_tv                      (class mix of the samples vs the real data's; MNIST, Fashion)

Feature metrics use `features="domain"` (the dataset's small CNN: fast on a CPU, MNIST / Fashion-MNIST
only) or `features="inception"` (the TF FID network, comparable with published numbers, ~5-10 images/s on a
CPU; "inception-bf16" runs it in bfloat16, several times faster on CPUs with native bf16, for quick looks: its
features differ, see metrics/inception.py). 2D points use the points themselves as features. Each set's
features are extracted once per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.metrics.base import FEATURES, METRICS, expand_metric_names
from ganforge.metrics.density_coverage import density_coverage
from ganforge.metrics.features import PointsExtractor, extract
from ganforge.metrics.precision_recall import precision_recall
from ganforge.metrics.reference import Reference, reference_for
from ganforge.metrics.sources import Samples, resolve_real, subset
from ganforge.metrics.toy_modes import known_modes
from ganforge.registry import UnknownNameError


@dataclass(eq=False)
class EvalContext:
    """Everything one evaluate() call computes, each piece once and only when a metric asks for it.

    The fields are evaluate()'s arguments (documented there); metrics read them and call the methods below.
    """

    fake: Samples
    real: Samples | None
    features: str = "domain"
    domain: str | None = None
    resize: str = "clean"
    inception: str | Path | None = None
    data_root: str | Path | None = None
    batch_size: int | None = None
    device: str | torch.device = "cpu"
    progress: bool = True
    seed: int = 0
    cache: bool = True
    centers: Tensor | None = None
    std: float | None = None
    cas_epochs: float = 2.0

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise GanforgeError(f"unknown features {self.features!r}; valid: {', '.join(FEATURES)}")

    # ------------------------------------------------------------------------------------------ features
    @cached_property
    def extractor(self) -> nn.Module:
        if not self.fake.is_image:
            return PointsExtractor()
        if self.features.startswith("inception"):
            from ganforge.metrics.inception import InceptionExtractor

            precision = "bf16" if self.features == "inception-bf16" else "fp32"
            return InceptionExtractor(self.inception, resize=self.resize, precision=precision)
        from ganforge.metrics.domain import load_domain_extractor

        return load_domain_extractor(self.domain_name(), data_root=self.data_root, progress=self.progress)

    def _batch_size(self) -> int:
        return self.batch_size or self.extractor.default_batch_size

    @cached_property
    def _fake_outputs(self) -> dict[str, Tensor]:
        return extract(
            self.extractor,
            self.fake.data,
            batch_size=self._batch_size(),
            device=self.device,
            progress=self.progress,
            desc="generated features",
        )

    def fake_features(self) -> np.ndarray:
        return self._fake_outputs["features"].numpy()

    def fake_probs(self) -> np.ndarray:
        if not self.extractor.has_logits:  # checked before any (slow) feature extraction
            if isinstance(self.extractor, PointsExtractor):
                raise GanforgeError("the Inception Score needs images, not 2D points")
            raise GanforgeError(
                f"the Inception network at {self.extractor.path} has no logits (it returns pool "
                "features only), so it cannot give an Inception Score; use features='domain' "
                "for a domain IS, or an Inception file with its classifier layer"
            )
        return torch.softmax(self._fake_outputs["logits"].double(), dim=1).numpy()

    @cached_property
    def reference(self) -> Reference:
        if self.real is None:
            raise GanforgeError(
                "this metric compares with real data: pass the real set (--real DATASET_OR_DIR)"
            )
        if self.real.is_image != self.fake.is_image:
            raise GanforgeError("real and generated samples must both be images or both be points")
        resize = self.resize if self.features.startswith("inception") and self.fake.is_image else "none"
        return reference_for(
            self.real,
            self.extractor,
            resize=resize,
            batch_size=self._batch_size(),
            device=self.device,
            progress=self.progress,
            cache=self.cache,
        )

    def real_features(self) -> np.ndarray:
        return self.reference.features

    def real_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        return self.reference.mu, self.reference.sigma

    def _neighbour_sets(self) -> tuple[np.ndarray, np.ndarray]:
        """(real, fake) features with the real set cut to the fake set's size (seeded), as the papers compare
        equally many samples; it also bounds the N x N distance work."""
        real, fake = self.real_features(), self.fake_features()
        if len(real) > len(fake):
            idx = np.sort(np.random.RandomState(self.seed).choice(len(real), len(fake), replace=False))
            real = real[idx]
        return real, fake

    @cached_property
    def _precision_recall(self) -> tuple[float, float]:
        return precision_recall(*self._neighbour_sets())

    def precision_recall(self) -> tuple[float, float]:
        return self._precision_recall

    @cached_property
    def _density_coverage(self) -> tuple[float, float]:
        return density_coverage(*self._neighbour_sets())

    def density_coverage(self) -> tuple[float, float]:
        return self._density_coverage

    # ------------------------------------------------------------------------------------ class metrics
    def domain_name(self) -> str:
        from ganforge.metrics.domain import DOMAINS

        if self.domain is not None:
            return self.domain
        name = None if self.real is None or self.real.name is None else self.real.name.split("[")[0]
        if name in DOMAINS:
            return name
        raise GanforgeError(
            f"domain features need a domain classifier: pass domain= one of "
            f"{', '.join(sorted(DOMAINS))} (real data {name or 'unnamed'} has none), or use "
            "features='inception'"
        )

    def require_images(self, what: str) -> None:
        if not self.fake.is_image:
            raise GanforgeError(f"{what} needs images, not 2D points")

    @cached_property
    def _domain_extractor(self) -> nn.Module:
        from ganforge.metrics.domain import load_domain_extractor

        self.require_images("a class-based metric")
        if self.features == "domain" and not isinstance(self.extractor, PointsExtractor):
            return self.extractor
        return load_domain_extractor(self.domain_name(), data_root=self.data_root, progress=self.progress)

    @property
    def _classifier(self):
        return self._domain_extractor.classifier

    def fake_predictions(self) -> Tensor:
        from ganforge.metrics.domain import predict

        return predict(self._classifier, self.fake.data)

    def real_class_shares(self) -> np.ndarray:
        """(K,) domain-class shares of the real images (the real set given, else the domain's test split), cached
        beside the reference statistics."""
        from ganforge.metrics.reference import class_shares_for

        extractor = self._domain_extractor  # first: refuses points before a test split is loaded
        real = self.real if self.real is not None and self.real.is_image else self.real_test_set()
        return class_shares_for(real, extractor, cache=self.cache)

    def fake_labels(self) -> Tensor:
        if self.fake.labels is None:
            raise GanforgeError(
                "conditional metrics need the requested class of each generated sample (the "
                "'labels' array of the .npz, or fake_labels=)"
            )
        return self.fake.labels

    def stacked_digits(self) -> Tensor:
        """(N, 3) MNIST digits of each channel of 3-channel generated images."""
        from ganforge.metrics.domain import load_domain_extractor, predict

        self.require_images("stacked-MNIST")
        if self.fake.data.shape[1] != 3:
            raise GanforgeError(
                f"stacked-MNIST needs 3-channel images, got {self.fake.data.shape[1]} channels"
            )
        mnist = load_domain_extractor("mnist", data_root=self.data_root, progress=self.progress).classifier
        n, _, h, w = self.fake.data.shape
        return predict(mnist, self.fake.data.reshape(n * 3, 1, h, w)).reshape(n, 3)

    def real_test_set(self) -> Samples:
        if self.real is not None and self.real.split == "test" and self.real.labels is not None:
            return self.real
        return resolve_real(f"{self.domain_name()}:test", data_root=self.data_root)

    def mode_centers(self) -> tuple[Tensor, float]:
        if self.fake.is_image:
            raise GanforgeError("the mode metric is for 2D points, not images")
        if self.centers is not None and self.std is not None:
            return self.centers, self.std
        known = known_modes(
            None if self.real is None or self.real.name is None else self.real.name.split("[")[0]
        )
        if known is None:
            raise GanforgeError(
                "the mode metric needs the mode centres and std: use real data 'ring' or 'grid', "
                "or pass centers= and std="
            )
        return known


def as_samples(x: Tensor | Samples) -> Samples:
    if isinstance(x, Samples):
        return x
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a tensor or Samples, got {type(x).__name__}")
    if x.dtype == torch.uint8 and x.ndim == 4:
        return Samples(x)
    if x.is_floating_point() and x.ndim == 2:
        return Samples(x.float())
    raise GanforgeError(
        f"samples must be uint8 images (N, C, H, W) or float points (N, D), got {x.dtype} {tuple(x.shape)}"
    )


def evaluate(
    fake: Tensor | Samples,  # uint8 images (N, C, H, W) or float points (N, 2); see also resolve_fake
    # real: the same kind, a spec for resolve_real ("mnist", "mnist:test", DIR), or None for metrics that need
    # no real data (is, modes, stacked_mnist, gan_test; classes: the domain's test split)
    real: Tensor | Samples | str | None,
    metrics: Sequence[str] | str,  # names in METRICS or aliases, e.g. ["fid", "kid"] or "fid,pr"
    *,
    features: str = "domain",  # image features: "domain" (small CNN; MNIST, Fashion), "inception" (TF net) or
    # "inception-bf16" (the TF net in bfloat16: faster on CPUs with native bf16, not the published features)
    fake_labels: Tensor | None = None,  # requested classes (N,) of conditional samples, for gan_test and cas
    domain: str | None = None,  # which domain classifier ("mnist", "fashion-mnist"); None: the real dataset's
    resize: str = "clean",  # Inception resize protocol: "clean" (bicubic, antialiased) or "legacy" (bilinear)
    inception: str | Path | None = None,  # Inception weights file; None: $GANFORGE_INCEPTION, cache, download
    data_root: str | Path | None = None,  # dataset files for named real sets and classifier training
    num_real: int | None = None,  # use a seeded random subset of this many real samples
    batch_size: int | None = None,  # feature-extraction batch; None: the extractor's default
    device: str | torch.device = "cpu",
    progress: bool = True,  # tqdm bars for long feature extractions and classifier training
    seed: int = 0,  # KID subsets, real subsets for precision/recall, CAS training
    cache: bool = True,  # read and write cached reference statistics of named real sets
    centers: Tensor | None = None,  # mode centres (K, 2) for "modes" when the real set is not ring/grid
    std: float | None = None,  # the modes' standard deviation, with centers
    cas_epochs: float = 2.0,  # training epochs of the CAS classifier on the generated samples
) -> dict[str, float]:
    """Compute the named metrics of generated samples against real ones; return {result key: value}."""
    try:
        fns = [METRICS[name] for name in expand_metric_names(metrics)]  # "pr" -> precision, recall
    except UnknownNameError as err:
        raise GanforgeError(str(err)) from None
    fake_s = as_samples(fake)
    if fake_labels is not None:
        fake_s = replace(fake_s, labels=torch.as_tensor(fake_labels).long())
    if isinstance(real, str):
        real_s = resolve_real(real, limit=num_real, data_root=data_root, seed=seed)
    else:
        real_s = None if real is None else subset(as_samples(real), num_real, seed=seed)
    ctx = EvalContext(
        fake_s,
        real_s,
        features=features,
        domain=domain,
        resize=resize,
        inception=inception,
        data_root=data_root,
        batch_size=batch_size,
        device=device,
        progress=progress,
        seed=seed,
        cache=cache,
        centers=centers,
        std=std,
        cas_epochs=cas_epochs,
    )
    results: dict[str, float] = {}
    for fn in fns:
        results.update(fn(ctx))
    return results


def default_metrics(is_image: bool) -> list[str]:
    """What `ganforge evaluate` computes when no metrics are named."""
    return ["fid", "kid", "precision", "recall"] if is_image else ["modes", "precision", "recall"]


def format_results(results: dict[str, float]) -> str:
    """A two-column table for the terminal: one metric a line, with its ± spread where it has one."""
    shown = {k: v for k, v in results.items() if not k.endswith("_std")}
    width = max(map(len, shown), default=6)
    lines = [f"{'metric':<{width}}  value"]
    for key, value in shown.items():
        spread = results.get(f"{key}_std")
        lines.append(f"{key:<{width}}  {value:.6g}" + (f" ± {spread:.3g}" if spread is not None else ""))
    return "\n".join(lines)
