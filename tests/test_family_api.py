"""A family of three networks with its own input key, added here in the test alone: no edit to the trainer, CLI
or checkpoint code. G translates an image batch (key "a") to "x"; D judges x; an auxiliary head Q, with its own
optimizer and a lazy interval, reads a back from G's output. Its family state (a step counter kept by the
per-step hook) must survive checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from conftest import assert_checkpoints_equal
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.data import DATASETS, TensorData
from ganforge.models import FAMILIES, DataSpec, Family, ModelConfig
from ganforge.models.sampler import TranslationSampler
from ganforge.saved import load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.phases import OptimizerSpec, PhaseSpec, report_d_outputs
from ganforge.train.trainer import train

NAME = "test-three-nets"


def _pairs(cfg) -> TensorData:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 8, 8), generator=g, dtype=torch.uint8)
    return TensorData(data=x, labels=None, num_classes=0, name="test-pairs", extras={"a": 255 - x})


class Counter(nn.Module):
    """Family state: how many steps the hook has seen (a buffer, so checkpoints keep it)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))


def _conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, 8, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, c_out, 3, 1, 1))


class ThreeNetSampler(TranslationSampler):
    directions = {"a2b": ("G", "a")}


class ThreeNets(Family):
    name = NAME
    config_class = ModelConfig
    description = "test only: G(a) -> x, D, and an auxiliary head Q with its own optimizer"
    ema_networks = ("G",)
    sampler = ThreeNetSampler

    def networks(self, model, spec: DataSpec):
        c_in, c_out = spec.shape_of("a")[0], spec.shape[0]
        return {"G": lambda: nn.Sequential(_conv(c_in, c_out), nn.Tanh()), "D": lambda: _conv(c_out, 1),
                "Q": lambda: _conv(c_out, c_in)}

    def batch_keys(self, model):
        return ("x", "a")

    def optimizers(self, cfg):
        t = cfg.train
        return {"G": OptimizerSpec(("G",), lr=t.lr_g, betas=(0.5, 0.999)),
                "D": OptimizerSpec(("D",), lr=t.lr_d, betas=(0.5, 0.999)),
                "Q": OptimizerSpec(("Q",), lr=t.lr_g, betas=(0.9, 0.999))}

    def phases(self, cfg):
        def d_loss(ctx, step, measure):
            batch = next(ctx.batches)
            ctx.scratch["batch"] = batch
            with torch.no_grad():
                fake = ctx.nets.train["G"](batch["a"])
            real_logits, fake_logits = ctx.nets.train["D"](batch["x"]), ctx.nets.train["D"](fake)
            if measure:
                report_d_outputs(ctx.stats, real_logits, fake_logits)
            return (real_logits - 1).square().mean() + fake_logits.square().mean()

        def q_loss(ctx, step, measure):
            batch = ctx.scratch["batch"]
            with torch.no_grad():
                fake = ctx.nets.train["G"](batch["a"])
            return F.mse_loss(ctx.nets.train["Q"](fake), batch["a"])

        def g_loss(ctx, step, measure):
            batch = ctx.scratch["batch"]
            fake = ctx.nets.train["G"](batch["a"])
            adversarial = (ctx.nets.call["D"](fake) - 1).square().mean()
            return adversarial + 10 * F.l1_loss(fake, batch["x"]) + F.mse_loss(ctx.nets.call["Q"](fake), batch["a"])

        return [PhaseSpec("D", "D", d_loss), PhaseSpec("Q", "Q", q_loss, interval=2, start=2),
                PhaseSpec("G", "G", g_loss, frozen=("D", "Q"))]

    def state(self, cfg, spec):
        return {"counter": Counter()}

    def on_step(self, ctx, step):
        ctx.state["counter"].steps += 1


if NAME not in FAMILIES:  # the module may be imported twice (pytest's rewriting); registries refuse doubles
    FAMILIES.register(NAME)(ThreeNets())
    DATASETS.register("test-pairs")(_pairs)

RAW = {
    "data": {"name": "test-pairs"},
    "model": {"family": NAME},
    "loss": {"name": "lsgan"},
    "train": {"batch_size": 16, "steps": 12, "log_every": 4, "sample_every": 6, "checkpoint_every": 6,
              "progress": False, "lr_g": 2e-3, "lr_d": 1e-3, "ema_kimg": 0.05},  # constant LR: the split run stops at 6
}


