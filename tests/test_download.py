"""download / file_digest / extract_gz against a local http.server on 127.0.0.1 (no other host contacted)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from ganforge.data.download import download, extract_gz, file_digest
from ganforge.errors import DataError

PAYLOAD = bytes(range(256)) * 40  # 10 KiB
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the test's folder, counts requests, and has two misbehaving paths."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path == "/slow":  # answers nothing before the client gives up
            time.sleep(0.5)
            self.close_connection = True
            return
        if self.path == "/short":  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "data.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    httpd.daemon_threads = True
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_download_verifies_and_caches(server, tmp_path):
    httpd, base = server
    dest = tmp_path / "out" / "data.bin"  # the folder is created
    assert download(f"{base}/data.bin", dest, sha256=SHA256, progress=True) == dest
    assert dest.read_bytes() == PAYLOAD and leftovers(dest.parent) == []
    assert len(httpd.requests) == 1
    download(f"{base}/data.bin", dest, sha256=SHA256.upper(), md5=MD5)  # cache hit: no request
    assert len(httpd.requests) == 1


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    _, base = server
    dest = tmp_path / "data.bin"
    expected = f"checksum mismatch for data.bin .*expected md5 {'0' * 32}, got {MD5}"
    with pytest.raises(DataError, match=expected):
        download(f"{base}/data.bin", dest, md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "served"]


def test_corrupt_cache_is_downloaded_again(server, tmp_path):
    httpd, base = server
    dest = tmp_path / "data.bin"
    dest.write_bytes(PAYLOAD[:-1] + b"!")
    download(f"{base}/data.bin", dest, sha256=SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD and len(httpd.requests) == 1


def test_without_checksum_an_existing_file_is_reused(server, tmp_path):
    httpd, base = server
    dest = tmp_path / "data.bin"
    download(f"{base}/data.bin", dest, progress=False)
    download(f"{base}/data.bin", dest, progress=False)
    assert dest.read_bytes() == PAYLOAD and len(httpd.requests) == 1


def test_http_errors(server, tmp_path):
    _, base = server
    with pytest.raises(DataError, match=r"cannot download http://127\.0\.0\.1:\d+/missing\.bin: HTTP 404"):
        download(f"{base}/missing.bin", tmp_path / "missing.bin", progress=False)
    with pytest.raises(DataError, match="connection closed early"):
        download(f"{base}/short", tmp_path / "short", progress=False)
    with pytest.raises(DataError, match="timed out"):
        download(f"{base}/slow", tmp_path / "slow", timeout=0.2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]  # no partial files


def test_connection_refused(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago, with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=f"cannot download http://127.0.0.1:{port}/x: .*refused"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_schemes(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = download(src.as_uri(), tmp_path / "copy.bin", sha256=SHA256, progress=False)  # file:// works
    assert dest.read_bytes() == PAYLOAD
    for url in ("ftp://127.0.0.1/x", "data:,hello", "/etc/passwd"):
        with pytest.raises(DataError, match="only http, https and file"):
            download(url, tmp_path / "y", progress=False)


def test_file_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD)
    assert file_digest(path, "sha256") == SHA256 and file_digest(path, "md5") == MD5
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        file_digest(path, "nope")


def test_extract_gz(tmp_path):
    packed = tmp_path / "t10k.gz"
    packed.write_bytes(gzip.compress(PAYLOAD))
    assert extract_gz(packed) == tmp_path / "t10k"
    assert (tmp_path / "t10k").read_bytes() == PAYLOAD
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(PAYLOAD)[:100])
    with pytest.raises(DataError, match="cannot decompress"):
        extract_gz(broken)
    assert not (tmp_path / "broken").exists() and leftovers(tmp_path) == []
