"""Latent interpolation: the path math (lerp, slerp) in closed form, and `ganforge interpolate` on a tiny run
(GIF and PNG strip, classes, w space through a style sampler's to_w / from_w, and its errors)."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.interpolation import interpolate, lerp, slerp, write_interpolation
from ganforge.models.sampler import NoiseSampler
from ganforge.refine import Refinement, generate_refined
from ganforge.saved import load_critic, load_sampler
from tiny_runs import tiny_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("interp")
    return {"plain": tiny_run(base / "plain"), "conditional": tiny_run(base / "cond", model={"conditional": True}),
            "points": tiny_run(base / "points", "points")}


def test_lerp_and_slerp_hit_the_endpoints():
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    t = torch.linspace(0, 1, 5)
    for path in (lerp, slerp):
        out = path(a, b, t)
        assert out.shape == (5, 3, 16)
        torch.testing.assert_close(out[0], a, atol=1e-6, rtol=0)
        torch.testing.assert_close(out[-1], b, atol=1e-6, rtol=0)
    torch.testing.assert_close(lerp(a, b, t)[2], (a + b) / 2)


def test_slerp_follows_the_great_circle():
    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    mid = slerp(a, b, torch.tensor([0.5]))[0, 0]
    torch.testing.assert_close(mid, torch.tensor([math.sqrt(2), math.sqrt(2)]))  # norm kept, angle halved
    path = slerp(a, b, torch.linspace(0, 1, 7))[:, 0]
    torch.testing.assert_close(path.norm(dim=1), torch.full((7,), 2.0))
    angles = torch.atan2(path[:, 1], path[:, 0])
    torch.testing.assert_close(angles.diff(), torch.full((6,), math.pi / 12))  # equal angular steps
    same = slerp(a, a * 3, torch.tensor([0.5]))[0, 0]  # parallel: the linear path, no 0/0
    torch.testing.assert_close(same, torch.tensor([4.0, 0.0]))


def test_gif_and_png_strip(runs, tmp_path, capsys):
    gif, png = tmp_path / "walk.gif", tmp_path / "walk.png"
    assert main(["interpolate", str(runs["plain"]), "--steps", "6", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.n_frames == 6 + 4  # there and back, the endpoints not repeated
    assert main(["interpolate", str(runs["plain"]), "--steps", "5", "--rows", "3", "--method", "linear",
                 "--out", str(png)]) == 0
    with Image.open(png) as im:
        assert im.size == (5 * 10 + 2, 3 * 10 + 2)  # 8x8 images, padding 2: 5 across, 3 down
    before = png.read_bytes()
    assert main(["interpolate", str(runs["plain"]), "--steps", "5", "--out", str(png)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and png.read_bytes() == before


def test_endpoints_are_the_seeds_samples_and_methods_differ_in_between(runs):
    sampler = load_sampler(runs["plain"])
    lin = interpolate(sampler, steps=5, method="linear", from_seed=3, to_seed=9)
    sph = interpolate(sampler, steps=5, method="slerp", from_seed=3, to_seed=9)
    start = sampler.generate(1, seed=3)
    assert torch.equal(lin[0, 0], start[0]) and torch.equal(sph[0, 0], start[0])
    assert torch.equal(lin[-1, 0], sampler.generate(1, seed=9)[0])
    assert not torch.equal(lin[2], sph[2])


def test_a_refining_run_walks_between_its_refined_samples(tmp_path, capsys):
    run = tiny_run(tmp_path / "refining", sample={"refine_steps": 3, "refine_step_size": 20.0})  # flat D: big steps
    sampler, critic = load_sampler(run), load_critic(run)
    walk = interpolate(sampler, steps=4, rows=8, from_seed=3, to_seed=9, refine=Refinement(critic, 3, 20.0))
    plain = interpolate(sampler, steps=4, rows=8, from_seed=3, to_seed=9)
    assert torch.equal(walk[0], generate_refined(sampler, critic, 8, steps=3, step_size=20.0, seed=3))
    assert torch.equal(walk[-1], generate_refined(sampler, critic, 8, steps=3, step_size=20.0, seed=9))
    assert not torch.equal(walk, plain)
    expected = write_interpolation(walk, tmp_path / "expected.png").read_bytes()
    for flags, images in (([], expected), (["--refine-steps", "0"], None)):
        out = tmp_path / f"walk{len(flags)}.png"
        assert main(["interpolate", str(run), "--steps", "4", "--rows", "8", "--from-seed", "3", "--to-seed", "9",
                     "--out", str(out), *flags]) == 0
        assert (out.read_bytes() == expected) == (images is not None)  # the run's own setting; a flag wins
    capsys.readouterr()
    assert main(["interpolate", str(run), "--space", "w", "--refine-steps", "2", "--out",
                 str(tmp_path / "w.png")]) == 2
    err = capsys.readouterr().err
    assert "refinement moves z" in err and err.count("\n") == 1


def test_class_of_a_conditional_model(runs, tmp_path, capsys):
    sampler = load_sampler(runs["conditional"])
    seven = interpolate(sampler, steps=3, label=7)
    assert not torch.equal(seven, interpolate(sampler, steps=3, label=2))
    z = sampler.sample_latent(1, generator=torch.Generator().manual_seed(0))
    expected = sampler(z, torch.tensor([7])).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(seven[0, 0], expected[0])
    assert main(["interpolate", str(runs["conditional"]), "--class", "10", "--out", str(tmp_path / "x.png")]) == 2
    assert "--class must be in [0, 9]" in capsys.readouterr().err
    assert main(["interpolate", str(runs["plain"]), "--class", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "needs a conditional model" in capsys.readouterr().err


class StyleLike(NoiseSampler):
    """Test only: w = 2 z (a 'mapping'), images from w; records that w space went through to_w / from_w."""

    supports_truncation = True
    calls: list[str] = []

    def to_w(self, z, labels=None, truncation=1.0):
        self.calls.append("to_w")
        return 2 * z * truncation

    def from_w(self, w):
        self.calls.append("from_w")
        return self.G(w / 2)

    def forward(self, z, labels=None, truncation=1.0):
        return self.from_w(self.to_w(z, labels, truncation))


def test_w_space_uses_the_style_samplers_mapping(runs):
    plain = load_sampler(runs["plain"])
    style = StyleLike(dict(plain.nets), config=plain.config, spec=plain.spec).eval()
    walk = interpolate(style, steps=4, space="w", truncation=0.5)
    assert style.calls.count("to_w") == 2 and style.calls.count("from_w") == 4
    assert walk.shape[:2] == (4, 1)
    with pytest.raises(GanforgeError, match="--space w needs a style model"):
        interpolate(plain, space="w")
    with pytest.raises(GanforgeError, match="truncation"):
        interpolate(plain, truncation=0.5)


def test_bad_requests_are_one_line_errors(runs, tmp_path, capsys):
    cases = [
        ([str(runs["points"]), "--out", str(tmp_path / "p.gif")], "generates points"),
        ([str(runs["plain"]), "--out", str(tmp_path / "p.jpg")], "must end in .gif"),
        ([str(runs["plain"]), "--steps", "1", "--out", str(tmp_path / "p.gif")], "--steps must be >= 2"),
    ]
    for args, message in cases:
        assert main(["interpolate", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
