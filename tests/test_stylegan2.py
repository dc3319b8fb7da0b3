"""The stylegan2 family: networks (shapes, truncation, w_avg, fade-in), optimizers, training, resume, tools.

Block-level maths (modulated conv vs the per-sample reference, demodulation, path length by hand, mapping and
truncation formulas) is in test_style_blocks.py; this file tests the family assembled from those blocks.
"""

from __future__ import annotations

import pytest
import torch

from conftest import assert_checkpoints_equal
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.errors import ConfigError, GanforgeError
from ganforge.models import FAMILIES, DataSpec
from ganforge.models.stylegan2 import StyleDiscriminator, StyleGAN2Config, StyleGenerator, StyleSampler
from ganforge.nn.progressive import downsample_to
from ganforge.nn.style import upsample2x
from ganforge.saved import load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import Trainer, train

TINY = {"family": "stylegan2", "latent_dim": 8, "w_dim": 8, "mapping_layers": 2, "channels": 4, "max_channels": 8}


def tiny_model(**overrides) -> StyleGAN2Config:
    cfg = StyleGAN2Config(**{k: v for k, v in TINY.items() if k != "family"})
    for key, value in overrides.items():
        setattr(cfg, key, value)
    cfg.validate()
    return cfg


def run_config(steps: int = 10, **model) -> dict:
    return {
        "data": {"name": "digits", "image_size": [8, 12], "limit": 200},
        "model": {**TINY, "r1_interval": 2, "pl_interval": 2, **model},
        "loss": {"augment": {"ada": {"p": 0.2, "speed_kimg": 0.05, "interval": 2}}},
        "train": {"batch_size": 8, "steps": steps, "log_every": 2, "sample_every": 100, "checkpoint_every": 100,
                  "progress": False, "ema_kimg": 0.1, "cpu_threads": 1},
    }


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("size", [(8, 8), (8, 12), (12, 8)])
def test_shapes_any_channels_and_non_square(channels: int, size: tuple[int, int]) -> None:
    spec = DataSpec(shape=(channels, *size))
    torch.manual_seed(0)
    G, D = StyleGenerator(config=tiny_model(), spec=spec), StyleDiscriminator(config=tiny_model(), spec=spec)
    z = torch.randn(3, 8)
    images = G(z)
    assert images.shape == (3, channels, *size)
    assert D(images).shape == (3,)
    images.mean().backward()  # differentiable end to end
    assert G.mapping.layers[0].weight.grad is not None


def test_growing_networks_render_each_stage_and_show_it_at_full_size() -> None:
    spec = DataSpec(shape=(1, 16, 24))  # stages 4x6, 8x12, 16x24
    cfg = tiny_model()
    cfg.progressive.enabled = True
    torch.manual_seed(0)
    G, D = StyleGenerator(config=cfg, spec=spec), StyleDiscriminator(config=cfg, spec=spec)
    assert G.sizes == [(4, 6), (8, 12), (16, 24)]
    z = torch.randn(2, 8)
    for stage, size in enumerate(G.sizes):
        G.set_stage(stage, 1.0)
        D.set_stage(stage, 1.0)
        low = G(z, stage_output=True, noise_mode="const")
        assert low.shape == (2, 1, *size)
        shown = G(z, noise_mode="const")
        assert shown.shape == (2, 1, 16, 24)
        factor = 16 // size[0]
        assert torch.equal(shown[:, :, ::factor, ::factor], low)  # nearest-neighbour upsampling
        assert D(low).shape == (2,)
        assert torch.equal(D(shown), D(downsample_to(shown, size)))  # D averages larger inputs down first


