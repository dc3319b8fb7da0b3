"""Image-to-image and SR building blocks: generator/discriminator geometry, ImagePool, tiled inference,
derived tasks (edges, MNIST-M, SR pairs) and paired/unpaired folder loading, on tiny inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganforge.data.derived import PHOTO_SPLITS, mnist_edges, mnist_m_style, skimage_photos, sr_pairs
from ganforge.data.paired import load_paired_folders, load_side_by_side, load_unpaired_folders
from ganforge.errors import ConfigError, DataError
from ganforge.nn.image2image import (
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    SRResNetGenerator,
    UNetGenerator,
    patch_output_shape,
    patchgan_receptive_field,
    tiled,
    unet_divisor,
)

SIZES = [(32, 48), (16, 16), (8, 24)]
CHANNELS = [(1, 1), (3, 3), (4, 1), (1, 3)]

# --- generators ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("c_in", "c_out"), CHANNELS)
def test_unet_shapes(size, c_in, c_out) -> None:
    g = UNetGenerator(in_channels=c_in, out_channels=c_out, base=4, depth=3)
    y = g(torch.randn(2, c_in, *size))
    assert y.shape == (2, c_out, *size)
    assert y.abs().max() <= 1.0  # tanh output


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_unet_full_depth_reaches_1x1_bottleneck_at_batch_one(norm) -> None:
    g = UNetGenerator(in_channels=3, out_channels=3, base=2, depth=8, norm=norm).train()
    assert unet_divisor(8) == g.divisor == 256
    assert g(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)  # no norm on the 1x1 level: no error


def test_unet_rejects_indivisible_sizes() -> None:
    g = UNetGenerator(in_channels=1, out_channels=1, base=4, depth=3)
    assert unet_divisor(3) == 8
    with pytest.raises(ValueError, match="divisible by 8"):
        g(torch.randn(1, 1, 32, 44))
    with pytest.raises(ConfigError):
        UNetGenerator(in_channels=1, out_channels=1, norm="layer")


def test_unet_dropout_is_the_noise() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 16)
    g = UNetGenerator(in_channels=1, out_channels=1, base=4, depth=4, norm="instance", dropout=0.5).train()
    assert not torch.allclose(g(x), g(x))  # dropout on: two draws differ
    g.eval()
    assert torch.equal(g(x), g(x))
    quiet = UNetGenerator(in_channels=1, out_channels=1, base=4, depth=4, norm="instance", dropout=0.0).train()
    assert torch.equal(quiet(x), quiet(x))
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3  # dropout_layers=3 inner decoder layers


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("c_in", "c_out"), CHANNELS)
@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_resnet_generator_shapes(size, c_in, c_out, upsample) -> None:
    g = ResnetGenerator(in_channels=c_in, out_channels=c_out, base=4, n_blocks=2, upsample=upsample)
    y = g(torch.randn(2, c_in, *size))
    assert y.shape == (2, c_out, *size)
    assert y.abs().max() <= 1.0
    assert not any(isinstance(m, nn.ZeroPad2d) for m in g.modules())
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in g.modules()) >= 2 + 2 * 2  # stem, head, blocks


def test_resnet_generator_blocks_and_divisor() -> None:
    g = ResnetGenerator(in_channels=3, out_channels=3, base=4, n_blocks=9, n_down=3)
    assert g.divisor == 8
    assert g(torch.randn(1, 3, 16, 24)).shape == (1, 3, 16, 24)
    with pytest.raises(ValueError, match="divisible by 8"):
        g(torch.randn(1, 3, 16, 20))


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("size", [(8, 12), (5, 7)])
def test_srresnet_output_is_scale_times_input(scale, channels, size) -> None:
    g = SRResNetGenerator(channels=channels, scale=scale, n_blocks=2, width=8)
    y = g(torch.randn(2, channels, *size))
    assert y.shape == (2, channels, scale * size[0], scale * size[1])
    assert sum(isinstance(m, nn.PixelShuffle) for m in g.modules()) == {2: 1, 4: 2}[scale]
    assert any(isinstance(m, nn.PReLU) for m in g.modules())


def test_srresnet_rejects_other_scales() -> None:
    for scale in (1, 3, True):
        with pytest.raises(ConfigError):
            SRResNetGenerator(channels=3, scale=scale)


# --- PatchGAN --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(64, 64), (32, 48), (70, 90), (37, 53)])
def test_patch_output_shape_matches_the_network(n_layers, size) -> None:
    d = PatchDiscriminator(in_channels=3, base=4, n_layers=n_layers, norm="none")
    x = torch.randn(2, 3, *size)
    try:
        expected = patch_output_shape(*size, n_layers=n_layers)
    except ConfigError:  # too small: the network must fail on it too
        with pytest.raises(RuntimeError):
            d(x)
        return
    assert d(x).shape == (2, 1, *expected)


def test_patch_output_shape_known_values() -> None:
    assert patch_output_shape(256, 256) == (30, 30)  # pix2pix's 30x30 map of 70x70 patches
    assert patchgan_receptive_field() == 70
    assert [patchgan_receptive_field(n) for n in (1, 2, 4)] == [16, 34, 142]
    with pytest.raises(ConfigError, match="too small"):
        patch_output_shape(8, 8, n_layers=3)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_patchgan_receptive_field_by_gradient(n_layers) -> None:
    torch.manual_seed(0)
    d = PatchDiscriminator(in_channels=2, base=2, n_layers=n_layers, norm="batch").double().eval()
    x = torch.randn(1, 2, 160, 176, dtype=torch.float64, requires_grad=True)
    logits = d(x)
    i, j = logits.shape[2] // 2, logits.shape[3] // 2
    logits[0, 0, i, j].backward()
    seen = x.grad.abs().sum(dim=(0, 1)) > 0  # (H, W): input pixels this one logit depends on
    rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
    assert rows.min() > 0 and cols.min() > 0 and rows.max() < 159 and cols.max() < 175  # not clipped by borders
    extent = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
    assert extent == (patchgan_receptive_field(n_layers),) * 2
    assert d.receptive_field == extent[0]
    if n_layers == 3:
        assert extent == (70, 70)


def test_patch_discriminator_channels_and_norms() -> None:
    for norm in ("batch", "instance", "none"):
        d = PatchDiscriminator(in_channels=4, base=4, norm=norm)
        assert d(torch.randn(2, 4, 32, 48)).shape == (2, 1, *patch_output_shape(32, 48))


# --- ImagePool -------------------------------------------------------------------------------------------


def ids(start: int, n: int) -> torch.Tensor:
    """n tiny images whose every pixel is its id, so outputs can be traced back to inputs."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 3).clone()


