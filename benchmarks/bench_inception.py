"""Inception feature extraction speed on CPU: today's path vs the fast path, side by side in one run.

    python benchmarks/bench_inception.py                  # everything, ~8 minutes on 2 cores
    python benchmarks/bench_inception.py --fid-num 200 --rounds 1 --speed-num 32 --batch-sizes 8,16,32

Three parts, each interleaving the paths it compares (the machine is shared, so absolute speeds are noisy and
the ratios measured side by side are what counts):

1. resize: today's preprocessing (gray repeated to 3 channels, then the antialiased bicubic resize to 299)
   against the new one (resize the one gray channel, then repeat it, channels_last), ms per image.
2. network variants, speed only, on the same preprocessed images: the TorchScript as loaded (today), with
   no_grad instead of inference_mode, channels_last input, torch.jit.freeze, optimize_for_inference, the
   folded frozen graph, the fast fx path at several batch sizes, with 1 thread, in bfloat16 (not the default:
   see the FID part), onnxruntime and (when installed) OpenVINO in f32 on the same ONNX file, and
   torch.compile (--compile only).
3. FID: --fid-num MNIST test images against the next --fid-num, extracted by today's path (extract() at its
   batch size 32), by the fast fx path on torch and by the default InceptionExtractor (the fx path exported to
   onnxruntime, when that is installed), chunk by chunk in alternating order: images/s of
   both, their ratio, the max feature difference and the relative FID difference (and the same for bf16).
4. old vs new again after mallopt() makes glibc reuse big blocks instead of fresh mmap pages (a process
   setting, not something ganforge does; it shows how much of the gain is fewer page faults). --no-malloc.

Reads ../shared/data (MNIST via torchvision) and ../shared/models/inception-2015-12-05.pt, or --data-root /
--inception. Record results in benchmarks/RESULTS.md, "## Inception feature extraction speed (CPU)".
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.metrics.features import extract
from ganforge.metrics.fid import feature_statistics, frechet_distance
from ganforge.metrics.inception import (
    INPUT_SIZE,
    InceptionExtractor,
    frozen_conv_stack,
    to_inception_input,
)
from hostinfo import cpu_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GANFORGE_SHARED", REPO.parent / "shared"))
OLD_BATCH = 32  # InceptionExtractor.default_batch_size before the fast path
CL = torch.channels_last


# ----------------------------------------------------------------------------------------- today's path


def old_to_inception_input(images: Tensor, resize: str = "clean") -> Tensor:
    """to_inception_input as it was before the fast path (gray repeated before the resize), kept verbatim."""
    x = images[:, :3].float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        if resize == "clean":
            x = F.interpolate(
                x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True, align_corners=False
            )
        else:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return (x - 128.0) / 128.0


class OldInception(nn.Module):
    """InceptionExtractor.forward as it was: today's preprocessing, then the TorchScript as loaded."""

    def __init__(self, layers: nn.Module) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"features": self.layers(old_to_inception_input(images)).reshape(-1, 2048)}


# ---------------------------------------------------------------------------------------------- helpers


def line(text: str = "") -> None:
    print(text, flush=True)


def load() -> str:
    return "load avg " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def mnist_test(root: Path, num: int) -> Tensor:
    import torchvision

    ds = torchvision.datasets.MNIST(root=str(root), train=False, download=False)
    return ds.data[:num, None].contiguous()  # uint8 (N, 1, 28, 28)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not on Unix
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def fid(a: Tensor, b: Tensor) -> float:
    return frechet_distance(*feature_statistics(a.numpy()), *feature_statistics(b.numpy()))


# ------------------------------------------------------------------------------------------------ parts


