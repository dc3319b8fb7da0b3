"""Export: the ONNX graph (run by onnxruntime) and the TorchScript module give the sampler's own outputs, and
save_pretrained / load_sampler round-trips exactly, for every family on main and an image-to-image family.

The samplers are built straight from each family's networks (random weights, batch-norm statistics set to
random values so eval-mode normalisation is exercised): parity does not need a trained model.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.config import build_section
from ganforge.errors import GanforgeError
from ganforge.export import export_graph, export_sampler, run_onnx
from ganforge.models import FAMILIES, DataSpec, Family, ModelConfig
from ganforge.models.sampler import TranslationSampler
from ganforge.saved import load_sampler
from tiny_runs import tiny_run

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # TorchScript is legacy in torch 2.9+

TRANSLATE = "test-export-translate"


class HalveSampler(TranslationSampler):
    directions = {"a2b": ("G", "a")}
    multiple = 2


class Halve(Family):
    """Test only: G maps 3-channel images "a" to 1-channel images x through a stride-2 bottleneck."""

    name, config_class, ema_networks, sampler = TRANSLATE, ModelConfig, ("G",), HalveSampler

    def networks(self, model, spec):
        c_in, c_out = spec.shape_of("a")[0], spec.shape[0]
        return {"G": lambda: nn.Sequential(nn.Conv2d(c_in, 8, 4, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                           nn.ConvTranspose2d(8, c_out, 4, 2, 1), nn.Tanh()),
                "D": lambda: nn.Conv2d(c_out, 1, 3, 1, 1)}


if TRANSLATE not in FAMILIES:
    FAMILIES.register(TRANSLATE)(Halve())

CASES = {  # family, model section, data spec
    "mlp": ("mlp", {"latent_dim": 4, "g_hidden": 16, "g_layers": 2, "g_batchnorm": True}, DataSpec((2,))),
    "dcgan": ("dcgan", {"latent_dim": 8, "g_channels": 8, "d_channels": 8}, DataSpec((1, 16, 16))),
    "dcgan-conditional": ("dcgan", {"latent_dim": 8, "g_channels": 8, "conditional": True},
                          DataSpec((3, 8, 12), num_classes=5)),
    "seed001": ("seed001", {"latent_dim": 8}, DataSpec((1, 28, 28))),
    "translate": (TRANSLATE, {}, DataSpec((1, 8, 8), extra_shapes=(("a", (3, 8, 8)),))),
}


def build(case: str):
    family_name, model, spec = CASES[case]
    family = FAMILIES[family_name]
    config = build_section(family.config_class, {"family": family_name, **model}, "model")
    torch.manual_seed(0)
    builders = family.networks(config, spec)
    nets = {name: builders[name]() for name in family.sampler.network_names}
    for module in nets["G"].modules():
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return family.sampler(nets, config=config, spec=spec).eval().requires_grad_(False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_and_torchscript_give_the_samplers_outputs(case, tmp_path):
    sampler = build(case)
    onnx_path = export_sampler(sampler, "onnx", tmp_path / "model.onnx")
    script_path = export_sampler(sampler, "torchscript", tmp_path / "model.pt")
    graph = export_graph(sampler, batch=5)  # exported with 2 rows: the batch axis is dynamic
    if case == "translate":  # and so are the image sides
        graph.inputs["images"] = torch.rand(5, 3, 12, 16) * 2 - 1
    expected = graph.call(*graph.inputs.values())
    assert expected.shape[0] == 5
    got = run_onnx(onnx_path, graph.inputs)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    scripted = torch.jit.load(str(script_path))
    torch.testing.assert_close(scripted(*graph.inputs.values()), expected, atol=1e-6, rtol=1e-5)
    if case == "dcgan-conditional":  # the labels input is live: other classes, other images
        other = dict(graph.inputs, labels=(graph.inputs["labels"] + 1) % 5)
        assert not torch.allclose(run_onnx(onnx_path, other), got)


@pytest.mark.parametrize("case", sorted(CASES))
def test_save_pretrained_round_trips_exactly(case, tmp_path):
    sampler = build(case)
    folder = export_sampler(sampler, "safetensors", tmp_path / "pretrained")
    loaded = load_sampler(folder)
    assert type(loaded) is type(sampler) and loaded.spec == sampler.spec and loaded.config == sampler.config
    for (name, a), (name_b, b) in zip(sampler.state_dict().items(), loaded.state_dict().items()):
        assert name == name_b and torch.equal(a, b), name
    graph = export_graph(sampler, batch=3)
    assert torch.equal(loaded(*graph.inputs.values()), sampler(*graph.inputs.values()))


def test_noise_graph_names_its_inputs():
    assert list(export_graph(build("dcgan-conditional")).inputs) == ["z", "labels"]
    assert list(export_graph(build("dcgan")).inputs) == ["z"]
    assert list(export_graph(build("translate")).inputs) == ["images"]


def test_a_family_hook_replaces_the_signature(tmp_path):
    # A sampler with another input (here: a per-sample gain) defines export_graph and exports with no edit.
    sampler = build("dcgan")
    from ganforge.export import ExportGraph

    def export_hook(batch):
        z, gain = torch.randn(batch, 8), torch.full((batch,), 0.5)
        return ExportGraph({"z": z, "gain": gain}, lambda z, g: sampler(z) * g.view(-1, 1, 1, 1), "samples",
                           {"z": {0: "batch"}, "gain": {0: "batch"}})

    sampler.export_graph = export_hook
    path = export_sampler(sampler, "onnx", tmp_path / "hook.onnx")
    z = torch.randn(4, 8)
    torch.testing.assert_close(run_onnx(path, {"z": z, "gain": torch.full((4,), 0.5)}), sampler(z) * 0.5,
                               atol=1e-5, rtol=1e-4)


def test_cli_export_of_a_run_never_overwrites(tmp_path, capsys):
    run = tiny_run(tmp_path / "run", model={"conditional": True})
    out = tmp_path / "g.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    before = out.read_bytes()
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "st")]) == 0
    ema = load_sampler(run)
    graph = export_graph(ema, batch=4)
    torch.testing.assert_close(run_onnx(out, graph.inputs), ema(*graph.inputs.values()), atol=1e-5, rtol=1e-4)
    assert torch.equal(load_sampler(tmp_path / "st")(*graph.inputs.values()), ema(*graph.inputs.values()))
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes() != before


def test_exporting_a_refining_run_says_the_export_draws_plain_samples(tmp_path, capsys):
    run = tiny_run(tmp_path / "ring", "points", sample={"refine_steps": 3})
    plain = tiny_run(tmp_path / "plain", "points")
    capsys.readouterr()
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert "refines its samples on its D (3 steps" in out and "draws plain samples" in out
    assert main(["export", str(plain), "--format", "safetensors", "--out", str(tmp_path / "st2")]) == 0
    assert "note:" not in capsys.readouterr().out


def test_export_refuses_a_folder_and_an_unknown_format(tmp_path):
    sampler = build("mlp")
    with pytest.raises(GanforgeError, match="is a folder"):
        export_sampler(sampler, "onnx", tmp_path, overwrite=True)
    with pytest.raises(GanforgeError, match="unknown export format"):
        export_sampler(sampler, "tflite", tmp_path / "x")
