"""`ganforge classify`: run a trained classifier (a semi-supervised GAN's D) over a labelled or unlabelled set.

Data: a dataset name (`mnist:test`), a folder of images (class subfolders named by class index, `0/`, `1/`,
..., give labels) or an .npz (`images` uint8 (N, C, H, W), optional `labels`). Images are converted to the
model's channels and size. Predictions go to a CSV, one row per image: its index (and file for folders), the
predicted class, its probability, and the true label when there is one.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ganforge.data.base import resize_images, set_channels
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_bytes
from ganforge.metrics.sources import read_npz, resolve_real
from ganforge.models.sampler import Sampler


@dataclass
class Classified:
    probabilities: Tensor  # (N, num_classes) float32
    labels: Tensor | None  # (N,) true classes where the data has them
    names: list[str] | None  # file names (folders), else None

    @property
    def predictions(self) -> Tensor:
        return self.probabilities.argmax(1)

    @property
    def accuracy(self) -> float | None:
        if self.labels is None:
            return None
        return (self.predictions == self.labels).double().mean().item()


def check_classifier(sampler: Sampler, source: str | Path) -> None:
    """A one-line error unless `sampler` (loaded from `source` by ganforge.load_sampler) is a classifier."""
    if sampler.task != "classify":
        raise GanforgeError(f"{source} holds a {sampler.task} model (family {sampler.config.family}), not a "
                            "classifier; `ganforge classify` needs one, e.g. a model.family=ssgan run")


def read_images(spec: str, *, shape: tuple[int, ...], data_root: str | Path | None = None
                ) -> tuple[Tensor, Tensor | None, list[str] | None]:
    """(uint8 images at `shape`, labels or None, file names or None) from a dataset name, folder or .npz."""
    channels, height, width = shape
    path = Path(spec).expanduser()
    names = None
    if path.is_dir():
        from ganforge.data.folder import _list_images, load_image_folder

        loaded = load_image_folder(path, channels=channels, size=(height, width))
        images = loaded.images
        labels = _folder_labels(loaded.labels, loaded.class_names)
        if not loaded.skipped:  # file names line up with the images only when every file was read
            names = [str(p.relative_to(path)) for p in _list_images(path)]
    elif path.is_file() and path.suffix == ".npz":
        samples = read_npz(path)
        images, labels = samples.data, samples.labels
    else:
        samples = resolve_real(spec, data_root=data_root)
        images, labels = samples.data, samples.labels
    if not (images.dtype == torch.uint8 and images.ndim == 4):
        raise GanforgeError(f"{spec} holds no images (classify takes images, not points)")
    images = resize_images(set_channels(images, channels), (height, width))
    return images, labels, names


def _folder_labels(labels: Tensor | None, class_names: list[str]) -> Tensor | None:
    """Class subfolders named by class index ("0", "1", ...) give labels; other names give none."""
    if labels is None or not all(name.isdigit() for name in class_names):
        return None
    return torch.tensor([int(name) for name in class_names])[labels]


def classify(sampler: Sampler, data: str, *, data_root: str | Path | None = None,
             batch_size: int = 500) -> Classified:
    """Class probabilities of every image of `data` (see read_images) under a classifier sampler."""
    check_classifier(sampler, "this model")
    images, labels, names = read_images(data, shape=sampler.spec.shape, data_root=data_root)
    if labels is not None and len(labels) and int(labels.max()) >= sampler.num_classes:
        labels = None  # labels of another label set (e.g. stacked modes): predictions only
    return Classified(sampler.classify(images, batch_size=batch_size), labels, names)


def write_predictions(result: Classified, out: Path, *, overwrite: bool = False) -> None:
    """A CSV: index, [file], predicted, probability, [label]; atomically, never over a file without overwrite."""
    if out.exists() and not overwrite:
        raise GanforgeError(f"{out} exists; pass --overwrite to replace it")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", *(["file"] if result.names else []), "predicted", "probability",
                     *(["label"] if result.labels is not None else [])])
    probs, preds = result.probabilities, result.predictions
    confidence = probs.gather(1, preds[:, None]).squeeze(1).tolist()
    for i, (pred, p) in enumerate(zip(preds.tolist(), confidence)):
        writer.writerow([i, *([result.names[i]] if result.names else []), pred, f"{p:.6f}",
                         *([int(result.labels[i])] if result.labels is not None else [])])
    atomic_write_bytes(out, buffer.getvalue().encode())
