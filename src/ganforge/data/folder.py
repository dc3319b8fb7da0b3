"""Any folder of images (png/jpg/webp/bmp, nested, any size and mode) as one in-memory uint8 tensor.

Two passes over the files, both in a thread pool (PIL releases the GIL while decoding):
1. probe: open each file's header only. Zero-byte, unrecognised and oversized files (decompression bombs) are
   refused here, before any pixel is decoded; the headers decide the channel count and, when no size is
   given, whether all images share one size, so a mixed-size folder fails at once instead of after decoding.
2. decode: load, convert to the target mode, resize, copy into one (N, C, H, W) uint8 tensor.
Files that fail either pass (corrupt, truncated, too large, unreadable) are skipped and reported in ONE
warning at the end.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from tqdm import tqdm

from ganforge.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")  # matched case-insensitively
RESIZE_MODES = ("resize", "center-crop", "pad")
PROGRESS_MIN_FILES = 500  # show tqdm bars only for folders bigger than this
NAMED_SKIPS = 3  # how many skipped files the warning names
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
RESAMPLE = Image.Resampling.BICUBIC  # antialiased when shrinking, like ganforge.data.base.resize_images

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_WIDE_GRAY_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}  # 16-bit PNGs open as one of these
# EXIF orientation -> the transpose that makes the image upright (the table ImageOps.exif_transpose uses).
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What PIL and its plugins raise on bad files. Anything else is a bug and propagates.
_DECODE_ERRORS = (
    OSError,  # truncated data, unidentified format (UnidentifiedImageError), unreadable file
    ValueError, TypeError, SyntaxError, EOFError, IndexError, struct.error,  # malformed headers in plugins
    Image.DecompressionBombError, Image.DecompressionBombWarning,  # the warning is raised as an error below
)

T = TypeVar("T")


@dataclass
class FolderImages:
    images: Tensor  # uint8 (N, C, H, W) in [0, 255], files in sorted path order
    labels: Tensor | None  # int64 (N,) index into class_names when images sit in class subfolders, else None
    class_names: list[str]  # sorted first-level subfolder names used as classes ([] when unlabelled)
    skipped: int  # files that could not be read (corrupt, truncated, zero-byte, too large, unreadable)


@dataclass(frozen=True)
class _Header:
    size: tuple[int, int]  # (H, W) once the EXIF orientation is applied
    gray: bool  # a grayscale mode (1, L, LA, 16-bit) or a palette of grays only


class _Skip(Exception):
    """A file that cannot be used; the message is the short reason shown to the user."""


def load_image_folder(
    root: str | Path,
    *,
    channels: int | None = None,  # 1 (L), 3 (RGB), 4 (RGBA); None: 1 if every file is grayscale, else 3
    size: tuple[int, int] | None = None,  # (H, W) output size; None: all images must already share one size
    resize: str = "resize",  # how images reach `size`: "resize" (stretch), "center-crop" or "pad" (black)
    max_pixels: int = 89_478_485,  # refuse larger images unread (PIL's default decompression-bomb limit)
    workers: int = 2,  # decoding threads
) -> FolderImages:
    """Load every image under root (recursively) into memory.

    Modes are converted properly: palette images through their palette, 16-bit grayscale scaled to 8 bits,
    CMYK/YCbCr to RGB, EXIF orientation applied. Transparent images are composited on black unless
    channels=4: the colour under alpha=0 is arbitrary (often leftover or noise) and a GAN would learn it, and
    black is 0 in uint8 and -1 in the generator's tanh range, the natural "empty" value. Resizing uses PIL's
    antialiased bicubic filter (with premultiplied alpha for RGBA).

    Grayscale is judged from each file's mode (L, LA, 1, 16-bit, or a palette of grays), not its pixels:
    WebP has no gray mode, so gray WebP files count as colour; pass channels=1 for them.

    Labels: when every image sits inside a first-level subfolder of root, that subfolder is its class
    (classes sorted by name, decided by the folder structure, not by which files turned out readable).

    PIL's own limit (PIL.Image.MAX_IMAGE_PIXELS) applies too: images above it are refused whatever
    max_pixels says; raise both to load bigger images.
    """
    _check_args(channels, size, resize, max_pixels)
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images")
    files = _list_images(root)
    if not files:
        looked = ", ".join(IMAGE_EXTENSIONS)
        raise DataError(f"no images found under {root} (looked for {looked}, recursively)")
    class_names, all_labels = _classes(root, files)

    skips: list[tuple[Path, str]] = []
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, workers)) as pool:
        # PIL warns (instead of raising) for images between its limit and twice it: refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        headers = _map(pool, partial(_probe, max_pixels=max_pixels), files, "scanning images")
        keep = _sift(files, headers, skips)
        if not keep:
            raise DataError(_all_unreadable(root, skips))
        good = [headers[i] for i in keep]
        mode = CHANNEL_MODES[channels] if channels else ("L" if all(h.gray for h in good) else "RGB")
        out_size = size if size is not None else _common_size(root, good)
        decode = partial(_decode, mode=mode, size=out_size, resize=resize, max_pixels=max_pixels)
        arrays = _map(pool, decode, [files[i] for i in keep], "decoding images")
        kept = _sift([files[i] for i in keep], arrays, skips)
        if not kept:
            raise DataError(_all_unreadable(root, skips))

    images = torch.empty((len(kept), len(mode), *out_size), dtype=torch.uint8)  # (N, C, H, W)
    for row, j in enumerate(kept):
        pixels = torch.from_numpy(arrays[j])  # (H, W) or (H, W, C)
        images[row] = pixels.reshape(*out_size, -1).permute(2, 0, 1)
        arrays[j] = None  # free as we go: peak memory stays near one copy of the dataset
    labels = None
    if all_labels is not None:
        labels = all_labels[torch.tensor([keep[j] for j in kept], dtype=torch.long)]
    if skips:
        warnings.warn(_skip_message(root, skips, len(files)), stacklevel=2)
    return FolderImages(images, labels, class_names, len(skips))


def _check_args(channels, size, resize, max_pixels) -> None:
    if channels is not None and channels not in CHANNEL_MODES:
        raise DataError(f"channels must be 1, 3, 4 or None, got {channels}")
    if size is not None and (len(size) != 2 or any(not isinstance(s, int) or s <= 0 for s in size)):
        raise DataError(f"image size must be (H, W) of positive ints, got {size}")
    if resize not in RESIZE_MODES:
        raise DataError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if max_pixels <= 0:
        raise DataError(f"max_pixels must be positive, got {max_pixels}")


def _list_images(root: Path) -> list[Path]:
    """Image files under root in sorted path order; hidden files and folders (.DS_Store, ._x.png) are left
    out; symlinked folders are followed once each."""

    def fail(err: OSError) -> None:
        raise DataError(f"cannot list {err.filename}: {err.strerror}")

    found: list[Path] = []
    seen: set[str] = set()
    for folder, subfolders, names in os.walk(root, onerror=fail, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop or a second link to the same folder
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found += [Path(folder, n) for n in names
                  if not n.startswith(".") and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def _classes(root: Path, files: list[Path]) -> tuple[list[str], Tensor | None]:
    parts = [f.relative_to(root).parts for f in files]
    if any(len(p) < 2 for p in parts):  # some image sits directly in root: no class structure
        return [], None
    names = sorted({p[0] for p in parts})
    index = {name: i for i, name in enumerate(names)}
    return names, torch.tensor([index[p[0]] for p in parts], dtype=torch.long)


def _map(pool: ThreadPoolExecutor, fn: Callable[[Path], T], items: Sequence[Path], desc: str) -> list[T]:
    results = pool.map(fn, items)
    return list(tqdm(results, total=len(items), desc=desc, unit="img", leave=False,
                     disable=len(items) <= PROGRESS_MIN_FILES))


def _sift(files: Sequence[Path], results: list, skips: list[tuple[Path, str]]) -> list[int]:
    """Indices of the results that worked; the others are appended to skips as (file, reason)."""
    keep = []
    for i, (path, result) in enumerate(zip(files, results, strict=True)):
        if isinstance(result, _Skip):
            skips.append((path, str(result)))
        else:
            keep.append(i)
    return keep


def _open(path: Path, max_pixels: int) -> Image.Image:
    """Open a file's header; refuse empty, non-regular and oversized files before any decoding."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise _Skip("not a regular file")
    if info.st_size == 0:
        raise _Skip("empty file")
    img = Image.open(path)
    w, h = img.size
    if w * h > max_pixels:
        img.close()
        raise _Skip(f"too large: {w}x{h} pixels > max_pixels={max_pixels}")
    return img