def id_of(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_image_pool_fills_then_mixes() -> None:
    torch.manual_seed(0)
    pool = ImagePool(size=4)
    assert torch.equal(pool.query(ids(0, 3)), ids(0, 3))  # filling: the inputs come back
    assert len(pool) == 3
    out = pool.query(ids(3, 3))  # one more fills the pool; the other two may already be swapped
    assert id_of(out)[0] == 3 and len(pool) == 4
    returned = [0, 1, 2, *id_of(out)]
    history = 0
    for k in range(20):
        start = 6 + 10 * k
        got = id_of(pool.query(ids(start, 10)))
        returned += got
        history += sum(g != start + j for j, g in enumerate(got))
        assert all(g <= start + j for j, g in enumerate(got))  # never an image from the future
        assert len(pool) == 4
    assert 0.35 < history / 200 < 0.65  # p = 1/2 of a stored image
    # A stored image is handed out once, then replaced; only those returned while filling come back a second time.
    counts = torch.bincount(torch.tensor(returned))
    assert counts.max() <= 2 and set((counts == 2).nonzero().flatten().tolist()) <= {0, 1, 2, 3}


def test_image_pool_zero_size_passes_through_and_output_is_detached() -> None:
    x = torch.randn(3, 1, 4, 4, requires_grad=True)
    assert torch.equal(ImagePool(size=0).query(x), x)
    out = ImagePool(size=2).query(x * 2)
    assert not out.requires_grad
    with pytest.raises(ValueError, match="shape"):
        pool = ImagePool(size=2)
        pool.query(torch.zeros(1, 1, 4, 4))
        pool.query(torch.zeros(1, 3, 4, 4))


def test_image_pool_seeded_runs_repeat() -> None:
    def run() -> list[int]:
        torch.manual_seed(123)
        pool = ImagePool(size=5)
        return sum((id_of(pool.query(ids(8 * k, 8))) for k in range(6)), [])

    assert run() == run()


def test_image_pool_state_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    holder = nn.ModuleDict({"pool": ImagePool(size=6)})
    for k in range(3):
        holder["pool"].query(ids(4 * k, 4))
    path = tmp_path / "pool.pt"
    torch.save(holder.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert "pool._extra_state" in state
    restored = nn.ModuleDict({"pool": ImagePool(size=6)})
    restored.load_state_dict(state)
    assert len(restored["pool"]) == 6

    def future(pool: ImagePool) -> list[int]:
        torch.manual_seed(99)
        return sum((id_of(pool.query(ids(100 + 5 * k, 5))) for k in range(8)), [])

    fresh = future(ImagePool(size=6))
    assert future(restored["pool"]) == future(holder["pool"])
    restored.load_state_dict(state)
    again = future(restored["pool"])
    assert again != fresh  # the restored history matters: a fresh pool only fills and echoes its inputs
    torch.save(ImagePool(size=6).state_dict(), path)  # an empty pool round-trips too
    empty = ImagePool(size=6)
    empty.load_state_dict(torch.load(path, weights_only=True))
    assert len(empty) == 0 and empty.images is None
    with pytest.raises(ValueError, match="size"):
        ImagePool(size=3).load_state_dict({"_extra_state": state["pool._extra_state"]})


def test_image_pool_moves_with_the_module() -> None:
    pool = ImagePool(size=2)
    pool.query(ids(0, 2))
    pool.to(torch.float64)
    assert pool.images is not None and pool.images.dtype == torch.float64
    assert pool.query(ids(2, 1).double()).dtype == torch.float64


# --- tiled inference -------------------------------------------------------------------------------------


def conv_net(layers: int, c_in: int = 3, width: int = 4, c_out: int = 2) -> nn.Module:
    """3x3 convolutions with batch norm in eval mode (non-trivial running statistics): radius = layers."""
    torch.manual_seed(0)
    mods: list[nn.Module] = []
    c = c_in
    for i in range(layers):
        last = i == layers - 1
        mods.append(nn.Conv2d(c, c_out if last else width, 3, padding=1))
        if not last:
            bn = nn.BatchNorm2d(width)
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            mods += [bn, nn.ReLU()]
        c = width
    return nn.Sequential(*mods).eval()


def starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    s = list(range(0, length - tile, tile - overlap))
    return s + [length - tile]


def test_tiled_equals_whole_image_for_small_receptive_field() -> None:
    net = conv_net(3)  # radius 3 <= overlap / 4
    x = torch.randn(2, 3, 70, 90)
    seen = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape[-2:]))
        return net(t)

    with torch.inference_mode():
        whole, out = net(x), tiled(fn, x, tile=32, overlap=16)
    assert out.shape == whole.shape
    torch.testing.assert_close(out, whole, atol=1e-5, rtol=1e-5)
    assert len(seen) == len(starts(70, 32, 16)) * len(starts(90, 32, 16)) > 1
    assert max(max(s) for s in seen) <= 32  # memory bound: fn never sees more than a tile


