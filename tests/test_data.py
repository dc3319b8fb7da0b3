"""Datasets end to end: MNIST downloaded from a local 127.0.0.1 server (checksummed), the real MNIST and
Fashion-MNIST files in ../shared/data, the toy protocol constants and scikit-learn's digits."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import math
import struct
import threading
from functools import partial

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA
from ganforge.config import DataConfig
from ganforge.data import load_dataset, torchvision_sets, toy2d
from ganforge.errors import DataError

# ------------------------------------------------------------------------------------- MNIST over HTTP

N_TRAIN, N_TEST = 64, 16


def idx_images(images: np.ndarray) -> bytes:
    """The IDX3 format of the MNIST files: magic 0x00000803, then N, H, W as big-endian int32, then pixels."""
    n, h, w = images.shape
    return struct.pack(">IIII", 0x0803, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """Serve tiny gzipped fake MNIST files on 127.0.0.1 and point ganforge's MNIST mirror list at them."""
    rng = np.random.default_rng(0)
    arrays = {
        "train": (rng.integers(0, 256, (N_TRAIN, 28, 28)), rng.integers(0, 10, N_TRAIN)),
        "t10k": (rng.integers(0, 256, (N_TEST, 28, 28)), rng.integers(0, 10, N_TEST)),
    }
    served = tmp_path / "served" / "mnist"
    served.mkdir(parents=True)
    files = []
    for split, (images, labels) in arrays.items():
        for kind, payload in (("images-idx3", idx_images(images)), ("labels-idx1", idx_labels(labels))):
            name = f"{split}-{kind}-ubyte.gz"
            blob = gzip.compress(payload, mtime=0)
            (served / name).write_bytes(blob)
            files.append((name, hashlib.md5(blob).hexdigest()))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(served.parent)))
    httpd.daemon_threads = True
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    # A dead mirror first (404 here): the loader must fall through to the next one.
    monkeypatch.setattr(torchvision_sets, "MNIST_MIRRORS", [f"{base}/gone/", f"{base}/mnist/"])
    monkeypatch.setattr(torchvision_sets, "MNIST_FILES", files)
    yield httpd, arrays, files
    httpd.shutdown()
    httpd.server_close()


def test_mnist_download_from_local_mirror(mnist_server, tmp_path):
    httpd, arrays, files = mnist_server
    root = tmp_path / "fresh"  # does not exist yet
    data = load_dataset(DataConfig(name="mnist", root=str(root), download=True))
    images, labels = arrays["train"]
    assert data.data.shape == (N_TRAIN, 1, 28, 28) and data.data.dtype == torch.uint8
    assert torch.equal(data.data[:, 0], torch.from_numpy(images.astype(np.uint8)))
    assert torch.equal(data.labels, torch.from_numpy(labels).long())
    assert data.num_classes == 10 and data.name == "mnist"
    raw = root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir() if p.name.startswith(".")) == []  # no temporary files left
    for name, md5 in files:
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5
        assert (raw / name[:-3]).is_file()  # unpacked beside it, where torchvision reads it
    fetched = [p for p in httpd.requests if p.startswith("/mnist/")]
    assert len(fetched) == 4 and len(httpd.requests) == 8  # each file: a 404 from the dead mirror, then 200

    test = load_dataset(DataConfig(name="mnist", root=str(root), split="test", download=True))
    assert torch.equal(test.data[:, 0], torch.from_numpy(arrays["t10k"][0].astype(np.uint8)))
    assert torch.equal(test.labels, torch.from_numpy(arrays["t10k"][1]).long())
    assert len(httpd.requests) == 8  # the files are there now: nothing fetched again


def test_mnist_wrong_checksum_leaves_no_file(mnist_server, tmp_path, monkeypatch):
    _, _, files = mnist_server
    monkeypatch.setattr(torchvision_sets, "MNIST_FILES", [(files[0][0], "0" * 32), *files[1:]])
    root = tmp_path / "fresh"
    with pytest.raises(DataError, match=f"{files[0][0]}.*checksum mismatch.*expected md5 {'0' * 32}"):
        load_dataset(DataConfig(name="mnist", root=str(root), download=True))
    raw = root / "MNIST" / "raw"
    assert not raw.exists() or list(raw.iterdir()) == []  # neither the bad file nor a partial one