def bench_resize(images: Tensor, batch: int, rounds: int) -> None:
    line(f"\n## 1. resize to 299 (clean: antialiased bicubic), MNIST 28x28 gray, batch {batch}")
    paths = {
        "old: repeat gray to RGB, resize 3 channels (NCHW)": lambda b: old_to_inception_input(b),
        "new: resize 1 channel, repeat, channels_last": lambda b: to_inception_input(b, channels_last=True),
    }
    x = images[: max(batch, 64)]
    for b in x.split(batch):  # same values: the new path changes only where the gray channel is repeated
        assert torch.equal(paths["old: repeat gray to RGB, resize 3 channels (NCHW)"](b),
                           to_inception_input(b))  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in paths}
    with torch.inference_mode():
        for r in range(rounds * 3):
            for name in rotate(list(paths), r):
                fn = paths[name]
                times[name].append(timed(lambda fn=fn: [fn(b) for b in x.split(batch)]) / len(x) * 1e3)
    for name, ts in times.items():
        line(f"  {name:<52} {statistics.median(ts):6.2f} ms/image (min {min(ts):.2f})")
    line("  (values identical: checked with torch.equal)")


def openvino_conv_stack(onnx_file: Path, threads: int) -> Callable[[Tensor], Tensor] | None:
    """The exported Inception compiled by OpenVINO's CPU plugin in float32, or None when openvino is not installed."""
    try:
        import openvino
    except ImportError:
        return None
    core = openvino.Core()
    # f32 pinned: on CPUs with AMX the plugin would otherwise run bf16, i.e. other features
    compiled = core.compile_model(
        core.read_model(str(onnx_file)),
        "CPU",
        {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"},
    )
    return lambda x: torch.from_numpy(compiled(x.contiguous().numpy())[0])


def bench_network(images: Tensor, ext: InceptionExtractor, batch_sizes: list[int], rounds: int,
                  compile_: bool, num_threads: int) -> None:  # fmt: skip
    line(f"\n## 2. network only, {len(images)} preprocessed images, {rounds} round(s), variants interleaved")
    x = to_inception_input(images)  # NCHW float, identical values to today's preprocessing
    layers = ext.layers
    fast = ext.fast_layers
    assert fast is not None, "the fast path did not build"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = torch.jit.freeze(copy.deepcopy(layers).eval())
        ofi = torch.jit.optimize_for_inference(torch.jit.freeze(copy.deepcopy(layers).eval()))
        folded = frozen_conv_stack(copy.deepcopy(layers))
        folded_ofi = torch.jit.optimize_for_inference(frozen_conv_stack(copy.deepcopy(layers)))
    bf16 = copy.deepcopy(fast).to(torch.bfloat16)

    def run(net, batch, layout=None, dtype=None, mode="inference", threads=None):
        def call(data=x):
            before = torch.get_num_threads()
            if threads is not None:
                torch.set_num_threads(threads)
            try:
                with torch.inference_mode() if mode == "inference" else torch.no_grad():
                    outs = []
                    for b in data.split(batch):
                        if layout is not None:
                            b = b.contiguous(memory_format=layout)
                        if dtype is not None:
                            b = b.to(dtype)
                        outs.append(net(b).float().reshape(-1, 2048))
                    return torch.cat(outs)
            finally:
                torch.set_num_threads(before)

        call.batch = batch
        return call

    variants: dict[str, Callable[..., Tensor]] = {
        f"old: TorchScript as loaded, NCHW, batch {OLD_BATCH}": run(layers, OLD_BATCH),
        f"TorchScript, no_grad (not inference_mode), batch {OLD_BATCH}": run(layers, OLD_BATCH, mode="no_grad"),
        f"TorchScript, channels_last input, batch {OLD_BATCH}": run(layers, OLD_BATCH, CL),
        f"torch.jit.freeze, NCHW, batch {OLD_BATCH}": run(frozen, OLD_BATCH),
        f"freeze + optimize_for_inference, batch {OLD_BATCH}": run(ofi, OLD_BATCH),
        f"frozen, BN folded (TorchScript), NCHW, batch {OLD_BATCH}": run(folded, OLD_BATCH),
        "frozen, BN folded (TorchScript), channels_last, batch 16": run(folded, 16, CL),
        "frozen, BN folded + optimize_for_inference, batch 16": run(folded_ofi, 16),
    }
    for bs in batch_sizes:
        variants[f"new: fast fx path, channels_last, batch {bs}"] = run(fast, bs, CL)
    default = ext.default_batch_size
    variants[f"new, 1 thread (torch.set_num_threads(1)), batch {default}"] = run(fast, default, CL, threads=1)
    variants[f"new in bfloat16 (not the default), batch {default}"] = run(bf16, default, CL, torch.bfloat16)
    if ext.onnx_layers is not None:  # what InceptionExtractor runs when onnxruntime is installed
        for bs in batch_sizes:
            variants[f"fast fx path exported to onnxruntime, batch {bs}"] = run(ext.onnx_layers, bs)
        variants[f"onnxruntime, 1 thread, batch {default}"] = run(ext.onnx_layers, default, threads=1)
        openvino_net = openvino_conv_stack(ext.onnx_layers.onnx_file, num_threads)
        if openvino_net is not None:  # another fp32 runtime, timed beside onnxruntime; not a dependency
            variants[f"the same ONNX file on OpenVINO (f32), batch {default}"] = run(openvino_net, default)
    if compile_:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(fast, dynamic=False)
        start = time.perf_counter()
        with torch.no_grad():
            compiled(x[:default].contiguous(memory_format=CL))
        line(f"  torch.compile (inductor, freezing): first call incl. compilation {time.perf_counter() - start:.0f} s")
        variants[f"new + torch.compile (inductor), batch {default}"] = run(compiled, default, CL, mode="no_grad")

    for fn in variants.values():  # warm-up: TorchScript's profiling executor optimises on the 2nd call
        fn(x[: fn.batch])
        fn(x[: fn.batch])
    names = list(variants)
    speeds: dict[str, list[float]] = {k: [] for k in variants}
    outputs: dict[str, Tensor] = {}
    for r in range(rounds):
        for name in rotate(names, r * 3):
            start = time.perf_counter()
            out = variants[name]()
            speeds[name].append(len(x) / (time.perf_counter() - start))
            outputs.setdefault(name, out)
        line(f"  round {r + 1}/{rounds} done ({load()})")
    diffs = {name: (out - outputs[names[0]]).abs().max().item() for name, out in outputs.items()}
    old_name = names[0]
    line(f"\n  {'variant':<62} {'images/s':>9} {'min-max':>13} {'x old':>6}  max|feature diff|")
    for name in names:
        s = speeds[name]
        ratio = statistics.median(a / b for a, b in zip(s, speeds[old_name], strict=True))
        line(f"  {name:<62} {statistics.median(s):9.2f} {min(s):6.2f}-{max(s):<6.2f} {ratio:5.2f}x  "
             f"{diffs[name]:.2e}")  # fmt: skip
    line(f"  (x old: median over rounds of the ratio to the old row of the same round; torch threads "
         f"{num_threads} unless stated)")  # fmt: skip


def bench_fid(images: Tensor, ext: InceptionExtractor, ext_torch: InceptionExtractor, fid_num: int, chunk: int,
              bf16: bool) -> None:  # fmt: skip
    line(f"\n## 3. FID: MNIST test[0:{fid_num}] vs test[{fid_num}:{2 * fid_num}], extract() end to end "
         f"(preprocessing included), chunks of {chunk} in alternating order")  # fmt: skip
    paths: dict[str, tuple[nn.Module, int]] = {
        "old": (OldInception(ext.layers), OLD_BATCH),
        "fx": (ext_torch, ext.default_batch_size),  # the fast path on torch (runtime="torch")
    }
    if ext.runtime == "onnxruntime":
        paths["ort"] = (ext, ext.default_batch_size)  # the default with onnxruntime installed
    if bf16:
        paths["bf16"] = (InceptionExtractor(ext.path, precision="bf16"), ext.default_batch_size)  # opt-in
    for net, batch in paths.values():  # warm-up on a full and a short batch, twice (TorchScript profiling)
        for _ in range(2):
            extract(net, images[:batch], batch_size=batch, progress=False)
            extract(net, images[: chunk % batch or 2], batch_size=batch, progress=False)
    feats: dict[str, list[Tensor]] = {k: [] for k in paths}
    secs: dict[str, list[float]] = {k: [] for k in paths}
    faults: dict[str, int] = dict.fromkeys(paths, 0)
    chunks = images[: 2 * fid_num].split(chunk)
    for i, c in enumerate(chunks):
        for name in rotate(list(paths), i):
            net, batch = paths[name]
            flt, start = minor_faults(), time.perf_counter()
            feats[name].append(extract(net, c, batch_size=batch, progress=False)["features"])
            secs[name].append(time.perf_counter() - start)
            faults[name] += minor_faults() - flt
        if (i + 1) % max(1, len(chunks) // 4) == 0:
            line(f"  chunk {i + 1}/{len(chunks)} ({load()})")
    total = {k: torch.cat(v) for k, v in feats.items()}
    old = total["old"]
    fid_old = fid(old[:fid_num], old[fid_num:])
    line(f"\n  {'path':<6} {'batch':>5} {'images/s':>9} {'x old':>6} {'FID':>9} {'FID rel. diff':>13} "
         f"{'max|dfeat|':>10} {'rel.L2 dfeat':>12} {'FID(A_old, A_path)':>18} {'page faults/img':>15}")  # fmt: skip
    for name, (_, batch) in paths.items():
        f = total[name]
        value = fid(f[:fid_num], f[fid_num:])
        speed = len(f) / sum(secs[name])
        ratio = statistics.median(a / b for a, b in zip(secs["old"], secs[name], strict=True))
        diff = (f - old).abs().max().item()
        rel = ((f - old).norm() / old.norm()).item()
        same = fid(old[:fid_num], f[:fid_num])  # the same images: 0 up to rounding for an exact path
        line(f"  {name:<6} {batch:>5} {speed:9.2f} {ratio:5.2f}x {value:9.4f} {(value - fid_old) / fid_old:+13.4%} "
             f"{diff:10.2e} {rel:12.2e} {same:18.2e} {faults[name] / len(f):15.0f}")  # fmt: skip
    line("  x old: median over chunks of old seconds / path seconds on the same chunk")
    line(f"  feature scale: max {old.max().item():.2f}, mean {old.mean().item():.3f}; "
         f"goal: >= 3x old, |FID rel. diff| <= 0.5%")  # fmt: skip
    default = "ort" if "ort" in paths else "fx"
    fid_new = fid(total[default][:fid_num], total[default][fid_num:])
    ok = abs(fid_new - fid_old) / fid_old <= 0.005
    line(f"  default path ({default}) FID within 0.5% of old: {'yes' if ok else 'NO'} "
         f"({fid_new:.6f} vs {fid_old:.6f})")  # fmt: skip
    flops = network_flops(ext_torch)
    rate = flops * len(total[default]) / sum(secs[default]) / 1e9
    line(f"  arithmetic: {flops / 1e9:.2f} GFLOP an image (torch.utils.flop_counter over the folded network, 2 per "
         f"multiply-add); the default path runs {rate:.0f} GFLOP/s end to end")  # fmt: skip


def network_flops(ext: InceptionExtractor) -> float:
    """Floating-point operations of one image through the fast (folded) network: what any fp32 runtime must do."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        ext.fast_layers(torch.zeros(1, 3, 299, 299).contiguous(memory_format=torch.channels_last))
    return float(counter.get_total_flops())


def bench_malloc(images: Tensor, ext: InceptionExtractor, num: int, rounds: int) -> None:
    """Old vs new after tuning glibc malloc (a process setting, not part of ganforge; irreversible: run last)."""
    import ctypes

    line("\n## 4. the same two paths with glibc malloc tuned for big blocks (process-wide, NOT done by ganforge)")
    try:
        libc = ctypes.CDLL("libc.so.6")
        # M_MMAP_THRESHOLD (-3) and M_TRIM_THRESHOLD (-1) 1 GiB, M_TOP_PAD (-2) 256 MiB: big tensors are
        # reused from the heap instead of fresh mmap pages; = MALLOC_MMAP_THRESHOLD_=1073741824
        # MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=268435456 in the environment
        ok = libc.mallopt(-3, 1 << 30) and libc.mallopt(-1, 1 << 30) and libc.mallopt(-2, 256 << 20)
    except (OSError, AttributeError):
        ok = False
    if not ok:
        line("  (no glibc mallopt here: skipped)")
        return
    paths = {"old": (OldInception(ext.layers), OLD_BATCH), "new": (ext, ext.default_batch_size)}
    x = images[:num]
    for net, batch in paths.values():
        extract(net, x[:batch], batch_size=batch, progress=False)
    secs: dict[str, list[float]] = {k: [] for k in paths}
    faults: dict[str, int] = dict.fromkeys(paths, 0)
    for r in range(rounds):
        for name in rotate(list(paths), r):
            net, batch = paths[name]
            flt, start = minor_faults(), time.perf_counter()
            extract(net, x, batch_size=batch, progress=False)
            secs[name].append(time.perf_counter() - start)
            faults[name] += minor_faults() - flt
    for name in paths:
        ratio = statistics.median(a / b for a, b in zip(secs["old"], secs[name], strict=True))
        line(f"  {name:<4} batch {paths[name][1]:>3}: {len(x) * rounds / sum(secs[name]):6.2f} images/s, "
             f"{ratio:.2f}x old, {faults[name] / (len(x) * rounds):.0f} page faults/image")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=SHARED / "data")
    parser.add_argument("--inception", type=Path, default=SHARED / "models" / "inception-2015-12-05.pt")
    parser.add_argument("--fid-num", type=int, default=500, help="images per FID set (two sets)")
    parser.add_argument("--chunk", type=int, default=100, help="images per interleaved chunk in the FID part")
    parser.add_argument("--speed-num", type=int, default=64, help="images per network-variant timing")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the network variants")
    parser.add_argument("--batch-sizes", default="8,16,32,64", help="batch sizes of the fast path to time")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the fast path")
    parser.add_argument("--no-bf16", action="store_true", help="leave bf16 out of the FID part")
    parser.add_argument("--skip-network", action="store_true", help="skip part 2 (network variants)")
    parser.add_argument("--no-malloc", action="store_true", help="skip part 4 (glibc malloc tuned)")
    args = parser.parse_args()

    start = time.perf_counter()
    threads = torch.get_num_threads()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    line(f"# machine: {cpu_model()}, nproc {affinity} (os.cpu_count {os.cpu_count()}), torch {torch.__version__}, "
         f"{threads} torch threads, mkldnn {torch.backends.mkldnn.is_available()}, {platform.python_version()}; "
         f"{load()}")  # fmt: skip
    t0 = time.perf_counter()
    ext = InceptionExtractor(args.inception)
    line(f"# InceptionExtractor() built in {time.perf_counter() - t0:.2f} s (load, freeze, fold, fx, ONNX export "
         f"when not cached); runtime {ext.runtime}, default batch size {ext.default_batch_size}")  # fmt: skip
    ext_torch = InceptionExtractor(args.inception, runtime="torch")
    images = mnist_test(args.data_root, max(2 * args.fid_num, args.speed_num))
    bench_resize(images, ext.default_batch_size, args.rounds)
    bench_resize(images, OLD_BATCH, args.rounds)
    if not args.skip_network:
        sizes = [int(b) for b in args.batch_sizes.split(",") if b]
        bench_network(images[: args.speed_num], ext, sizes, args.rounds, args.compile, threads)
    bench_fid(images, ext, ext_torch, args.fid_num, args.chunk, not args.no_bf16)
    if not args.no_malloc:
        bench_malloc(images, ext, args.speed_num, args.rounds)
    line(f"\n# total {time.perf_counter() - start:.0f} s; {load()}")