def test_three_network_family_trains_checkpoints_and_resumes_bitwise(tmp_path):
    straight = train(config_from_dict(RAW), tmp_path / "straight")
    state = load_checkpoint(straight.run_dir)
    assert set(state["networks"]) == {"G", "D", "Q"} and set(state["optimizers"]) == {"G", "D", "Q"}
    assert set(state["ema"]) == {"G"}
    assert int(state["family_state"]["counter"]["steps"]) == 12  # the hook ran once per step
    assert state["spec"]["extra_shapes"] == {"a": [1, 8, 8]}
    # Q's lazy phase ran (steps 2, 4, ..., 10): its optimizer has state.
    assert state["optimizers"]["Q"]["state"]
    assert (straight.run_dir / "samples" / "step-00000012.png").exists()

    half = {**RAW, "train": {**RAW["train"], "steps": 6}}
    train(config_from_dict(half), tmp_path / "split")
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "12"]) == 0
    resumed = load_checkpoint(tmp_path / "split")
    assert_checkpoints_equal(state, resumed, sections=("networks", "ema", "optimizers", "schedulers", "family_state"))
    assert torch.equal(state["rng"]["torch"], resumed["rng"]["torch"])


def test_three_network_family_is_sampled_through_load_sampler_and_the_cli(tmp_path):
    run = train(config_from_dict({**RAW, "train": {**RAW["train"], "steps": 40, "sample_every": 40}}),
                tmp_path / "run").run_dir
    sampler = load_sampler(run)
    assert isinstance(sampler, ThreeNetSampler) and set(sampler.nets) == {"G"}  # no D, no Q: what a user runs
    data = _pairs(None)
    out = sampler.translate(data.extras["a"][:8])
    assert out.shape == (8, 1, 8, 8) and out.dtype == torch.uint8
    # It learned the task a little: closer to the target than the input is.
    target = data.data[:8].float()
    assert (out.float() - target).abs().mean() < (data.extras["a"][:8].float() - target).abs().mean()

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in range(3):
        Image.fromarray(data.extras["a"][i, 0].numpy()).save(inputs / f"img{i}.png")
    assert main(["translate", str(run), str(inputs), "--out", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["img0.png", "img1.png", "img2.png"]
    png = np.asarray(Image.open(tmp_path / "out" / "img0.png").convert("L"))
    assert np.array_equal(png, out[0, 0].numpy())  # the CLI writes what the sampler computes

    # save_pretrained -> load_sampler round-trips exactly.
    folder = sampler.save_pretrained(tmp_path / "pretrained")
    again = load_sampler(folder)
    assert torch.equal(again.translate(data.extras["a"][:8]), out)


def test_translate_bad_inputs_are_one_line_errors(tmp_path, capsys):
    run = train(config_from_dict({**RAW, "train": {**RAW["train"], "steps": 4}}), tmp_path / "run").run_dir
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb / "colour.png")
    out = tmp_path / "out"
    assert main(["translate", str(run), str(rgb), "--out", str(out)]) == 2
    assert "takes 1-channel images" in capsys.readouterr().err and not out.exists()  # nothing half-written
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    assert main(["translate", str(run), str(broken), "--out", str(out)]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["translate", str(run), str(rgb), "--out", str(out), "--direction", "b2a"]) == 2
    assert "translates a2b only" in capsys.readouterr().err
    assert main(["upscale", str(run), str(rgb), "--out", str(out)]) == 2
    assert "needs an upscale model" in capsys.readouterr().err


def test_missing_batch_key_is_a_config_error(tmp_path):
    raw = {**RAW, "data": {"name": "digits", "limit": 64}}
    with pytest.raises(Exception, match="needs batch keys \\['a'\\]"):
        train(config_from_dict(raw), tmp_path / "r")


def test_readme_family_example_trains(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Adding a model family"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[: code.index("```")]
    if "invert" not in FAMILIES:
        exec(compile(code, "README.md", "exec"), {})
    raw = {**RAW, "model": {"family": "invert"}, "train": {**RAW["train"], "steps": 30, "sample_every": 30}}
    run = train(config_from_dict(raw), tmp_path / "invert").run_dir
    data = _pairs(None)
    out = load_sampler(run).translate(data.extras["a"][:8])
    assert (out.float() - data.data[:8].float()).abs().mean() < (data.extras["a"][:8].float()
                                                                  - data.data[:8].float()).abs().mean()
