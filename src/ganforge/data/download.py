"""Checksummed, atomic downloads of dataset files (http, https and file:// URLs).

A file only ever appears at its destination complete and verified: it is streamed to a temporary file in the
same folder, hashed on the way, fsynced, checked, then renamed over the destination in one step. A cached
file is reused only when its checksum matches; a stale or corrupt one is fetched again.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from ganforge.errors import DataError
from ganforge.fileio import fsync_dir

ALLOWED_SCHEMES = ("http", "https", "file")
CHUNK_BYTES = 1 << 20  # read and hash 1 MiB at a time
USER_AGENT = "ganforge-downloader"  # some mirrors refuse Python's default user agent


def _new_hash(algorithm: str):
    try:
        # usedforsecurity=False: md5 is an integrity check here, and FIPS builds refuse it otherwise.
        return hashlib.new(algorithm, usedforsecurity=False)
    except ValueError:
        raise ValueError(f"unknown hash algorithm {algorithm!r}") from None


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes ("sha256", "md5", or any other hashlib name)."""
    h = _new_hash(algorithm)  # a bad name fails before the file is opened
    with open(path, "rb") as f:  # (hashlib.file_digest would do this, but needs Python 3.11)
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def _expected(sha256: str | None, md5: str | None) -> dict[str, str]:
    """The digests to check, {algorithm: lower-case hex}."""
    return {alg: d.strip().lower() for alg, d in (("sha256", sha256), ("md5", md5)) if d is not None}


def _mismatches(expected: dict[str, str], got: dict[str, str]) -> list[str]:
    return [f"expected {alg} {want}, got {got[alg]}" for alg, want in expected.items() if got[alg] != want]


def _cached_ok(dest: Path, expected: dict[str, str]) -> bool:
    """Whether dest already holds the right bytes. Without a checksum an existing file is reused: it can only
    have been written complete (atomic rename), but its content cannot be checked."""
    if not dest.is_file():
        return False
    if not expected:
        return True
    return not _mismatches(expected, {alg: file_digest(dest, alg) for alg in expected})


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,  # expected hex digest; checked on the cached file and on the download
    md5: str | None = None,  # the same with md5 (what torchvision publishes); both are checked when given
    progress: bool = True,  # a tqdm bar on stderr when the server sends the size
    timeout: float = 60.0,  # seconds for the connection and for each read
) -> Path:
    """Fetch url to dest unless dest already holds the right bytes; return dest.

    Raises DataError naming the URL and the reason (HTTP status, timeout, refused connection, short read) or,
    on a checksum mismatch, the file and both digests. No partial file is ever left behind.
    """
    dest = Path(dest)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise DataError(f"cannot download {url}: only http, https and file:// URLs are allowed")
    expected = _expected(sha256, md5)
    if dest.is_dir():
        raise DataError(f"cannot download {url} to {dest}: it is a folder")
    if _cached_ok(dest, expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A file that fails its checksum is never left where other code could trust it.
    dest.unlink(missing_ok=True)

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, dest.name, sorted(expected), progress, timeout)
            out.flush()
            os.fsync(out.fileno())
        bad = _mismatches(expected, got)
        if bad:
            raise DataError(f"checksum mismatch for {dest.name} downloaded from {url}: {'; '.join(bad)}")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)
    return dest


def _stream(url: str, out, name: str, algorithms: list[str], progress: bool,
            timeout: float) -> dict[str, str]:
    """Copy the response body to out, hashing it; return {algorithm: hex digest}."""
    hashes = {alg: _new_hash(alg) for alg in algorithms}
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                      disable=not progress or total is None, leave=False) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        err.close()
        raise DataError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DataError(f"cannot download {url}: {err.reason}") from None
    except TimeoutError:
        raise DataError(f"cannot download {url}: timed out after {timeout:g} s") from None
    except http.client.IncompleteRead as err:
        raise DataError(f"cannot download {url}: connection closed early ({len(err.partial)} bytes "
                        "in the last read)") from None
    except (http.client.HTTPException, OSError) as err:
        raise DataError(f"cannot download {url}: {err}") from None
    if total is not None and received != total:
        raise DataError(f"cannot download {url}: connection closed early (got {received} of {total} bytes)")
    return {alg: h.hexdigest() for alg, h in hashes.items()}


def extract_gz(path: Path, dest: Path | None = None) -> Path:
    """Decompress a .gz file (the MNIST mirrors ship them) next to it, or to dest; return the output path.

    Written to a temporary file and renamed, so a truncated archive leaves nothing half-written; it raises
    DataError naming the file.
    """
    path = Path(path)
    if dest is None:
        if path.suffix != ".gz":
            raise DataError(f"{path} does not end in .gz; pass the output path")
        dest = path.with_suffix("")
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK_BYTES)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a truncated stream is EOFError
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot decompress {path}: {err}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
