"""The image-to-image families (pix2pix, cyclegan, srgan) end to end on tiny synthetic data: shapes, losses,
the history buffer in checkpoints, tiled inference, learning, resume, the CLI and its bad inputs, and the
image-to-image datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import SHARED_DATA, assert_checkpoints_equal
from ganforge.cli import main
from ganforge.config import config_from_dict, load_preset, merge
from ganforge.data import DATASETS, TensorData, load_dataset
from ganforge.errors import ConfigError, DataError
from ganforge.models import FAMILIES, DataSpec
from ganforge.models.cyclegan import cycle_consistency
from ganforge.models.pix2pix import auto_unet_depth, l1_reconstruction
from ganforge.models.srgan import content_loss, pixel_loss
from ganforge.nn.image2image import patch_output_shape, patchgan_receptive_field
from ganforge.saved import load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.trainer import lr_lambda, train

# --- tiny synthetic tasks --------------------------------------------------------------------------------


def _smooth(n: int, channels: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    """Smooth random uint8 images: low-resolution noise upsampled (learnable, unlike white noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, size[0] // 4, size[1] // 4, generator=g)
    return F.interpolate(low, size=size, mode="bilinear", align_corners=False).mul(255).round().to(torch.uint8)


def _inverted_pairs(cfg) -> TensorData:  # pix2pix: a -> 255 - a, 3 channels in, 1 out, non-square
    a = _smooth(96, 3, (16, 24), 0)
    return TensorData(data=255 - a[:, :1], labels=None, num_classes=0, name="t-pairs", extras={"a": a})


def _unpaired_inversion(cfg) -> TensorData:  # cyclegan: A smooth images, B inverted *other* smooth images
    return TensorData(data=255 - _smooth(96, 1, (16, 16), 1), labels=None, num_classes=0, name="t-unpaired",
                      extras={"a": _smooth(96, 1, (16, 16), 2)})


def _sr_smooth(cfg) -> TensorData:  # x2 SR of smooth images
    high = _smooth(128, 1, (16, 16), 3)
    low = F.avg_pool2d(high.float(), 2).round().to(torch.uint8)
    return TensorData(data=high, labels=None, num_classes=0, name="t-sr", extras={"x_lowres": low})


for _name, _fn in (("t-pairs", _inverted_pairs), ("t-unpaired", _unpaired_inversion), ("t-sr", _sr_smooth)):
    if _name not in DATASETS:
        DATASETS.register(_name)(_fn)

TRAIN = {"batch_size": 16, "steps": 40, "log_every": 10, "sample_every": 40, "checkpoint_every": 20,
         "progress": False, "lr_g": 2e-3, "lr_d": 1e-3}
PIX2PIX = {"data": {"name": "t-pairs"}, "model": {"family": "pix2pix", "g_base": 8, "d_base": 8, "d_layers": 1,
                                                  "dropout": 0.0},
           "train": TRAIN}
CYCLEGAN = {"data": {"name": "t-unpaired"},
            "model": {"family": "cyclegan", "g_base": 8, "g_blocks": 1, "g_down": 1, "d_base": 8, "d_layers": 1,
                      "identity_weight": 0.0, "pool_size": 20},
            "loss": {"name": "lsgan"},
            "train": TRAIN}  # a constant rate: a run split with --steps would lay the decay over its first part
SRRESNET = {"data": {"name": "t-sr"}, "model": {"family": "srgan", "mode": "srresnet", "g_blocks": 2, "g_width": 16,
                                                "g_norm": "none"},
            "train": {**TRAIN, "steps": 100, "betas_g": [0.9, 0.999]}}
SRGAN = merge(SRRESNET, {"model": {"mode": "srgan", "warmup_steps": 10, "d_base": 8, "d_layers": 1,
                                   "content": "auto"}})


def _losses(run_dir, key: str) -> list[float]:
    import json

    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [rec[key] for rec in map(json.loads, lines) if key in rec]


# --- losses and schedule, by hand --------------------------------------------------------------------------


def test_losses_against_hand_values() -> None:
    out, target = torch.tensor([[0.0, 1.0], [-1.0, 0.5]]), torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    assert l1_reconstruction(out, target).item() == pytest.approx((0.5 + 0 + 2 + 0.5) / 4)
    assert cycle_consistency(out, target).item() == pytest.approx(0.75)
    assert pixel_loss("mse", out, target).item() == pytest.approx((0.25 + 0 + 4 + 0.25) / 4)
    assert pixel_loss("l1", out, target).item() == pytest.approx(0.75)
    assert content_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(1.0)


def test_constant_then_linear_decay_schedule() -> None:
    cfg = config_from_dict({"train": {"lr_schedule": "constant-linear", "lr_decay_start": 0.5, "steps": 100}})
    f = lr_lambda(cfg, 100)
    assert [f(s) for s in (0, 49, 50, 75, 100)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    with pytest.raises(ConfigError, match="lr_decay_start"):
        config_from_dict({"train": {"lr_decay_start": 1.0}})


def test_auto_unet_depth() -> None:
    assert (auto_unet_depth(28, 28), auto_unet_depth(256, 256), auto_unet_depth(16, 24)) == (2, 8, 3)
    with pytest.raises(ConfigError, match="even"):
        auto_unet_depth(7, 7)


# --- shapes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(16, 16), (16, 24), (32, 16)])
@pytest.mark.parametrize("c_a,c_b", [(1, 1), (3, 3), (4, 1), (1, 4)])
def test_family_networks_shapes(size, c_a, c_b) -> None:
    spec = DataSpec(shape=(c_b, *size), extra_shapes=(("a", (c_a, *size)),))
    for family, model in (("pix2pix", {"g_base": 4, "d_base": 4, "d_layers": 2}),
                          ("cyclegan", {"g_base": 4, "g_blocks": 1, "g_down": 1, "d_base": 4, "d_layers": 2,
                                        "identity_weight": 0.0}),
                          ("cyclegan", {"generator": "unet", "g_base": 4, "d_base": 4, "d_layers": 2})):
        cfg = config_from_dict({"model": {"family": family, **model}})
        nets = {k: build() for k, build in FAMILIES[family].networks(cfg.model, spec).items()}
        a = torch.rand(2, c_a, *size) * 2 - 1
        assert nets["G"](a).shape == (2, c_b, *size)
        d = nets["D"] if family == "pix2pix" else nets["D_B"]
        d_in = torch.cat([a, nets["G"](a)], 1) if family == "pix2pix" else nets["G"](a)
        assert d(d_in).shape == (2, 1, *patch_output_shape(*size, 2))  # one logit per 34x34 patch
        assert d.receptive_field == patchgan_receptive_field(2) == 34
        if family == "cyclegan":
            assert nets["F"](torch.zeros(2, c_b, *size)).shape == (2, c_a, *size)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("scale", [2, 4])
def test_srgan_shapes(channels, scale) -> None:
    spec = DataSpec(shape=(channels, 8 * scale, 12 * scale), extra_shapes=(("x_lowres", (channels, 8, 12)),))
    cfg = config_from_dict({"model": {"family": "srgan", "g_blocks": 1, "g_width": 8, "d_base": 4, "d_layers": 1}})
    nets = {k: build() for k, build in FAMILIES["srgan"].networks(cfg.model, spec).items()}
    sr = nets["G"](torch.zeros(2, channels, 8, 12))
    assert sr.shape == (2, channels, 8 * scale, 12 * scale)
    assert nets["D"](sr).shape == (2, 1, *patch_output_shape(8 * scale, 12 * scale, 1))


# --- training: each family learns, checkpoints and resumes -------------------------------------------------


def test_pix2pix_learns_and_translates_any_size(tmp_path) -> None:
    run = train(config_from_dict(PIX2PIX), tmp_path / "p2p").run_dir
    l1 = _losses(run, "l1")
    assert l1[-1] < 0.5 * l1[0]  # the L1 term falls
    data = _inverted_pairs(None)
    sampler = load_sampler(run)
    out = sampler.translate(data.extras["a"][:8])
    target = data.data[:8].float()
    assert (out.float() - target).abs().mean() < 0.5 * (data.extras["a"][:8, :1].float() - target).abs().mean()
    # Sides that 2**depth (8) does not divide are padded and cropped back: any size in, the same size out.
    odd = sampler.translate(_smooth(2, 3, (20, 30), 9))
    assert odd.shape == (2, 1, 20, 30)
    grid = np.asarray(Image.open(run / "samples" / "step-00000040.png"))
    assert grid.shape[1] > 3 * 24  # input | output | target side by side


def test_cyclegan_learns_keeps_its_pools_and_resumes_bitwise(tmp_path) -> None:
    straight = train(config_from_dict(CYCLEGAN), tmp_path / "straight").run_dir
    cycle = _losses(straight, "cycle")
    assert cycle[-1] < cycle[0]
    state = load_checkpoint(straight)
    assert set(state["networks"]) == {"G", "F", "D_A", "D_B"}
    pool = state["family_state"]["pool_b"]["_extra_state"]
    assert pool["count"] == 20 and pool["images"].shape == (20, 1, 16, 16)  # full: 40 steps x 16 fakes > 20
    # G learned the unpaired inversion: its outputs are closer to 255 - a than a itself is.
    a = _unpaired_inversion(None).extras["a"][:16]
    out = load_sampler(straight).translate(a, direction="a2b")
    assert (out.float() - (255 - a).float()).abs().mean() < (a.float() - (255 - a).float()).abs().mean()

    train(config_from_dict(merge(CYCLEGAN, {"train": {"steps": 20}})), tmp_path / "split")
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "40"]) == 0
    # The pools (images and fill count) travel in the checkpoint: the resumed run ends exactly where the
    # uninterrupted one does.
    assert_checkpoints_equal(state, load_checkpoint(tmp_path / "split"),
                             sections=("networks", "optimizers", "family_state"))