def test_fade_in_equals_low_path_at_alpha_0_and_high_path_at_alpha_1() -> None:
    spec = DataSpec(shape=(3, 8, 12))
    cfg = tiny_model()
    cfg.progressive.enabled = True
    torch.manual_seed(0)
    G, D = StyleGenerator(config=cfg, spec=spec), StyleDiscriminator(config=cfg, spec=spec)
    ws = G.mapping(torch.randn(4, 8)).unsqueeze(1).expand(-1, G.num_ws, -1)
    G.set_stage(0, 1.0)
    low = G.synthesis(ws, noise_mode="const")  # the network before stage 1 was added
    G.set_stage(1, 1.0)
    high = G.synthesis(ws, noise_mode="const")
    G.set_stage(1, 0.0)
    assert torch.equal(G.synthesis(ws, noise_mode="const"), upsample2x(low))
    G.set_stage(1, 0.3)
    assert torch.allclose(G.synthesis(ws, noise_mode="const"), upsample2x(low).lerp(high, 0.3), atol=1e-6)

    x = torch.randn(4, 3, 8, 12)
    D.set_stage(0, 1.0)
    d_low = D(downsample_to(x, (4, 6)))
    D.set_stage(1, 1.0)
    d_high = D(x)
    D.set_stage(1, 0.0)
    assert torch.equal(D(x), d_low)
    D.set_stage(1, 1.0)
    assert torch.equal(D(x), d_high)


def test_truncation_and_w_space_of_the_sampler() -> None:
    spec = DataSpec(shape=(1, 8, 8))
    torch.manual_seed(0)
    G = StyleGenerator(config=tiny_model(), spec=spec)
    G.train()
    z = torch.randn(16, 8)
    w = G.mapping(z)
    G(z, track_w_avg=True)  # training folds the batch's mean w into w_avg
    assert torch.allclose(G.mapping.w_avg, (1 - 0.995) * w.mean(0), atol=1e-7)
    sampler = StyleSampler({"G": G}, config=G.config, spec=spec).eval()
    assert sampler.supports_truncation
    w_avg = G.mapping.w_avg
    assert torch.allclose(sampler.to_w(z, truncation=0.7), w_avg + 0.7 * (w - w_avg), atol=1e-6)
    assert torch.equal(sampler(z, truncation=1.0), sampler.from_w(sampler.to_w(z)))
    average = sampler(z, truncation=0.0)  # every z at psi 0 is the average image (fixed noise)
    assert torch.allclose(average, average[:1].expand_as(average), atol=1e-6)
    psi = torch.tensor([0.0, 1.0])  # a per-sample control
    both = sampler(z[:2], truncation=psi)
    assert torch.allclose(both[0], average[0], atol=1e-5) and torch.allclose(both[1], sampler(z[1:2])[0], atol=1e-5)
    with pytest.raises(GanforgeError, match="truncation psi"):
        sampler(z, truncation=float("nan"))


def test_truncation_cutoff_keeps_fine_layers() -> None:
    spec = DataSpec(shape=(1, 8, 8))
    torch.manual_seed(0)
    G = StyleGenerator(config=tiny_model(truncation_cutoff=2), spec=spec)
    G.mapping.w_avg.normal_()
    w = G.mapping(torch.randn(3, 8))
    ws = G.truncate(w, 0.5)
    assert ws.shape == (3, G.num_ws, 8)
    assert torch.allclose(ws[:, :2], G.mapping.w_avg.lerp(w, 0.5)[:, None].expand(-1, 2, -1))
    assert torch.equal(ws[:, 2:], w[:, None].expand(-1, G.num_ws - 2, -1))


def test_optimizers_lazy_correction_and_mapping_rate(tmp_path) -> None:
    cfg = config_from_dict(run_config(r1_interval=16, pl_interval=4))
    specs = FAMILIES["stylegan2"].optimizers(cfg)
    lr_g, lr_d = cfg.train.lr_g, cfg.train.lr_d
    assert specs["G"].lr == pytest.approx(lr_g * 4 / 5)
    assert specs["G"].betas[1] == pytest.approx(cfg.train.betas_g[1] ** 0.8)
    assert specs["D"].lr == pytest.approx(lr_d * 16 / 17)
    trainer = Trainer(cfg, tmp_path)
    groups = trainer.optimizers["G"].param_groups
    mapping = {id(p) for p in trainer.networks["G"].mapping.parameters()}
    (mapping_group,) = [g for g in groups if {id(p) for p in g["params"]} == mapping]
    assert mapping_group["lr"] == pytest.approx(lr_g * 0.8 * 0.01)
    phases = {p.name: p.interval for p in trainer.phases}
    assert phases == {"D": 1, "Dreg": 16, "G": 1, "Greg": 4}


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="architecture"):
        config_from_dict({"model": {"family": "stylegan2", "architecture": "unet"}})
    with pytest.raises(ConfigError, match="progressive needs model.architecture: skip"):
        config_from_dict({"model": {"family": "stylegan2", "architecture": "resnet", "progressive": {"enabled": True}}})
    with pytest.raises(ConfigError, match="style_mixing_prob"):
        config_from_dict({"model": {"family": "stylegan2", "style_mixing_prob": 1.5}})