def test_mnist_without_download_names_data_root(tmp_path):
    with pytest.raises(DataError, match="--data-root"):
        load_dataset(DataConfig(name="mnist", root=str(tmp_path / "empty"), download=False))
    with pytest.raises(DataError, match="--data-root"):
        load_dataset(DataConfig(name="fashion-mnist", root=str(tmp_path / "empty"), download=False))


# ------------------------------------------------------------------------- the real files, offline

# md5 of the official uncompressed image files (../shared/README.md).
REAL = {
    "mnist": ("MNIST", "6bbc9ace898e44ae57da46a324031adb", "2646ac647ad5339dbf082846283269ea"),
    "fashion-mnist": ("FashionMNIST", "f4a8712d7a061bf5bd6d2ca38dc4d50a", "8181f5470baa50b63fa0f6fddb340f0a"),
}
# Label counts per class, a cheap check that the label files are the official ones too.
MNIST_COUNTS = {"train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
                "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]}
FASHION_COUNTS = {"train": [6000] * 10, "test": [1000] * 10}


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_files_offline(name):
    folder, md5_train, md5_test = REAL[name]
    raw = SHARED_DATA / folder / "raw"
    assert hashlib.md5((raw / "train-images-idx3-ubyte").read_bytes()).hexdigest() == md5_train
    assert hashlib.md5((raw / "t10k-images-idx3-ubyte").read_bytes()).hexdigest() == md5_test
    counts = MNIST_COUNTS if name == "mnist" else FASHION_COUNTS
    for split, n in (("train", 60000), ("test", 10000)):
        data = load_dataset(DataConfig(name=name, root=str(SHARED_DATA), split=split, download=False))
        assert data.data.shape == (n, 1, 28, 28) and data.data.dtype == torch.uint8
        assert data.labels.dtype == torch.int64 and data.labels.shape == (n,)
        assert int(data.labels.min()) == 0 and int(data.labels.max()) == 9 and data.num_classes == 10
        assert torch.bincount(data.labels, minlength=10).tolist() == counts[split]
        assert int(data.data.max()) == 255 and int(data.data.min()) == 0


# ------------------------------------------------------------------------------- toy sets and digits


def test_ring_protocol_constants():
    """8 Gaussians on the unit circle, std 0.01 (VEEGAN / PacGAN)."""
    assert toy2d.RING_STD == 0.01
    centers = toy2d.ring_centers().double()
    expected = torch.tensor([[math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)] for k in range(8)],
                            dtype=torch.float64)
    assert centers.shape == (8, 2)
    assert torch.allclose(centers, expected, atol=1e-7)
    data = load_dataset(DataConfig(name="ring", num_points=40_000))
    _check_mixture(data, expected, 0.01)


def test_grid_protocol_constants():
    """25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05 (VEEGAN / PacGAN)."""
    assert toy2d.GRID_STD == 0.05
    centers = toy2d.grid_centers().double()
    expected = torch.tensor([[x, y] for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], dtype=torch.float64)
    assert torch.equal(centers, expected)
    data = load_dataset(DataConfig(name="grid", num_points=50_000))
    _check_mixture(data, expected, 0.05)


def _check_mixture(data, centers: torch.Tensor, std: float) -> None:
    points, modes = data.data.double(), data.labels
    assert data.data.dtype == torch.float32 and data.data.shape[1] == 2
    assert data.num_classes == len(centers)
    counts = torch.bincount(modes, minlength=len(centers)).double()
    assert counts.min() > 0.8 * counts.mean()  # equal weights
    offsets = points - centers[modes]  # each point minus its own mode's centre
    assert abs(offsets.mean().item()) < 0.05 * std
    assert offsets.std().item() == pytest.approx(std, rel=0.03)
    # Every point is nearest to its own centre (the modes do not overlap at these stds).
    assert torch.equal(torch.cdist(points, centers).argmin(1), modes)


def test_toy_sets_are_a_fixed_sample():
    a = load_dataset(DataConfig(name="ring", num_points=500))
    b = load_dataset(DataConfig(name="ring", num_points=500))
    assert torch.equal(a.data, b.data)


def test_digits_shape():
    data = load_dataset(DataConfig(name="digits"))
    assert data.data.shape == (1797, 1, 32, 32) and data.data.dtype == torch.uint8
    assert data.labels.shape == (1797,) and set(data.labels.tolist()) == set(range(10))
    assert int(data.data.max()) == 255 and int(data.data.min()) == 0
    native = load_dataset(DataConfig(name="digits", image_size=[8], limit=100))
    assert native.data.shape == (100, 1, 8, 8) and native.labels.shape == (100,)
