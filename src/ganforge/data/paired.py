"""Image pairs (pix2pix, SR from folders) and unpaired image sets (CycleGAN), as in-memory uint8 tensors.

Three layouts:
- load_side_by_side(root): each file holds A and B next to each other (the pix2pix datasets: facades, maps,
  edges2shoes); the left half of the width is A, the right half B.
- load_paired_folders(root_a, root_b): A and B in two folders, paired by relative path without extension
  (a/x/01.jpg <-> b/x/01.png).
- load_unpaired_folders(root_a, root_b): two independent image sets of any sizes (CycleGAN's trainA/trainB).

Decoding reuses ganforge.data.folder (mode conversion, EXIF orientation, decompression-bomb checks, resize
modes), so images come out exactly as load_image_folder would give them. A pair whose file (or either file)
cannot be read is dropped whole, so row i of `a` always belongs with row i of `b`; the drops are reported in
one warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganforge.data import folder
from ganforge.data.folder import CHANNEL_MODES, IMAGE_EXTENSIONS, load_image_folder
from ganforge.errors import DataError

__all__ = ["PairedImages", "UnpairedImages", "load_paired_folders", "load_side_by_side", "load_unpaired_folders"]

NAMED = 3  # how many offending files or names an error message lists


@dataclass
class PairedImages:
    a: Tensor  # uint8 (N, C_a, H_a, W_a): the inputs (pix2pix's A)
    b: Tensor  # uint8 (N, C_b, H_b, W_b): row i is the counterpart of a[i]
    names: list[str]  # the pair's relative path without extension, sorted; one per row
    skipped: int  # pairs dropped because a file could not be read


@dataclass
class UnpairedImages:
    a: Tensor  # uint8 (N_a, C_a, H_a, W_a)
    b: Tensor  # uint8 (N_b, C_b, H_b, W_b); N_b need not equal N_a
    skipped: int  # unreadable files, both folders together


def load_side_by_side(
    root: str | Path,
    *,
    size: tuple[int, int] | None = None,  # (H, W) of each half; None: all files must share one size
    channels: int | None = None,  # 1, 3 or 4 for both halves; None: 1 if every file is grayscale, else 3
    resize: str = "resize",  # "resize", "center-crop" or "pad", applied to each half (see folder.py)
    max_pixels: int = 89_478_485,
    workers: int = 2,
) -> PairedImages:
    """Split every image under root at the middle of its width: left half -> a, right half -> b.

    The split happens before any resizing, so no filter blurs A into B across the seam. Widths must be even
    (an odd width has no middle: the file is probably not an A|B pair); the error names the files.
    """
    folder._check_args(channels, size, resize, max_pixels)
    root = _existing(root)
    files = _images(root)
    with _pool(workers) as pool:
        headers = _probe(pool, files, max_pixels)
        skips: list[tuple[Path, str]] = []
        keep = folder._sift(files, headers, skips)
        if not keep:
            raise DataError(folder._all_unreadable(root, skips))
        good = [headers[i] for i in keep]
        odd = [(files[i], headers[i].size) for i in keep if headers[i].size[1] % 2]
        if odd:
            named = ", ".join(f"{p.relative_to(root)} ({h}x{w})" for p, (h, w) in odd[:NAMED])
            more = f" and {len(odd) - NAMED} more" if len(odd) > NAMED else ""
            raise DataError(f"side-by-side A|B images need an even width to split in the middle; "
                            f"{len(odd)} files under {root} have an odd one (HxW): {named}{more}")
        if size is None:
            h, w = folder._common_size(root, good)
            size = (h, w // 2)
        mode = _mode(channels, good)
        decode = partial(_decode, mode=mode, size=size, resize=resize, max_pixels=max_pixels, split=True)
        kept_files = [files[i] for i in keep]
        halves = folder._map(pool, decode, kept_files, "decoding pairs")
        rows = folder._sift(kept_files, halves, skips)
    if not rows:
        raise DataError(folder._all_unreadable(root, skips))
    _warn_skips(skips, len(files))
    a = _stack([halves[j][0] for j in rows], size)
    b = _stack([halves[j][1] for j in rows], size)
    names = [_key(root, kept_files[j]) for j in rows]
    return PairedImages(a, b, names, len(skips))


def load_paired_folders(
    root_a: str | Path,
    root_b: str | Path,
    *,
    size: tuple[int, int] | None = None,  # (H, W) for both sides; None: each folder must share one size
    channels: int | None = None,  # 1, 3 or 4 for both; None: decided per folder (1 if all grayscale, else 3)
    resize: str = "resize",
    max_pixels: int = 89_478_485,
    workers: int = 2,
) -> PairedImages:
    """Pair root_a/<name>.* with root_b/<name>.* (relative paths, extension ignored, case kept).

    Every file must have a partner: a name on one side only is an error listing the unmatched names, since a
    silently smaller dataset usually means a wrong folder or a renaming slip. With size=None the two sides
    may differ in size (low-res/high-res folders for super-resolution).
    """
    folder._check_args(channels, size, resize, max_pixels)
    root_a, root_b = _existing(root_a), _existing(root_b)
    by_a, by_b = _by_name(root_a), _by_name(root_b)
    only_a, only_b = sorted(by_a.keys() - by_b.keys()), sorted(by_b.keys() - by_a.keys())
    if only_a or only_b:
        raise DataError(f"{root_a} and {root_b} must hold the same file names (extension aside): "
                        + "; ".join(part for part in (_unmatched(root_a, only_a), _unmatched(root_b, only_b)) if part))
    names = sorted(by_a)
    sides = []  # per side: (arrays or _Skip per name, output size)
    skips: list[tuple[Path, str]] = []
    with _pool(workers) as pool:
        for root, by in ((root_a, by_a), (root_b, by_b)):
            files = [by[n] for n in names]
            headers = _probe(pool, files, max_pixels)
            good = [hd for hd in headers if not isinstance(hd, folder._Skip)]
            if not good:
                raise DataError(folder._all_unreadable(root, [(f, str(hd)) for f, hd in zip(files, headers)]))
            out_size = size if size is not None else folder._common_size(root, good)
            decode = partial(_decode, mode=_mode(channels, good), size=out_size, resize=resize,
                             max_pixels=max_pixels, split=False)
            todo = [i for i, hd in enumerate(headers) if not isinstance(hd, folder._Skip)]
            arrays: list = list(headers)  # the _Skip entries stay; the others are replaced by decoded arrays
            for i, result in zip(todo, folder._map(pool, decode, [files[i] for i in todo], "decoding images")):
                arrays[i] = result
            skips += [(f, str(r)) for f, r in zip(files, arrays) if isinstance(r, folder._Skip)]
            sides.append((arrays, out_size))
    (arr_a, size_a), (arr_b, size_b) = sides
    rows = [i for i in range(len(names))
            if not isinstance(arr_a[i], folder._Skip) and not isinstance(arr_b[i], folder._Skip)]
    if not rows:
        raise DataError(f"no pair under {root_a} and {root_b} could be read: "
                        + "; ".join(f"{p} ({why})" for p, why in skips[:NAMED]))
    _warn_skips(skips, 2 * len(names))
    a = _stack([arr_a[i][0] for i in rows], size_a)
    b = _stack([arr_b[i][0] for i in rows], size_b)
    return PairedImages(a, b, [names[i] for i in rows], len(names) - len(rows))


def load_unpaired_folders(
    root_a: str | Path,
    root_b: str | Path,
    *,
    size: tuple[int, int] | None = None,  # (H, W) for both sets; None: each folder must share one size
    channels: int | None = None,  # None: decided per folder
    resize: str = "resize",
    max_pixels: int = 89_478_485,
    workers: int = 2,
) -> UnpairedImages:
    """Two independent image sets (CycleGAN): load_image_folder on each; class subfolders are ignored."""
    kwargs = dict(channels=channels, size=size, resize=resize, max_pixels=max_pixels, workers=workers)
    a, b = load_image_folder(root_a, **kwargs), load_image_folder(root_b, **kwargs)
    return UnpairedImages(a.images, b.images, a.skipped + b.skipped)


# --- helpers ---------------------------------------------------------------------------------------------


def _existing(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images")
    return root


def _images(root: Path) -> list[Path]:
    files = folder._list_images(root)
    if not files:
        raise DataError(f"no images found under {root} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)")
    return files


def _key(root: Path, path: Path) -> str:
    return os.path.splitext(path.relative_to(root).as_posix())[0]


def _by_name(root: Path) -> dict[str, Path]:
    by: dict[str, Path] = {}
    for path in _images(root):
        key = _key(root, path)
        if key in by:
            raise DataError(f"two files under {root} share the name {key!r}: {by[key].name} and {path.name}; "
                            "pairs are matched by name without extension, so keep only one")
        by[key] = path
    return by


def _unmatched(root: Path, names: list[str]) -> str:
    if not names:
        return ""
    more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
    return f"{len(names)} only in {root}: {', '.join(names[:NAMED])}{more}"


@contextmanager
def _pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A decoding thread pool; PIL's decompression-bomb warning becomes a refusal meanwhile (as in folder.py)."""
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, workers)) as pool:
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield pool


