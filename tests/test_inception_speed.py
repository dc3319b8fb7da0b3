"""The fast Inception path (folded batch norm, channels_last, torch.fx) gives the TorchScript's features."""

from __future__ import annotations

import pytest
import torch

from conftest import INCEPTION
from ganforge.metrics.inception import InceptionExtractor

pytestmark = pytest.mark.skipif(not INCEPTION.exists(), reason="needs ../shared/models/inception-2015-12-05.pt")


def test_fast_path_equals_the_torchscript():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 1, 28, 28), generator=g, dtype=torch.uint8)
    fast, plain = InceptionExtractor(INCEPTION, fast=True), InceptionExtractor(INCEPTION, fast=False)
    assert fast.fast and not plain.fast
    with torch.inference_mode():
        a, b = fast(images)["features"], plain(images)["features"]
    assert a.shape == b.shape == (4, 2048)
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)
    assert not torch.equal(a[0], a[1])  # real features, not a constant


def test_onnxruntime_path_gives_the_torch_features_and_is_cached(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")  # the export extra; CI installs it (dev extra)
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (3, 1, 28, 28), generator=g, dtype=torch.uint8)
    on_ort = InceptionExtractor(INCEPTION, runtime="onnxruntime")
    on_torch = InceptionExtractor(INCEPTION, runtime="torch")
    assert (on_ort.runtime, on_torch.runtime) == ("onnxruntime", "torch-fast")
    assert on_ort.name == on_torch.name  # same features: one cache key for reference statistics
    (onnx_file,) = (tmp_path / "models").glob("inception-fast-*.onnx")
    with torch.inference_mode():
        a, b = on_ort(images)["features"], on_torch(images)["features"]
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)
    assert not torch.equal(a[0], a[1])
    stamp = onnx_file.stat().st_mtime_ns
    assert InceptionExtractor(INCEPTION).runtime == "onnxruntime"  # auto picks it; the export is reused
    assert onnx_file.stat().st_mtime_ns == stamp


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="unknown Inception runtime 'tensorrt'"):
        InceptionExtractor(INCEPTION, runtime="tensorrt")


def test_onnxruntime_without_the_fast_path_is_refused():
    # onnxruntime runs the folded copy; fast=False must not quietly fall back to the TorchScript
    with pytest.raises(ValueError, match="needs fast=True"):
        InceptionExtractor(INCEPTION, fast=False, runtime="onnxruntime")


def test_bf16_precision_is_close_to_fp32_but_keyed_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path))
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (4, 1, 28, 28), generator=g, dtype=torch.uint8)
    fp32, bf16 = InceptionExtractor(INCEPTION, runtime="torch"), InceptionExtractor(INCEPTION, precision="bf16")
    assert bf16.runtime == "torch-fast-bf16" and bf16.fast_layers.w0.dtype == torch.bfloat16
    assert bf16.name == fp32.name + "-bf16"  # other features: reference statistics must not be shared
    with torch.inference_mode():
        a, b = fp32(images)["features"], bf16(images)["features"]
    assert b.dtype == torch.float32 and b.shape == (4, 2048)
    relative = ((a - b).norm() / a.norm()).item()
    assert 0 < relative < 0.15  # bf16 rounding moves the features a little (~5% measured), never to garbage
    assert not torch.equal(b[0], b[1])


def test_bf16_precision_runs_on_torch_only_and_unknown_precisions_are_refused():
    with pytest.raises(ValueError, match="unknown Inception precision 'int8'"):
        InceptionExtractor(INCEPTION, precision="int8")
    with pytest.raises(ValueError, match="needs fast=True and no onnxruntime"):
        InceptionExtractor(INCEPTION, precision="bf16", runtime="onnxruntime")
    with pytest.raises(ValueError, match="needs fast=True and no onnxruntime"):
        InceptionExtractor(INCEPTION, precision="bf16", fast=False)