def test_srresnet_beats_nearest_upsampling_and_srgan_records_its_content_features(tmp_path) -> None:
    run = train(config_from_dict(SRRESNET), tmp_path / "srresnet").run_dir
    pixel = _losses(run, "pixel")
    assert pixel[-1] < 0.5 * pixel[0]
    data = _sr_smooth(None)
    sampler = load_sampler(run)
    assert sampler.task == "upscale" and sampler.scale == 2
    out = sampler.translate(data.extras["x_lowres"][:16]).float()
    nearest = F.interpolate(data.extras["x_lowres"][:16].float(), scale_factor=2, mode="nearest")
    target = data.data[:16].float()
    assert (out - target).square().mean() < (nearest - target).square().mean()
    assert "D" not in load_checkpoint(run)["networks"]  # content-only mode trains G alone

    gan = train(config_from_dict(SRGAN), tmp_path / "srgan").run_dir
    state = load_checkpoint(gan)
    assert state["family_state"]["content"]["_extra_state"] == {"source": "discriminator"}  # no VGG, no digits
    assert state["optimizers"]["D"]["state"]  # D started after the warm-up
    d_real = _losses(gan, "d_real")
    assert d_real and len(d_real) < len(_losses(gan, "pixel"))  # D's stats only after step 10


def test_srgan_resumes_across_the_warmup_bitwise(tmp_path) -> None:
    raw = merge(SRGAN, {"train": {"steps": 16, "checkpoint_every": 8}})
    full = train(config_from_dict(raw), tmp_path / "full").run_dir
    train(config_from_dict(merge(raw, {"train": {"steps": 8}})), tmp_path / "split")
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "16"]) == 0
    assert_checkpoints_equal(load_checkpoint(full), load_checkpoint(tmp_path / "split"),
                             sections=("networks", "optimizers", "family_state"))


