"""Export a trained sampler: ONNX, TorchScript, or safetensors + JSON (`save_pretrained`).

What is exported is the sampler's inference graph, never D or optimizers. The graph's inputs depend on the
sampler, not on the family, so a new family exports with no edit here:

- a noise sampler (task "generate"): `z` (B, latent_dim) float32; `labels` (B,) int64 when conditional; one
  `code_<name>` (B,) input per latent code it declares (int64 for categorical codes, float32 for continuous);
  `truncation` (B,) float32 when it supports truncation. Output `samples`: (B, *shape) in model space
  (images in [-1, 1]: uint8 = round((x + 1) * 127.5)).
- an image-to-image sampler (translate, upscale) or a classifier: `images` (B, C, H, W) float32 in [-1, 1]
  (H and W dynamic), output `outputs`.

A sampler that needs something else defines `export_graph(self, batch) -> ExportGraph` (the "small hook").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError

__all__ = ["FORMATS", "ExportGraph", "export_graph", "export_sampler", "write_onnx"]

FORMATS = ("onnx", "torchscript", "safetensors")
ONNX_OPSET = 17  # supported by every onnxruntime release since 1.11


@dataclasses.dataclass
class ExportGraph:
    """A sampler as a plain function of named tensors: what ONNX and TorchScript record."""

    inputs: dict[str, Tensor]  # example inputs by name, in the graph's argument order
    call: Callable[..., Tensor]  # call(*inputs in that order) -> output tensor
    output: str  # the output's name
    dynamic: dict[str, dict[int, str]]  # per input: the axes that may vary (batch, height, width)
    output_dynamic: dict[int, str] = dataclasses.field(default_factory=lambda: {0: "batch"})  # the output's


class _Traced(nn.Module):
    """The sampler behind a positional signature (tracers and ONNX want positional tensors)."""

    def __init__(self, sampler: nn.Module, call: Callable[..., Tensor]) -> None:
        super().__init__()
        self.sampler = sampler  # registered so its weights are the graph's parameters
        self._call = call

    def forward(self, *inputs: Tensor) -> Tensor:
        return self._call(*inputs)


def export_graph(sampler, batch: int = 2) -> ExportGraph:
    """The sampler's export signature with `batch` example rows (seeded, so exports are reproducible)."""
    hook = getattr(sampler, "export_graph", None)
    if hook is not None:
        return hook(batch)
    rng = torch.Generator().manual_seed(0)
    device = sampler.device
    if getattr(sampler, "task", None) == "generate":
        return _noise_graph(sampler, batch, rng, device)
    if hasattr(sampler, "input_shape"):  # translate / upscale / classify: images in
        shape = sampler.input_shape()
        multiple = getattr(sampler, "multiple", 1)
        size = [max(s, multiple) for s in shape[1:]]
        images = torch.rand(batch, shape[0], *size, generator=rng).mul(2).sub(1).to(device)
        spatial = {0: "batch", 2: "height", 3: "width"}
        return ExportGraph({"images": images}, lambda x: sampler(x), "outputs", {"images": spatial},
                           output_dynamic={0: "batch", 2: "out_height", 3: "out_width"})
    raise GanforgeError(f"{type(sampler).__name__} has no export signature (define export_graph on it)")


def _noise_graph(sampler, batch: int, rng: torch.Generator, device) -> ExportGraph:
    inputs = {"z": sampler.sample_latent(batch, generator=rng).to(device)}
    if sampler.num_classes:
        inputs["labels"] = (torch.arange(batch) % sampler.num_classes).to(device)
    codes = sampler.codes
    for name, code in codes.items():
        if code.kind == "categorical":
            inputs[f"code_{name}"] = (torch.arange(batch) % code.size).to(device)
        else:
            inputs[f"code_{name}"] = torch.linspace(code.low, code.high, batch).to(device)
    if sampler.supports_truncation:
        inputs["truncation"] = torch.ones(batch, device=device)
    names = list(inputs)

    def call(*tensors: Tensor) -> Tensor:
        given = dict(zip(names, tensors))
        controls = {}
        if codes:
            controls["codes"] = {name: given[f"code_{name}"] for name in codes}
        if "truncation" in given:
            controls["truncation"] = given["truncation"]
        return sampler(given["z"], given.get("labels"), **controls)

    return ExportGraph(inputs, call, "samples", {name: {0: "batch"} for name in names})


def export_sampler(sampler, fmt: str, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write `sampler` as `fmt` to `out` (a file; for safetensors a folder) and return the path written.

    Never replaces an existing file or a non-empty folder unless `overwrite`.
    """
    out = Path(out)
    if fmt not in FORMATS:
        raise GanforgeError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "safetensors":
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
            raise GanforgeError(f"{out} exists; pass --overwrite to replace it")
        return sampler.save_pretrained(out)
    if out.exists() and not overwrite:
        raise GanforgeError(f"{out} exists; pass --overwrite to replace it")
    if out.is_dir():
        raise GanforgeError(f"{out} is a folder; {fmt} export writes one file")
    graph = export_graph(sampler)
    module = _Traced(sampler, graph.call).eval()
    args = tuple(graph.inputs.values())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with torch.no_grad():
            if fmt == "torchscript":  # still what C++ (libtorch) and older runtimes load; torch marks it legacy
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    torch.jit.save(torch.jit.trace(module, args, check_trace=False), str(tmp))
            else:
                _export_onnx(module, args, graph, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _export_onnx(module: nn.Module, args: tuple[Tensor, ...], graph: ExportGraph, path: Path) -> None:
    write_onnx(module, args, path, input_names=list(graph.inputs), output_name=graph.output,
               dynamic_axes={**graph.dynamic, graph.output: graph.output_dynamic})


def write_onnx(module: nn.Module, args: tuple[Tensor, ...], path: Path, *, input_names: list[str], output_name: str,
               dynamic_axes: dict[str, dict[int, str]]) -> None:
    """Trace `module` on `args` into one self-contained ONNX file (opset ONNX_OPSET, weights inside)."""
    try:
        import onnx  # noqa: F401  (the exporter needs it; a clear message beats its ImportError)
    except ImportError:
        raise GanforgeError("ONNX export needs the onnx packages: pip install 'ganforge[export]'") from None
    import warnings

    with warnings.catch_warnings():  # the tracer's notes on Python-level shape arithmetic are not for users
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=[output_name],
                          dynamic_axes=dynamic_axes, opset_version=ONNX_OPSET, dynamo=False, external_data=False)


def run_onnx(path: str | Path, inputs: dict[str, Tensor]) -> Tensor:
    """Run an exported ONNX file with onnxruntime on CPU (what the parity tests and users' scripts do)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    feed = {name: value.cpu().numpy() for name, value in inputs.items() if name in wanted}
    return torch.from_numpy(session.run(None, feed)[0])
