"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, held as one uint8 tensor.

Files are read from `data.root` in torchvision's layout (`ROOT/MNIST/raw/...`), so `../shared/data` works
with downloads off. Missing files are fetched by ganforge's own checksummed downloader from the mirrors below
(module constants, so tests can point them at a local server), then read by torchvision.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from pathlib import Path

import torch

from ganforge.data.base import DATASETS, TensorData, image_size_of, resize_images, set_channels
from ganforge.data.download import download
from ganforge.errors import DataError

# (folder under root, mirrors, [(file name, md5 of the downloaded file)])
MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
MNIST_FILES = [
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
]
FASHION_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
FASHION_FILES = [
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
]
CIFAR10_MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
CIFAR10_FILES = [("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")]


def data_root(cfg) -> Path:
    """Where dataset files live: data.root, else $GANFORGE_DATA, else ~/.cache/ganforge/data."""
    if cfg.root:
        return Path(cfg.root).expanduser()
    env = os.environ.get("GANFORGE_DATA")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("GANFORGE_CACHE", Path.home() / ".cache" / "ganforge")).expanduser() / "data"


def fetch(folder: Path, mirrors: list[str], files: list[tuple[str, str]], dataset: str) -> None:
    """Download each file from the first mirror that serves it (md5-checked), then unpack it in place."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, md5 in files:
        errors = []
        for mirror in mirrors:
            try:
                path = download(mirror + name, folder / name, md5=md5)
                break
            except DataError as err:
                errors.append(str(err))
        else:
            raise DataError(f"cannot download {dataset} file {name}: {errors[-1] if errors else 'no mirrors'}")
        _unpack(path)


def _unpack(path: Path) -> None:
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tar:
            tar.extractall(path.parent, filter="data")  # "data" filter: no absolute paths, links or devices
    elif path.suffix == ".gz":
        target = path.with_suffix("")
        tmp = target.with_name(target.name + ".tmp")
        with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(target)


def _load(cls, cfg, dataset: str, folder_name: str, mirrors, files):
    root = data_root(cfg)
    train = cfg.split == "train"
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        if not cfg.download:
            raise DataError(
                f"{dataset} not found under {root} (expected torchvision's layout, {root}/{folder_name}/...); "
                "pass --data-root DIR with the files, or allow downloads (data.download=true)"
            ) from None
    raw = root / folder_name / "raw" if folder_name != "." else root
    fetch(raw, mirrors, files, dataset)
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError as err:
        raise DataError(f"{dataset} files under {root} are incomplete after download: {err}") from None


def _finish(images: torch.Tensor, labels, cfg, name: str, native: tuple[int, int]) -> TensorData:
    images = resize_images(images, image_size_of(cfg, native))
    images = set_channels(images, cfg.channels)
    return TensorData(images.contiguous(), torch.as_tensor(labels).long(), 10, name)


@DATASETS.register("mnist")
def mnist(cfg) -> TensorData:
    from torchvision.datasets import MNIST

    ds = _load(MNIST, cfg, "MNIST", "MNIST", MNIST_MIRRORS, MNIST_FILES)
    return _finish(ds.data.unsqueeze(1), ds.targets, cfg, "mnist", (28, 28))


@DATASETS.register("fashion-mnist")
def fashion_mnist(cfg) -> TensorData:
    from torchvision.datasets import FashionMNIST

    ds = _load(FashionMNIST, cfg, "Fashion-MNIST", "FashionMNIST", FASHION_MIRRORS, FASHION_FILES)
    return _finish(ds.data.unsqueeze(1), ds.targets, cfg, "fashion-mnist", (28, 28))


@DATASETS.register("cifar10")
def cifar10(cfg) -> TensorData:
    from torchvision.datasets import CIFAR10

    ds = _load(CIFAR10, cfg, "CIFAR-10", ".", CIFAR10_MIRRORS, CIFAR10_FILES)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2)  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    return _finish(images, ds.targets, cfg, "cifar10", (32, 32))