# --- tiled inference ----------------------------------------------------------------------------------------


def test_tiled_upscale_equals_whole_image_away_from_seams(tmp_path) -> None:
    run = train(config_from_dict(merge(SRRESNET, {"train": {"steps": 4}})), tmp_path / "sr").run_dir
    sampler = load_sampler(run)
    image = _smooth(1, 1, (200, 260), 5)
    whole = sampler.translate(image)
    sampler.tile = 192  # instance attribute: 2x2 overlapping tiles on this image, overlap 48 input pixels
    tiles = sampler.translate(image)
    assert tiles.shape == whole.shape == (1, 1, 400, 520)
    # The receptive field of a 2-block SRResNet reaches 12 input pixels from its centre (9x9 stem, four 3x3 convs
    # in the blocks, 3x3 fuse and upsampling convs, the 9x9 head at x2), within a quarter of the overlap: every
    # pixel equals the whole-image result up to float rounding (1 grey level after quantisation).
    assert (tiles.int() - whole.int()).abs().max() <= 1
    sampler.tile = 64  # overlap 16: too little for that receptive field; equal away from the seams only
    small = sampler.translate(image)
    seams = torch.zeros(400, 520, dtype=torch.bool)
    # Tiles start every 48 input pixels, the last flush with the border (rows 0, 48, 96, 136; columns 0, 48,
    # 96, 144, 196); each overlap is 16 pixels. Outputs may differ within the receptive field (12) of one.
    for start in (48, 96, 136):
        seams[2 * (start - 12): 2 * (start + 16 + 12), :] = True
    for start in (48, 96, 144, 196):
        seams[:, 2 * (start - 12): 2 * (start + 16 + 12)] = True
    away = ~seams
    assert away.sum() > 1000
    assert (small.int() - whole.int()).abs()[0, 0][away].max() <= 1


# --- CLI and bad inputs -------------------------------------------------------------------------------------