def _reason(err: BaseException) -> str:
    if isinstance(err, UnidentifiedImageError):
        return "not a readable image"
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "too large (PIL decompression-bomb limit)"
    return f"{type(err).__name__}: {err}"


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))  # 0x0112: the EXIF Orientation tag
    except _DECODE_ERRORS:  # a broken EXIF block does not make the pixels unusable
        return 1


def _is_gray(img: Image.Image) -> bool:
    if img.mode in _GRAY_MODES:
        return True
    if img.mode in ("P", "PA"):
        palette = img.getpalette("RGB") or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette), 3))
    return False


def _probe(path: Path, *, max_pixels: int) -> _Header | _Skip:
    try:
        with _open(path, max_pixels) as img:
            w, h = img.size
            if _orientation(img) in (5, 6, 7, 8):  # rotated by 90 degrees
                w, h = h, w
            return _Header((h, w), _is_gray(img))
    except _Skip as skip:
        return skip
    except _DECODE_ERRORS as err:
        return _Skip(_reason(err))


def _decode(path: Path, *, mode: str, size: tuple[int, int], resize: str,
            max_pixels: int) -> np.ndarray | _Skip:
    """One image as a uint8 array, (H, W) for mode L or (H, W, C)."""
    try:
        with _open(path, max_pixels) as src:
            orientation = _orientation(src)  # read before load(), exactly as in _probe
            src.load()
            img = _normalize(src)
            if orientation in _ORIENT:
                img = img.transpose(_ORIENT[orientation])
            img = _fit(img, size, resize)
            img = _to_mode(img, mode)
            return np.array(img)  # a writable copy: torch.from_numpy refuses read-only arrays
    except _Skip as skip:
        return skip
    except _DECODE_ERRORS as err:
        return _Skip(_reason(err))


