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