def _write(folder, images: torch.Tensor, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, images):
        arr = img.permute(1, 2, 0).numpy()
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(folder / f"{name}.png")


def test_translate_and_upscale_commands(tmp_path, capsys) -> None:
    p2p = train(config_from_dict(merge(PIX2PIX, {"train": {"steps": 2}})), tmp_path / "p2p").run_dir
    cyc = train(config_from_dict(merge(CYCLEGAN, {"train": {"steps": 2}})), tmp_path / "cyc").run_dir
    sr = train(config_from_dict(merge(SRRESNET, {"train": {"steps": 2}})), tmp_path / "sr").run_dir
    rgb, gray = tmp_path / "rgb", tmp_path / "gray"
    _write(rgb, _smooth(2, 3, (16, 24), 7), ["one", "two"])
    _write(gray, _smooth(2, 1, (12, 20), 8), ["small", "wide"])

    assert main(["translate", str(p2p), str(rgb), "--out", str(tmp_path / "o1")]) == 0
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == ["one.png", "two.png"]
    assert main(["translate", str(cyc), str(gray), "--out", str(tmp_path / "o2"), "--direction", "b2a"]) == 0
    assert np.asarray(Image.open(tmp_path / "o2" / "wide.png")).shape[:2] == (12, 20)
    assert main(["upscale", str(sr), str(gray), "--out", str(tmp_path / "o3")]) == 0
    assert Image.open(tmp_path / "o3" / "small.png").size == (40, 24)  # x2, (W, H)
    capsys.readouterr()

    out = tmp_path / "bad"
    assert main(["translate", str(p2p), str(gray), "--out", str(out)]) == 2  # 1-channel into a 3-channel model
    assert "takes 3-channel images" in capsys.readouterr().err and not out.exists()
    assert main(["translate", str(p2p), str(rgb), "--out", str(out), "--direction", "b2a"]) == 2
    assert "translates a2b only" in capsys.readouterr().err and not out.exists()
    broken = tmp_path / "broken"
    _write(broken, _smooth(1, 3, (16, 24), 7), ["fine"])
    (broken / "zz.png").write_bytes(b"not a png")
    assert main(["translate", str(p2p), str(broken), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot read image" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    assert main(["upscale", str(p2p), str(rgb), "--out", str(out)]) == 2
    assert "needs an upscale model" in capsys.readouterr().err
    assert main(["translate", str(sr), str(gray), "--out", str(out)]) == 2
    assert "needs a translate model" in capsys.readouterr().err


def test_family_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="model.generator"):
        config_from_dict({"model": {"family": "cyclegan", "generator": "vit"}})
    with pytest.raises(ConfigError, match="model.mode"):
        config_from_dict({"model": {"family": "srgan", "mode": "esrgan"}})
    with pytest.raises(ConfigError, match="identity loss needs domains with the same channels"):
        train(config_from_dict(merge(CYCLEGAN, {"data": {"name": "t-pairs"}, "model": {"identity_weight": 0.5}})),
              tmp_path / "r")
    with pytest.raises(ConfigError, match="does not use loss.regularizers"):
        train(config_from_dict(merge(PIX2PIX, {"loss": {"regularizers": {"r1": {"gamma": 1.0}}}})), tmp_path / "r2")
    with pytest.raises(ConfigError, match="content=vgg needs VGG19"):
        train(config_from_dict(merge(SRGAN, {"model": {"content": "vgg"}})), tmp_path / "r3")


# --- datasets -----------------------------------------------------------------------------------------------


def test_paired_unpaired_and_sr_datasets_from_folders(tmp_path) -> None:
    a, b = _smooth(4, 3, (8, 8), 1), _smooth(4, 1, (8, 8), 2)
    side = tmp_path / "side"
    side.mkdir()
    for i in range(4):
        both = np.concatenate([a[i].permute(1, 2, 0).numpy(), b[i].expand(3, -1, -1).permute(1, 2, 0).numpy()], 1)
        Image.fromarray(both).save(side / f"{i}.png")
    data = load_dataset(config_from_dict({"data": {"name": "paired", "root": str(side)}}).data)
    assert torch.equal(data.extras["a"], a) and torch.equal(data.data, b.expand(-1, 3, -1, -1))

    folders = tmp_path / "folders"
    _write(folders / "A", a, "abcd")
    _write(folders / "B", b, "abcd")
    data = load_dataset(config_from_dict({"data": {"name": "paired", "root": str(folders)}}).data)
    assert torch.equal(data.extras["a"], a) and torch.equal(data.data, b)
    _write(folders / "B", _smooth(2, 1, (8, 8), 3), ["e", "f"])  # 6 B images, 4 A: unpaired
    cfg = config_from_dict({"data": {"name": "unpaired", "root": str(folders), "task": {"seed": 4}}})
    data = load_dataset(cfg.data)
    assert len(data) == 6 and data.extras["a"].shape == (6, 3, 8, 8)
    assert set(map(bytes, data.extras["a"].flatten(1).numpy())) == set(map(bytes, a.flatten(1).numpy()))  # all used
    assert torch.equal(load_dataset(cfg.data).data, data.data)  # deterministic from the seed

    sr = load_dataset(config_from_dict({"data": {"name": "sr", "root": str(folders / "A"), "task": {
        "source": "folder", "scale": 2, "crop": 4, "crops_per_image": 3, "downsample": "area"}}}).data)
    assert sr.data.shape == (12, 3, 4, 4) and sr.extras["x_lowres"].shape == (12, 3, 2, 2)
    assert torch.equal(sr.extras["x_lowres"], F.avg_pool2d(sr.data.float(), 2).round().to(torch.uint8))

    with pytest.raises(DataError, match="subfolders A/ and B/"):
        load_dataset(config_from_dict({"data": {"name": "unpaired", "root": str(side)}}).data)
    with pytest.raises(DataError, match="data.task.source"):
        load_dataset(config_from_dict({"data": {"name": "sr"}}).data)
    with pytest.raises(ConfigError, match="multiple of data.task.scale"):
        config_from_dict({"data": {"name": "sr", "task": {"crop": 6, "scale": 4}}})


@pytest.mark.skipif(not (SHARED_DATA / "MNIST").exists(), reason="needs MNIST in ../shared/data")
def test_mnist_derived_tasks_and_presets() -> None:
    base = {"root": str(SHARED_DATA), "download": False, "limit": 64}
    edges = load_dataset(config_from_dict({"data": {"name": "mnist-edges", **base}}).data)
    assert edges.extras["a"].shape == edges.data.shape == (64, 1, 28, 28) and edges.labels.shape == (64,)
    assert set(edges.extras["a"].unique().tolist()) <= {0, 255}
    mm = load_dataset(config_from_dict({"data": {"name": "mnist-m", "channels": 3, **base}}).data)
    assert mm.extras["a"].shape == (64, 3, 28, 28) and mm.data.shape == (64, 3, 28, 28)
    # Unpaired: A's digits are the first 64 MNIST images, B's the next 64 (no image on both sides).
    first = load_dataset(config_from_dict({"data": {"name": "mnist", **base, "limit": 128}}).data)
    assert sorted(mm.extras["a_labels"].tolist()) == sorted(first.labels[:64].tolist())
    assert sorted(mm.labels.tolist()) == sorted(first.labels[64:].tolist())
    sr = load_dataset(config_from_dict({"data": {"name": "sr", **base, "task": {"source": "fashion-mnist"}}}).data)
    assert sr.extras["x_lowres"].shape == (64, 1, 7, 7)
    photos = load_dataset(config_from_dict({"data": {"name": "sr-photos", "task": {"crops_per_image": 2}}}).data)
    assert photos.data.shape == (8, 3, 64, 64) and photos.extras["x_lowres"].shape == (8, 3, 16, 16)
    for name in ("pix2pix-edges", "cyclegan-mnistm", "srresnet-mnist", "srgan-mnist", "srgan-photos"):
        config_from_dict(load_preset(name))


def test_srgan_content_feature_space_choice(tmp_path, monkeypatch) -> None:
    from torch import nn

    from ganforge.models import srgan

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache: no VGG19 on disk
    assert srgan.vgg19_weights_path(None) is None
    with pytest.raises(ConfigError, match="is not a file"):
        srgan.vgg19_weights_path(str(tmp_path / "missing.pth"))
    cfg = config_from_dict(merge(SRGAN, {"data": {"name": "sr", "task": {"source": "mnist"}}}))
    assert srgan.CONTENT_PROVIDERS["domain"] is not None  # registered by ganforge.train.content
    net = nn.Conv2d(1, 2, 1)
    monkeypatch.setitem(srgan.CONTENT_PROVIDERS, "domain", lambda c: ("domain-mnist", net))
    content = srgan.build_content(cfg)  # auto: no VGG -> the domain classifier
    assert content.source == "domain-mnist" and content.extractor is net
    assert not list(content.parameters()) and content.state_dict()["_extra_state"] == {"source": "domain-mnist"}
    monkeypatch.setitem(srgan.CONTENT_PROVIDERS, "domain", lambda c: None)  # data without a classifier
    assert srgan.build_content(cfg).source == "discriminator"
