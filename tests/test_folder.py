"""load_image_folder: discovery, modes, sizes, labels and bad files, on tiny images written with PIL."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import folder
from ganforge.data.folder import load_image_folder
from ganforge.errors import DataError


def save(path: Path, img: Image.Image | np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **kwargs)
    return path


def solid(h: int, w: int, color, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (w, h), color)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height but holds no pixel data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def load_quiet(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected from a clean folder
        return load_image_folder(root, **kwargs)


def test_recursive_sorted_and_filtered(tmp_path):
    save(tmp_path / "b.png", solid(4, 4, 20, "L"))
    save(tmp_path / "a" / "deep" / "x.PNG", solid(4, 4, 10, "L"))  # upper-case extension counts
    save(tmp_path / "c.bmp", solid(4, 4, 30, "L"))
    save(tmp_path / "d.webp", solid(4, 4, 40, "L"), lossless=True)
    save(tmp_path / ".hidden.png", solid(4, 4, 99, "L"))  # hidden files are left out
    (tmp_path / "notes.txt").write_text("not an image")
    out = load_quiet(tmp_path, channels=1)  # WebP stores gray as RGB, so it would count as colour
    assert out.images.dtype == torch.uint8 and out.images.shape == (4, 1, 4, 4)
    assert out.images[:, 0, 0, 0].tolist() == [10, 20, 30, 40]  # a/deep/x, b, c, d
    assert out.labels is None and out.class_names == [] and out.skipped == 0


def test_channels_inferred(tmp_path):
    save(tmp_path / "g1.png", solid(3, 3, 7, "L"))
    save(tmp_path / "g2.png", solid(3, 3, 9, "1"))
    assert load_quiet(tmp_path).images.shape[1] == 1  # all grayscale -> one channel
    save(tmp_path / "rgb.png", solid(3, 3, (200, 100, 50)))
    out = load_quiet(tmp_path)
    assert out.images.shape == (3, 3, 3, 3)
    assert out.images[0, :, 0, 0].tolist() == [7, 7, 7]  # gray repeated into RGB
    assert out.images[2, :, 0, 0].tolist() == [200, 100, 50]


def test_modes_converted(tmp_path):
    save(tmp_path / "0_rgba.png", solid(2, 2, (200, 100, 50, 128), "RGBA"))
    pal = Image.new("P", (2, 2), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    save(tmp_path / "1_palette.png", pal)
    save(tmp_path / "2_gray16.png", np.full((2, 2), 40_000, dtype=np.uint16))
    save(tmp_path / "3_la.png", solid(2, 2, (100, 0), "LA"))  # fully transparent -> black
    save(tmp_path / "4_cmyk.jpg", solid(2, 2, (0, 255, 255, 0), "CMYK"), quality=100)  # red
    out = load_quiet(tmp_path, channels=3)
    px = out.images[:, :, 0, 0].tolist()
    assert px[0] == [100, 50, 25]  # composited on black: colour * alpha / 255
    assert px[1] == [10, 200, 30]  # through the palette
    assert px[2] == [156, 156, 156]  # 16-bit scaled to 8-bit (40000 / 257), not clipped at 255
    assert px[3] == [0, 0, 0]
    assert np.allclose(px[4], [255, 0, 0], atol=8)
    rgba = load_quiet(tmp_path, channels=4).images
    assert rgba.shape[1] == 4 and rgba[0, :, 0, 0].tolist() == [200, 100, 50, 128]  # straight alpha kept
    assert rgba[1, 3, 0, 0] == 255  # opaque images get alpha 255
    gray = load_quiet(tmp_path, channels=1).images
    assert gray.shape[1] == 1 and gray[1, 0, 0, 0] == round(0.299 * 10 + 0.587 * 200 + 0.114 * 30)


def test_palette_with_transparency_and_gray_palette(tmp_path):
    pal = Image.new("P", (2, 2), 1)
    pal.putpalette([0, 0, 0, 250, 250, 250] + [0] * 762)
    pal.info["transparency"] = 1  # palette index 1 is fully transparent
    save(tmp_path / "a.png", pal, transparency=1)
    gray_pal = Image.new("P", (2, 2), 2)
    gray_pal.putpalette([i for v in range(256) for i in (v, v, v)])
    save(tmp_path / "b.png", gray_pal)
    out = load_quiet(tmp_path)
    assert out.images.shape[1] == 1  # both palettes hold only grays
    assert out.images[:, 0, 0, 0].tolist() == [0, 2]  # transparent -> black


def test_non_square_resize_of_mixed_sizes(tmp_path):
    save(tmp_path / "a.png", solid(5, 9, (10, 20, 30)))
    save(tmp_path / "b.png", solid(12, 7, (40, 50, 60)))
    out = load_quiet(tmp_path, size=(6, 10))
    assert out.images.shape == (2, 3, 6, 10)
    assert (out.images[0] == torch.tensor([10, 20, 30]).view(3, 1, 1)).all()  # flat colours stay flat
    assert (out.images[1] == torch.tensor([40, 50, 60]).view(3, 1, 1)).all()


def test_mixed_sizes_need_a_size(tmp_path):
    save(tmp_path / "a.png", solid(4, 4, 0))
    save(tmp_path / "b.png", solid(4, 6, 0))
    with pytest.raises(DataError, match="--image-size"):
        load_image_folder(tmp_path)


def test_center_crop_and_pad_geometry(tmp_path):
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[:] = (0, 0, 255)
    wide[:, 4:12] = (255, 0, 0)  # the centre 8x8 square is red, the sides blue
    save(tmp_path / "wide.png", wide)
    crop = load_quiet(tmp_path, size=(4, 4), resize="center-crop").images[0]
    assert crop.shape == (3, 4, 4)
    assert (crop[0, :, 1:3] == 255).all() and (crop[2, :, 1:3] == 0).all()  # centre columns: pure red
    assert (crop[2] < 40).all()  # at most a little filter bleed of blue at the edges
    stretched = load_quiet(tmp_path, size=(4, 4), resize="resize").images[0]
    assert (stretched[2, :, 0] > 200).all()  # stretching keeps the blue sides
    pad = load_quiet(tmp_path, size=(4, 4), resize="pad").images[0]
    assert (pad[:, 0] == 0).all() and (pad[:, 3] == 0).all()  # 16x8 -> 4x2 centred: black rows above/below
    assert (pad[2, 1:3, 0] > 200).all()


def test_exif_orientation_applied(tmp_path):
    img = np.zeros((2, 4, 3), np.uint8)
    img[0, 0] = 255  # marks the stored top-left pixel
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    save(tmp_path / "o.png", img, exif=exif)
    out = load_quiet(tmp_path).images[0]
    assert out.shape == (3, 4, 2)
    assert out[0, 0, 1] == 255 and out[0].sum() == 255  # the marked pixel is now top-right


def test_labels_from_class_subfolders(tmp_path):
    save(tmp_path / "dog" / "1.png", solid(2, 2, 1, "L"))
    save(tmp_path / "cat" / "2.png", solid(2, 2, 2, "L"))
    save(tmp_path / "dog" / "nested" / "3.png", solid(2, 2, 3, "L"))
    save(tmp_path / "ant" / "4.png", solid(2, 2, 4, "L"))
    out = load_quiet(tmp_path)
    assert out.class_names == ["ant", "cat", "dog"]
    assert out.labels.dtype == torch.long
    assert out.labels.tolist() == [0, 1, 2, 2]  # ant/4, cat/2, dog/1, dog/nested/3
    assert out.images[:, 0, 0, 0].tolist() == [4, 2, 1, 3]


def test_bad_files_skipped_with_one_warning(tmp_path):
    rng = np.random.default_rng(0)
    save(tmp_path / "good" / "a.png", solid(8, 8, (1, 2, 3)))
    save(tmp_path / "good" / "b.png", solid(8, 8, (4, 5, 6)))
    (tmp_path / "bad" / "random.png").parent.mkdir()
    (tmp_path / "bad" / "random.png").write_bytes(rng.bytes(300))
    noisy = save(tmp_path / "full.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = noisy.read_bytes()
    noisy.unlink()
    (tmp_path / "bad" / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "bad" / "zero.png").write_bytes(b"")
    png_header_only(tmp_path / "bad" / "bomb.png", 100_000, 100_000)  # PIL refuses this at open
    png_header_only(tmp_path / "bad" / "warned.png", 10_000, 10_000)  # PIL only warns: treated as an error
    save(tmp_path / "bad" / "big.png", solid(20, 20, 0))  # over max_pixels below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = load_image_folder(tmp_path, max_pixels=300)
    assert out.images.shape == (2, 3, 8, 8) and out.skipped == 6
    assert out.images[:, :, 0, 0].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert out.class_names == ["bad", "good"] and out.labels.tolist() == [1, 1]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 6 of 8" in message and "and 3 more" in message
    assert "bad/big.png (too large" in message and "bad/bomb.png (too large" in message


def test_labels_follow_structure_not_readability(tmp_path):
    save(tmp_path / "a" / "1.png", solid(2, 2, 1, "L"))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "broken.png").write_bytes(b"nope")
    (tmp_path / "c").mkdir()
    save(tmp_path / "c" / "2.png", solid(2, 2, 2, "L"))
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        out = load_image_folder(tmp_path)
    assert out.class_names == ["a", "b", "c"] and out.labels.tolist() == [0, 2]


def test_bomb_refused_even_under_a_raised_max_pixels(tmp_path):
    save(tmp_path / "ok.png", solid(2, 2, 0, "L"))
    png_header_only(tmp_path / "warned.png", 10_000, 10_000)  # above PIL's own limit, below ours
    with pytest.warns(UserWarning, match=r"warned\.png \(too large \(PIL"):
        out = load_image_folder(tmp_path, max_pixels=10**9)
    assert out.skipped == 1


def test_missing_empty_and_unreadable_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(tmp_path / "file.png")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "readme.md").write_text("no images here")
    with pytest.raises(DataError, match="no images found"):
        load_image_folder(empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"garbage")
    (broken / "b.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of the 2 image files .* read: a\.png .*b\.jpg \(empty"):
        load_image_folder(broken)


def test_bad_arguments(tmp_path):
    save(tmp_path / "a.png", solid(2, 2, 0, "L"))
    for kwargs in ({"channels": 2}, {"size": (0, 4)}, {"size": (4,)}, {"resize": "squash"}):
        with pytest.raises(DataError):
            load_image_folder(tmp_path, **kwargs)


def test_worker_count_does_not_change_result(tmp_path, monkeypatch):
    monkeypatch.setattr(folder, "PROGRESS_MIN_FILES", 0)  # exercise the tqdm path too
    rng = np.random.default_rng(1)
    for i in range(6):
        save(tmp_path / f"{i}.png", rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    one = load_quiet(tmp_path, workers=1, size=(4, 4))
    three = load_quiet(tmp_path, workers=3, size=(4, 4))
    assert torch.equal(one.images, three.images)
