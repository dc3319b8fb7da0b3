"""Load test of `ganforge serve`: N concurrent clients for S seconds against a tiny model.

The server runs as the CLI runs it (`python -m ganforge serve FOLDER --port 0`, its own process, so its memory is
measured alone) on a conditional DCGAN at 32x32 (the default preset's sizes, random weights: speed does not depend
on training). Each client loops over a mix of requests: samples of 1, 4 and 16 images with a random seed and class,
interpolations at a random t, and one request in ten deliberately bad (expects 400). A request fails if its status
is not the expected one or the connection breaks. The server's resident memory (VmRSS) is read after start-up,
after a warm-up of `--warmup` seconds of load, and at the end; "flat" means the end is within 10% of the warm-up.

    nice -n 10 python benchmarks/serve_load.py                 # 8 clients, 30 s
    python benchmarks/serve_load.py --clients 16 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def make_model(folder: Path) -> None:
    import torch

    from ganforge.models import FAMILIES, DataSpec

    torch.manual_seed(0)
    family = FAMILIES["dcgan"]
    config = family.config_class(latent_dim=64, g_channels=16, d_channels=32, conditional=True)
    spec = DataSpec(shape=(1, 32, 32), num_classes=10)
    networks = {name: build() for name, build in family.networks(config, spec).items()}
    family.sampler(networks, config=config, spec=spec).save_pretrained(folder)


def client(url: str, deadline: float, seed: int, results: list) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=60) as http:
        while time.monotonic() < deadline:
            kind = rng.random()
            if kind < 0.1:
                path, params, expected = "/api/sample", {"seed": -rng.randint(1, 9)}, 400
            elif kind < 0.4:
                path, params, expected = "/api/interpolate", {"seed_a": rng.randint(0, 10**6), "seed_b": rng.randint(
                    0, 10**6), "t": round(rng.random(), 2), "class": rng.randint(0, 9)}, 200
            else:
                path, params, expected = "/api/sample", {"seed": rng.randint(0, 10**6), "n": rng.choice([1, 4, 16]),
                                                         "class": rng.randint(0, 9)}, 200
            start = time.perf_counter()
            try:
                status = http.get(path, params=params).status_code
            except httpx.HTTPError as err:
                status = type(err).__name__
            results.append((time.perf_counter() - start, status == expected, status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        make_model(folder)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        server = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", str(folder), "--port", "0"],
                                  stdout=subprocess.PIPE, text=True, env=env)
        try:
            line = server.stdout.readline()
            url = line.split(" at ")[1].split()[0].rstrip("/")
            rss_start = rss_mb(server.pid)
            warm: list = []
            threads = [threading.Thread(target=client, args=(url, time.monotonic() + args.warmup, i, warm))
                       for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rss_warm, cpu_warm = rss_mb(server.pid), cpu_seconds(server.pid)
            results: list = []
            begin = time.monotonic()
            threads = [threading.Thread(target=client, args=(url, begin + args.seconds, 100 + i, results))
                       for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - begin
            rss_end, cpu_end = rss_mb(server.pid), cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    latencies = sorted(r[0] for r in results)
    failed = [r[2] for r in results if not r[1]]
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"clients {args.clients}, {elapsed:.1f} s (after a {args.warmup:g} s warm-up), load avg "
          f"{os.getloadavg()[0]:.1f}")
    print(f"requests {len(results)} ({sum(1 for r in results if r[2] == 400)} deliberately bad, answered 400), "
          f"failed {len(failed)}" + (f": {sorted(set(map(str, failed)))}" if failed else ""))
    print(f"throughput {len(results) / elapsed:.1f} requests/s; latency p50 {statistics.median(latencies) * 1000:.0f} "
          f"ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    print(f"server CPU {cpu_end - cpu_warm:.1f} s during the measured {elapsed:.0f} s")
    growth = (rss_end - rss_warm) / rss_warm
    print(f"server RSS: {rss_start:.1f} MB after start, {rss_warm:.1f} MB after warm-up, {rss_end:.1f} MB at the end "
          f"({growth:+.1%}: {'flat' if abs(growth) <= 0.10 else 'NOT flat'})")
    if failed or abs(growth) > 0.10:
        sys.exit(1)


if __name__ == "__main__":
    main()