def _probe(pool: ThreadPoolExecutor, files: Sequence[Path], max_pixels: int) -> list:
    return folder._map(pool, partial(folder._probe, max_pixels=max_pixels), files, "scanning images")


def _mode(channels: int | None, headers: list) -> str:
    if channels:
        return CHANNEL_MODES[channels]
    return "L" if all(h.gray for h in headers) else "RGB"


def _decode(path: Path, *, mode: str, size: tuple[int, int], resize: str, max_pixels: int,
            split: bool) -> list[np.ndarray] | folder._Skip:
    """[A, B] halves (split) or [image], each a uint8 array (H, W) or (H, W, C), as folder._decode does it."""
    try:
        with folder._open(path, max_pixels) as src:
            orientation = folder._orientation(src)
            src.load()
            img = folder._normalize(src)
            if orientation in folder._ORIENT:
                img = img.transpose(folder._ORIENT[orientation])
            if split:
                w, h = img.size
                parts = [img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, w, h))]
            else:
                parts = [img]
            return [np.array(folder._to_mode(folder._fit(p, size, resize), mode)) for p in parts]
    except folder._Skip as skip:
        return skip
    except folder._DECODE_ERRORS as err:
        return folder._Skip(folder._reason(err))


def _stack(arrays: list[np.ndarray], size: tuple[int, int]) -> Tensor:
    out = torch.stack([torch.from_numpy(a).reshape(*size, -1) for a in arrays])  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)


def _warn_skips(skips: list[tuple[Path, str]], total: int) -> None:
    if skips:
        named = "; ".join(f"{p} ({why})" for p, why in skips[:NAMED])
        more = f"; and {len(skips) - NAMED} more" if len(skips) > NAMED else ""
        warnings.warn(f"skipped {len(skips)} of {total} image files that could not be read, and the pairs they "
                      f"belong to: {named}{more}", stacklevel=3)