@pytest.fixture(scope="module")
def grown_run(tmp_path_factory):
    """A run that grows 4x6 -> 8x12 with per-stage batch sizes and ADA, and the same run split at step 4."""
    base = tmp_path_factory.mktemp("style")
    model = {"progressive": {"enabled": True, "fade_steps": 3, "stable_steps": 2, "batch_sizes": [8, 6]}}
    straight = train(config_from_dict(run_config(10, **model)), base / "straight")
    train(config_from_dict(run_config(4, **model)), base / "split")  # stops inside stage 1's fade-in
    assert main(["train", "--resume", str(base / "split"), "--steps", "10"]) == 0
    return straight.run_dir, base / "split"


def test_resume_across_a_stage_boundary_is_bitwise(grown_run) -> None:
    straight, split = grown_run
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert_checkpoints_equal(a, b, sections=("networks", "ema", "optimizers", "family_state", "augment"))
    assert a["examples_drawn"] == b["examples_drawn"] == 2 * 8 + 8 * 6  # stage 0: steps 0-1, stage 1: 2-9
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    G = a["networks"]["G"]
    assert int(G["stage"]) == 1 and float(G["alpha"]) == 1.0
    assert float(a["family_state"]["path_length"]["pl_mean"]) > 0  # lazy path length ran and is checkpointed
    assert G["mapping.w_avg"].abs().sum() > 0  # w_avg tracked in training


def test_ada_p_is_logged_and_checkpointed(grown_run) -> None:
    straight, _ = grown_run
    ticks = [r for r in read_metrics(straight / "metrics.jsonl") if "event" not in r]
    assert all("ada_p" in r and 0.0 <= r["ada_p"] <= 1.0 for r in ticks)
    p = float(load_checkpoint(straight)["augment"]["augments.0.p"])
    assert p != 0.2  # it moved from its start
    assert p == pytest.approx(ticks[-1]["ada_p"], abs=0.2)


def test_sampler_loads_and_the_style_tools_work(grown_run, tmp_path, capsys) -> None:
    straight, _ = grown_run
    sampler = load_sampler(straight)
    assert isinstance(sampler, StyleSampler) and sampler.detail_size() is None
    first = sampler.generate(4, seed=3)
    assert torch.equal(first, sampler.generate(4, seed=3))  # fixed noise maps: same seed, same images
    assert first.shape == (4, 1, 8, 12)

    assert main(["style-mix", str(straight), "--rows", "2", "--cols", "3", "--out", str(tmp_path / "mix.png")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "mix.png") as im:  # (1 + 3 groups x 2 rows) x (1 + 3 columns) cells, 1-pixel gaps
        assert im.size == (4 * 13 + 1, 7 * 9 + 1)
    assert main(["generate", str(straight), "--truncation", "0.7", "--num", "4", "--grid",
                 "--out", str(tmp_path / "t.png")]) == 0
    assert main(["generate", str(straight), "--truncation-sweep", "1,0.5,0", "--num", "2", "--grid",
                 "--out", str(tmp_path / "sweep.png")]) == 0
    with Image.open(tmp_path / "sweep.png") as im:
        assert im.size == (3 * 14 + 2, 2 * 10 + 2)  # a column per psi, a row per sample
    capsys.readouterr()
    for argv, message in (
        (["generate", str(straight), "--truncation", "abc", "--out", str(tmp_path / "x")], "--truncation needs"),
        (["generate", str(straight), "--truncation", "-1", "--out", str(tmp_path / "x")], "must be in [0, 2]"),
        (["generate", str(straight), "--truncation-sweep", "1,,0", "--out", str(tmp_path / "x")], "comma-separated"),
        (["style-mix", str(straight), "--out", str(tmp_path / "mix.png")], "exists"),
        (["style-mix", str(straight), "--styles", "coarse,tiny", "--out", str(tmp_path / "m2.png")], "--styles"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "m2.png").exists()
