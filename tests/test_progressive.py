"""Progressive growing as a schedule families use: the progan family, per-stage batches, detail-matched health.

The schedule's own arithmetic and the fade_in / downsample_to helpers are tested in test_style_blocks.py.
"""

from __future__ import annotations

import pytest
import torch

from conftest import assert_checkpoints_equal
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.data import TensorData
from ganforge.errors import ConfigError
from ganforge.models import DataSpec
from ganforge.models.growing import GrowingSampler, ProgressiveConfig, schedule_for, stage_sizes
from ganforge.models.progan import ProDiscriminator, ProGANConfig, ProGenerator
from ganforge.nn.progressive import downsample_to, match_detail
from ganforge.saved import load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.health import diversity_ratio
from ganforge.train.stats import read_metrics
from ganforge.train.trainer import BatchStream, train

TINY = {"family": "progan", "latent_dim": 8, "channels": 4, "max_channels": 8}


def tiny(**progressive) -> ProGANConfig:
    cfg = ProGANConfig(latent_dim=8, channels=4, max_channels=8,
                       progressive=ProgressiveConfig(**{"enabled": True, **progressive}))
    cfg.validate()
    return cfg


def test_stage_sizes_and_schedule_from_the_data() -> None:
    assert stage_sizes(DataSpec(shape=(1, 28, 28))) == [(7, 7), (14, 14), (28, 28)]
    assert stage_sizes(DataSpec(shape=(3, 16, 24))) == [(4, 6), (8, 12), (16, 24)]
    schedule = schedule_for(ProgressiveConfig(enabled=True, fade_steps=2, stable_steps=3, batch_sizes=[8, 4, 2]),
                            DataSpec(shape=(1, 16, 16)), batch_size=64)
    assert [schedule.stage_at(s) for s in (0, 2, 3, 4, 5, 7, 8, 30)] == [
        (0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (1, 1.0), (2, 0.0), (2, 1.0)]
    assert [schedule.batch_size_at(s) for s in (0, 3, 8)] == [8, 4, 2]
    flat = schedule_for(ProgressiveConfig(enabled=False), DataSpec(shape=(1, 16, 16)), batch_size=64)
    assert flat.num_stages == 1 and flat.stage_at(0) == (0, 1.0) and flat.batch_size_at(5) == 64
    with pytest.raises(ConfigError, match="one batch size per stage"):
        schedule_for(ProgressiveConfig(enabled=True, batch_sizes=[8, 4]), DataSpec(shape=(1, 16, 16)), 64)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("size", [(8, 8), (8, 12)])
def test_progan_shapes_at_every_stage(channels: int, size: tuple[int, int]) -> None:
    spec = DataSpec(shape=(channels, *size))
    torch.manual_seed(0)
    G, D = ProGenerator(config=tiny(), spec=spec), ProDiscriminator(config=tiny(), spec=spec)
    z = torch.randn(3, 8)
    for stage, stage_size in enumerate(G.sizes):
        G.set_stage(stage, 0.5 if stage else 1.0)
        D.set_stage(stage, 0.5 if stage else 1.0)
        assert G(z, stage_output=True).shape == (3, channels, *stage_size)
        full = G(z)
        assert full.shape == (3, channels, *size)
        assert D(full).shape == (3,)


def test_progan_fade_in_ends() -> None:
    spec = DataSpec(shape=(3, 8, 12))
    torch.manual_seed(0)
    G, D = ProGenerator(config=tiny(), spec=spec), ProDiscriminator(config=tiny(), spec=spec)
    z = torch.randn(4, 8)
    G.set_stage(0, 1.0)
    low = G(z, stage_output=True)
    G.set_stage(1, 1.0)
    high = G(z, stage_output=True)
    G.set_stage(1, 0.0)
    assert torch.equal(G(z, stage_output=True), low.repeat_interleave(2, 2).repeat_interleave(2, 3))
    G.set_stage(1, 1.0)
    assert torch.equal(G(z, stage_output=True), high)
    x = torch.randn(4, 3, 8, 12)
    D.set_stage(0, 1.0)
    d_low = D(downsample_to(x, (4, 6)))
    D.set_stage(1, 0.0)
    assert torch.equal(D(x), d_low)


def test_draw_batches_of_changing_size_are_reproducible() -> None:
    data = TensorData(data=torch.arange(10.0).view(10, 1), labels=None, num_classes=0, name="t")  # points
    a = BatchStream(data, batch_size=4, seed=1, device=torch.device("cpu"), keys=("x",))
    sizes = [4, 4, 3, 3, 3, 2]
    drawn = [a.draw(n)["x"].flatten().tolist() for n in sizes]
    assert [len(d) for d in drawn] == sizes
    assert sorted(drawn[0] + drawn[1]) == sorted(set(drawn[0] + drawn[1]))  # no repeats within an epoch
    # 4 + 4, then 3 would cross the end of epoch 0: epoch 1 holds 3 + 3 + 3, and 2 more start epoch 2
    assert a.examples_drawn == 2 * 10 + 2
    b = BatchStream(data, batch_size=4, seed=1, device=torch.device("cpu"), keys=("x",), examples_drawn=8)
    assert [b.draw(n)["x"].flatten().tolist() for n in sizes[2:]] == drawn[2:]  # resumes from the cursor


def test_low_resolution_stage_is_not_a_collapse() -> None:
    """Blurred-looking stage outputs compared with detail-matched reals keep a diversity ratio near 1."""
    torch.manual_seed(0)
    real = torch.rand(64, 1, 16, 16) * 2 - 1
    other = torch.rand(64, 1, 16, 16) * 2 - 1
    fake_at_stage = match_detail(other, (4, 4))  # what a 4x4 stage shows at 16x16
    assert diversity_ratio(fake_at_stage, real) < 0.5  # against full-detail reals: looks collapsed
    assert 0.8 < diversity_ratio(fake_at_stage, match_detail(real, (4, 4))) < 1.25
    as_uint8 = match_detail(((real + 1) * 127.5).round().to(torch.uint8), (4, 4))
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == real.shape


def run_config(steps: int, **progressive) -> dict:
    return {
        "data": {"name": "digits", "image_size": [16], "limit": 300},
        "model": {**TINY, "progressive": {"enabled": True, "fade_steps": 3, "stable_steps": 3, **progressive}},
        "loss": {"regularizers": {"r1": {"gamma": 1.0}}},
        "train": {"batch_size": 12, "steps": steps, "log_every": 3, "sample_every": 100, "checkpoint_every": 100,
                  "progress": False, "ema_kimg": 0.1, "cpu_threads": 1},
    }


def test_progan_trains_grows_and_resumes_bitwise(tmp_path) -> None:
    straight = train(config_from_dict(run_config(16, batch_sizes=[12, 8, 6])), tmp_path / "straight")
    train(config_from_dict(run_config(7, batch_sizes=[12, 8, 6])), tmp_path / "split")  # inside stage 1
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "16"]) == 0
    a, b = load_checkpoint(straight.run_dir), load_checkpoint(tmp_path / "split")
    assert_checkpoints_equal(a, b, sections=("networks", "ema", "optimizers"))
    assert int(a["networks"]["G"]["stage"]) == 2 and float(a["networks"]["G"]["alpha"]) == 1.0
    ticks = [r for r in read_metrics(straight.run_dir / "metrics.jsonl") if "event" not in r]
    assert not [r for r in read_metrics(straight.run_dir / "metrics.jsonl") if r.get("event") == "mode_collapse"]
    assert all(r["diversity"] > 0.2 for r in ticks)  # stage outputs against detail-matched reals
    sampler = load_sampler(straight.run_dir)
    assert isinstance(sampler, GrowingSampler) and not sampler.supports_truncation
    assert sampler.detail_size() is None  # the last stage: full detail
    assert sampler.generate(3, seed=1).shape == (3, 1, 16, 16)
    sampler.G.set_stage(1, 1.0)
    assert sampler.detail_size() == (8, 8) and sampler.generate(3, seed=1).shape == (3, 1, 16, 16)
    assert (straight.run_dir / "samples" / "step-00000016.png").exists()