def test_tiled_equals_whole_image_away_from_seams() -> None:
    net = conv_net(5)  # radius 5 > overlap / 4: the seams differ slightly, the rest must not
    x = torch.randn(1, 3, 70, 90)
    tile, overlap = 40, 8
    with torch.inference_mode():
        whole, out = net(x), tiled(net, x, tile=tile, overlap=overlap)

    def far(length: int) -> torch.Tensor:
        edges = [s for s in starts(length, tile, overlap) if s > 0]
        edges += [s + tile for s in starts(length, tile, overlap) if s + tile < length]
        pos = torch.arange(length)
        return torch.stack([(pos - e).abs() >= overlap for e in edges]).all(0)

    mask = far(70)[:, None] & far(90)[None, :]
    assert 0.2 < mask.float().mean() < 0.9
    torch.testing.assert_close(out[..., mask], whole[..., mask], atol=1e-5, rtol=1e-5)
    err = (out - whole).abs()
    assert err.max() < 0.25 * whole.abs().max()  # near the seams: close, not equal


def test_tiled_super_resolution_scale() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2), nn.Conv2d(3, 3, 3, padding=1)).eval()
    x = torch.randn(1, 3, 40, 56)
    with torch.inference_mode():
        whole, out = net(x), tiled(net, x, tile=24, overlap=8, scale=2)
    assert out.shape == (1, 3, 80, 112)
    torch.testing.assert_close(out, whole, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        tiled(net, x, tile=24, overlap=8, scale=4)


def test_tiled_single_tile_and_argument_checks() -> None:
    net = conv_net(2)
    x = torch.randn(1, 3, 20, 24)
    with torch.inference_mode():
        torch.testing.assert_close(tiled(net, x, tile=64, overlap=8), net(x))
    with pytest.raises(ConfigError):
        tiled(net, x, tile=16, overlap=16)
    with pytest.raises(ConfigError):
        tiled(net, x, tile=30, overlap=8, multiple=4)
    with pytest.raises(ValueError, match="divisible"):
        tiled(net, torch.randn(1, 3, 22, 24), tile=16, overlap=8, multiple=4)


# --- derived tasks ---------------------------------------------------------------------------------------


def digits(n: int = 6, seed: int = 0) -> torch.Tensor:
    """Digit-like uint8 (n, 1, 28, 28): blurred random strokes on black."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 28, 28, generator=g) > 0.93).float()
    x = F.max_pool2d(x, 3, 1, 1)
    x[..., :3, :] = 0
    x[..., -3:, :] = 0
    return (F.avg_pool2d(x, 3, 1, 1) * 255).round().to(torch.uint8)


def test_mnist_edges_trace_boundaries() -> None:
    img = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    img[0, 0, 9:19, 9:19] = 255  # a white square; image 1 stays blank
    e = mnist_edges(img)
    assert e.shape == (2, 1, 28, 28) and e.dtype == torch.uint8
    assert set(e.unique().tolist()) <= {0, 255}
    assert e[1].sum() == 0  # no edges in a blank image (the border is replicated, never an edge)
    inside, outside = e[0, 0, 11:17, 11:17], e[0, 0].clone()
    outside[7:21, 7:21] = 0
    assert inside.sum() == 0 and outside.sum() == 0  # edges only on the square's outline
    assert (e[0, 0, 8:20, 8:20] > 0).sum() >= 4 * 10  # and all around it
    rgb = img.expand(-1, 3, -1, -1)
    assert torch.equal(mnist_edges(rgb), e)
    d = digits()
    assert torch.equal(mnist_edges(d), mnist_edges(d.clone()))


def test_mnist_m_style_shapes_and_determinism() -> None:
    d = digits(40)
    a, b = mnist_m_style(d, seed=3), mnist_m_style(d, seed=3)
    assert a.shape == (40, 3, 28, 28) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(a, mnist_m_style(d, seed=4))
    assert not torch.equal(a, mnist_m_style(d, seed=3, split="test"))
    assert a.float().std(dim=(2, 3)).mean() > 5  # textured colour backgrounds, not flat
    assert not torch.equal(a[:, 0], a[:, 1])  # colour


def test_mnist_m_style_is_abs_difference_with_the_patch() -> None:
    black = torch.zeros(16, 1, 12, 12, dtype=torch.uint8)
    white = torch.full_like(black, 255)
    patch, inverted = mnist_m_style(black, seed=5), mnist_m_style(white, seed=5)  # same patches for one seed
    assert torch.equal(patch.int() + inverted.int(), torch.full(patch.shape, 255, dtype=torch.int32))
    mid = torch.full_like(black, 100)
    assert torch.equal(mnist_m_style(mid, seed=5), (patch.int() - 100).abs().to(torch.uint8))


def test_skimage_photos_split_is_disjoint() -> None:
    assert not set(PHOTO_SPLITS["train"]) & set(PHOTO_SPLITS["test"])
    train, test = skimage_photos("train"), skimage_photos("test")
    assert len(train) == len(PHOTO_SPLITS["train"]) and len(test) == len(PHOTO_SPLITS["test"]) >= 2
    assert len(skimage_photos("all")) == len(train) + len(test)
    for p in train + test:
        assert p.dtype == torch.uint8 and p.dim() == 3 and p.shape[0] == 3 and min(p.shape[1:]) >= 256
    assert all(not (p.shape == q.shape and torch.equal(p, q)) for p in train for q in test)
    train[0].zero_()  # callers get copies
    assert skimage_photos("train")[0].any()
    with pytest.raises(ConfigError):
        skimage_photos("val")


@pytest.mark.parametrize("scale", [2, 4])
def test_sr_pairs_shapes_and_modes(scale) -> None:
    x = torch.randint(0, 256, (5, 3, 30, 34), dtype=torch.uint8)
    low, high = sr_pairs(x, scale=scale)
    h, w = 30 // scale * scale, 34 // scale * scale
    assert high.shape == (5, 3, h, w) and low.shape == (5, 3, h // scale, w // scale)
    assert low.dtype == high.dtype == torch.uint8
    assert torch.equal(high, x[:, :, :h, :w])
    low_area, _ = sr_pairs(x, scale=scale, mode="area")
    expected = F.avg_pool2d(high.float(), scale).round().to(torch.uint8)
    assert torch.equal(low_area, expected)
    assert not torch.equal(low_area, low)  # bicubic is a different filter


def test_sr_pairs_random_crops() -> None:
    x = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    low, high = sr_pairs(x, scale=2, crop=16, seed=7)
    assert high.shape == (6, 1, 16, 16) and low.shape == (6, 1, 8, 8)
    low2, high2 = sr_pairs(x, scale=2, crop=16, seed=7)
    assert torch.equal(high, high2) and torch.equal(low, low2)
    assert not torch.equal(high, sr_pairs(x, scale=2, crop=16, seed=8)[1])
    for i in range(6):  # each crop is a block of its own image
        blocks = x[i, 0].unfold(0, 16, 1).unfold(1, 16, 1)  # (13, 13, 16, 16)
        assert (blocks == high[i, 0]).all(-1).all(-1).any()
    assert sr_pairs(x, scale=4, crop=(8, 12))[1].shape == (6, 1, 8, 12)
    with pytest.raises(ConfigError, match="multiple"):
        sr_pairs(x, scale=4, crop=10)
    with pytest.raises(DataError, match="larger"):
        sr_pairs(x, scale=2, crop=32)
    with pytest.raises(ConfigError):
        sr_pairs(x, scale=1)


# --- paired and unpaired folders -------------------------------------------------------------------------


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def side_by_side(left, right, h: int = 8, w: int = 8) -> np.ndarray:
    img = np.zeros((h, 2 * w, 3), dtype=np.uint8)
    img[:, :w] = left
    img[:, w:] = right
    return img


def test_side_by_side_splits_in_the_middle(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        save(tmp_path / f"p{i}.png", side_by_side((10 * i + 10, 0, 0), (0, 0, 10 * i + 15)))
    pairs = load_side_by_side(tmp_path)
    assert pairs.names == ["p0", "p1", "p2"] and pairs.skipped == 0
    assert pairs.a.shape == pairs.b.shape == (3, 3, 8, 8) and pairs.a.dtype == torch.uint8
    assert pairs.a[:, 0, 0, 0].tolist() == [10, 20, 30] and pairs.a[:, 2].sum() == 0
    assert pairs.b[:, 2, 0, 0].tolist() == [15, 25, 35] and pairs.b[:, 0].sum() == 0
    small = load_side_by_side(tmp_path, size=(4, 6))  # split first, then resize: no bleed across the seam
    assert small.a.shape == (3, 3, 4, 6)
    assert small.b[:, 0].sum() == 0 and small.a[:, 2].sum() == 0
    assert load_side_by_side(tmp_path, channels=1).a.shape == (3, 1, 8, 8)


def test_side_by_side_grayscale_and_errors(tmp_path: Path) -> None:
    save(tmp_path / "g" / "x.png", np.full((6, 10), 7, dtype=np.uint8))
    gray = load_side_by_side(tmp_path / "g")
    assert gray.a.shape == (1, 1, 6, 5)
    save(tmp_path / "odd" / "ok.png", side_by_side(1, 2))
    save(tmp_path / "odd" / "bad.png", np.zeros((8, 15, 3), dtype=np.uint8))
    with pytest.raises(DataError, match=r"even width.*bad\.png"):
        load_side_by_side(tmp_path / "odd")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_side_by_side(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        load_side_by_side(tmp_path / "missing")
    save(tmp_path / "mixed" / "a.png", side_by_side(1, 2))
    save(tmp_path / "mixed" / "b.png", side_by_side(1, 2, h=10))
    with pytest.raises(DataError, match="different sizes"):
        load_side_by_side(tmp_path / "mixed")
    assert load_side_by_side(tmp_path / "mixed", size=(8, 8)).a.shape == (2, 3, 8, 8)


def test_paired_folders_match_by_name(tmp_path: Path) -> None:
    for i, name in enumerate(["c", "a", "sub/b"]):
        save(tmp_path / "A" / f"{name}.png", np.full((8, 8), 40 * i + 10, dtype=np.uint8))
        ext = "bmp" if i % 2 else "png"  # the extension may differ between the sides
        save(tmp_path / "B" / f"{name}.{ext}", np.full((16, 16, 3), 40 * i + 20, dtype=np.uint8))
    pairs = load_paired_folders(tmp_path / "A", tmp_path / "B")
    assert pairs.names == ["a", "c", "sub/b"]
    assert pairs.a.shape == (3, 1, 8, 8) and pairs.b.shape == (3, 3, 16, 16)  # sides may differ (SR)
    assert (pairs.b[:, 0, 0, 0].int() - pairs.a[:, 0, 0, 0].int()).tolist() == [10, 10, 10]  # aligned rows
    same = load_paired_folders(tmp_path / "A", tmp_path / "B", size=(4, 4), channels=3)
    assert same.a.shape == same.b.shape == (3, 3, 4, 4)


def test_paired_folders_errors(tmp_path: Path) -> None:
    for name in ("x", "y", "only_a"):
        save(tmp_path / "A" / f"{name}.png", np.zeros((4, 4), dtype=np.uint8))
    for name in ("x", "y", "only_b"):
        save(tmp_path / "B" / f"{name}.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match=r"only_a.*only_b"):
        load_paired_folders(tmp_path / "A", tmp_path / "B")
    (tmp_path / "A" / "only_a.png").unlink()
    (tmp_path / "B" / "only_b.png").unlink()
    save(tmp_path / "A" / "x.bmp", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match="share the name 'x'"):
        load_paired_folders(tmp_path / "A", tmp_path / "B")
    (tmp_path / "A" / "x.bmp").unlink()
    (tmp_path / "B" / "y.png").write_bytes(b"not a png at all")
    with pytest.warns(UserWarning, match="skipped 1"):
        pairs = load_paired_folders(tmp_path / "A", tmp_path / "B")
    assert pairs.names == ["x"] and pairs.skipped == 1 and pairs.a.shape[0] == pairs.b.shape[0] == 1
    (tmp_path / "E").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_paired_folders(tmp_path / "A", tmp_path / "E")


def test_unpaired_folders(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / "A" / f"{i}.png", np.full((8, 8), i, dtype=np.uint8))
    for i in range(5):
        save(tmp_path / "B" / "cls" / f"{i}.png", np.full((12, 10, 3), i, dtype=np.uint8))
    sets = load_unpaired_folders(tmp_path / "A", tmp_path / "B", size=(8, 8))
    assert sets.a.shape == (3, 1, 8, 8) and sets.b.shape == (5, 3, 8, 8) and sets.skipped == 0
    assert load_unpaired_folders(tmp_path / "A", tmp_path / "B", size=(8, 8), channels=3).a.shape == (3, 3, 8, 8)
    (tmp_path / "E").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_unpaired_folders(tmp_path / "A", tmp_path / "E")