def _normalize(img: Image.Image) -> Image.Image:
    """Any PIL mode -> L, LA, RGB or RGBA, keeping transparency as alpha."""
    mode = img.mode
    if mode in _WIDE_GRAY_MODES:  # 16-bit grayscale: PIL's convert("L") would clip at 255, so scale instead
        wide = np.asarray(img).astype(np.float64)
        return Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8))
    if mode in ("P", "PA"):  # through the palette; a palette of grays stays one channel
        alpha = mode == "PA" or "transparency" in img.info
        rgb = img.convert("RGBA" if alpha else "RGB")
        if not _is_gray(img):
            return rgb
        return rgb.convert("LA" if alpha else "L")  # exact for grays: the luma weights sum to one
    if mode in ("L", "RGB") and "transparency" in img.info:  # a tRNS colour key becomes an alpha channel
        return img.convert("RGBA" if mode == "RGB" else "LA")
    if mode in ("L", "LA", "RGB", "RGBA"):
        return img
    if mode in ("1", "La"):
        return img.convert("LA" if mode == "La" else "L")
    if mode == "RGBa":
        return img.convert("RGBA")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...


def _fit(img: Image.Image, size: tuple[int, int], resize: str) -> Image.Image:
    """Bring img to size (H, W). PIL premultiplies alpha while resampling LA/RGBA images."""
    h, w = size
    if img.size == (w, h):
        return img
    if resize == "center-crop":  # scale the short side to fit, then crop the centre
        return ImageOps.fit(img, (w, h), method=RESAMPLE)
    if resize == "pad":  # scale the long side to fit, then pad with black (transparent for alpha modes)
        return ImageOps.pad(img, (w, h), method=RESAMPLE, color=0)
    return img.resize((w, h), RESAMPLE)  # "resize": stretch to exactly H x W


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    """L/LA/RGB/RGBA -> mode (L, RGB or RGBA); alpha is composited on black unless mode keeps it."""
    if img.mode == mode:
        return img
    if mode == "RGBA":
        return img.convert("RGBA")
    if img.mode in ("LA", "RGBA"):
        opaque = img.convert(img.mode[:-1])
        black = Image.new(opaque.mode, img.size, 0)
        black.paste(opaque, mask=img.getchannel("A"))
        img = black
    return img.convert(mode)  # RGB -> L uses ITU-R 601 luma; L -> RGB repeats the channel


def _common_size(root: Path, headers: list[_Header]) -> tuple[int, int]:
    sizes = Counter(h.size for h in headers)
    if len(sizes) > 1:
        common = ", ".join(f"{h}x{w} ({n} files)" for (h, w), n in sizes.most_common(3))
        more = f" and {len(sizes) - 3} other sizes" if len(sizes) > 3 else ""
        raise DataError(f"images under {root} have {len(sizes)} different sizes (HxW: {common}{more}); "
                        "pass --image-size H W to resize them to one size")
    return next(iter(sizes))


def _named(root: Path, skips: list[tuple[Path, str]]) -> str:
    named = "; ".join(f"{p.relative_to(root)} ({reason})" for p, reason in skips[:NAMED_SKIPS])
    return named + (f"; and {len(skips) - NAMED_SKIPS} more" if len(skips) > NAMED_SKIPS else "")


def _all_unreadable(root: Path, skips: list[tuple[Path, str]]) -> str:
    return f"none of the {len(skips)} image files under {root} could be read: {_named(root, skips)}"


def _skip_message(root: Path, skips: list[tuple[Path, str]], total: int) -> str:
    return (f"skipped {len(skips)} of {total} image files under {root} that could not be read: "
            f"{_named(root, skips)}")
