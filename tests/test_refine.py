"""Latent refinement (ganforge.refine): its updates are gradient steps on E(z) = prior |z|^2/2 - d(G(z)) in closed form,
it leaves the networks and the samples' noise alone, `generate --refine-steps` and `evaluate --refine-steps` use the
run's own D, and what it cannot do is one error line."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.refine import generate_refined, refine_latents
from ganforge.sampling import generate
from ganforge.saved import evaluate_checkpoint, load_critic, load_sampler
from tiny_runs import tiny_run


class LinearSampler(nn.Module):
    """G(z) = A z: with the critic below, E(z) is a quadratic whose gradient and minimum are known."""

    codes = ()

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a)

    def forward(self, z, labels=None):
        return z @ self.a.T


class Bowl(nn.Module):
    """d(x) = -c/2 |x - b|^2: most real at b."""

    def __init__(self, b: torch.Tensor, c: float, d_pack: int = 1) -> None:
        super().__init__()
        self.b, self.c = b, c
        self.config = type("Config", (), {"d_pack": d_pack})()

    def forward(self, x, labels=None):
        return -0.5 * self.c * (x - self.b).pow(2).sum(1)


def quadratic():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(3, generator=gen, dtype=torch.float64)
    z0 = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    return LinearSampler(a), Bowl(b, 2.0), a, b, z0


def test_one_step_is_the_energy_gradient_step_in_closed_form():
    sampler, critic, a, b, z0 = quadratic()
    pull = 2.0 * (z0 @ a.T - b) @ a  # the gradient of c/2 |Az - b|^2 (= -d), row by row
    stepped = refine_latents(sampler, critic, z0, steps=1, step_size=0.1)  # default: no prior
    torch.testing.assert_close(stepped, z0 - 0.05 * pull)
    with_prior = refine_latents(sampler, critic, z0, steps=1, step_size=0.1, prior=0.5)
    torch.testing.assert_close(with_prior, z0 - 0.05 * (0.5 * z0 + pull))
    assert stepped is not z0 and not stepped.requires_grad
    assert sampler.a.grad is None  # only z's gradient is taken


def test_many_steps_reach_the_energy_minimum_and_noise_moves_off_it():
    sampler, critic, a, b, z0 = quadratic()
    minimum = torch.linalg.solve(torch.eye(2, dtype=torch.float64) + 2.0 * a.T @ a, 2.0 * a.T @ b)
    settled = refine_latents(sampler, critic, z0, steps=2000, step_size=0.05, prior=1.0)
    torch.testing.assert_close(settled, minimum.expand(5, 2), atol=1e-8, rtol=0)
    noisy = refine_latents(sampler, critic, z0, steps=2000, step_size=0.05, prior=1.0, noise=1.0,
                           generator=torch.Generator().manual_seed(1))
    assert (noisy - minimum).abs().max() > 0.01  # Langevin samples spread around it, not on it
    assert torch.equal(refine_latents(sampler, critic, z0, steps=0), z0)


def test_refined_samples_score_higher_on_the_runs_own_d_and_zero_steps_is_generate(tmp_path):
    run = tiny_run(tmp_path / "ring", "points")
    sampler, critic = load_sampler(run), load_critic(run)
    plain = generate(sampler, 300, seed=3)
    assert torch.equal(generate_refined(sampler, critic, 300, steps=0, seed=3), plain)
    refined = generate_refined(sampler, critic, 300, steps=5, step_size=1.0, seed=3, batch_size=128)
    assert refined.shape == plain.shape and not torch.equal(refined, plain)

    def energy(z):  # per sample: what each step lowers (this 4-step D is nearly flat, hence the large steps)
        with torch.no_grad():
            return -critic(sampler(z)).reshape(-1)

    z = sampler.sample_latent(300, generator=torch.Generator().manual_seed(3))
    energies = [energy(z)]
    for _ in range(5):
        z = refine_latents(sampler, critic, z, steps=1, step_size=1.0)
        energies.append(energy(z))
    for before, after in zip(energies, energies[1:]):
        assert (after <= before + 1e-6).all() and after.mean() < before.mean()
    with torch.no_grad():
        torch.testing.assert_close(refined, sampler(z))  # generate_refined decodes the same refined noise
    again = generate_refined(sampler, critic, 300, steps=5, step_size=1.0, seed=3)  # batch size does not matter
    torch.testing.assert_close(again, refined)


def test_cli_and_evaluate_refine_with_the_runs_own_discriminator(tmp_path, monkeypatch):
    run = tiny_run(tmp_path / "run")
    sampler, critic = load_sampler(run), load_critic(run)
    expected = generate_refined(sampler, critic, 6, steps=3, step_size=0.02, seed=4)
    assert expected.dtype == torch.uint8 and expected.shape[0] == 6
    assert main(["generate", str(run), "--num", "6", "--refine-steps", "3", "--refine-step-size", "0.02", "--seed",
                 "4", "--format", "npz", "--out", str(tmp_path / "refined.npz")]) == 0
    with np.load(tmp_path / "refined.npz") as saved:
        assert torch.equal(torch.from_numpy(saved[saved.files[0]]), expected)
    scored = {}

    def fake_evaluate(fake, real, metrics, **kwargs):  # what evaluate_checkpoint hands to the metrics
        scored["fake"] = fake
        return {}

    monkeypatch.setattr(importlib.import_module("ganforge.metrics.evaluate"), "evaluate", fake_evaluate)
    evaluate_checkpoint(run, ["fid"], num=6, refine_steps=3, refine_step_size=0.02, seed=4, real="digits")
    assert torch.equal(scored["fake"], expected)


def test_refining_commands_read_the_checkpoint_once(tmp_path, monkeypatch):
    """generate and interpolate build the sampler and the run's D from one read of the checkpoint."""
    run = tiny_run(tmp_path / "run")
    saved = importlib.import_module("ganforge.saved")
    reads = []

    def counting_load(path, *args, **kwargs):
        reads.append(path)
        return load_checkpoint(path, *args, **kwargs)

    load_checkpoint = saved.load_checkpoint
    monkeypatch.setattr(saved, "load_checkpoint", counting_load)
    assert main(["generate", str(run), "--num", "4", "--refine-steps", "2", "--format", "npz", "--out",
                 str(tmp_path / "g.npz")]) == 0
    assert len(reads) == 1
    assert main(["interpolate", str(run), "--steps", "3", "--refine-steps", "2", "--out",
                 str(tmp_path / "i.png")]) == 0
    assert len(reads) == 2


def test_what_refinement_cannot_do_is_one_error_line(tmp_path, capsys):
    sampler, critic, _, b, z0 = quadratic()
    with pytest.raises(GanforgeError, match="packed groups"):
        refine_latents(sampler, Bowl(b, 1.0, d_pack=2), z0, steps=1)
    with pytest.raises(GanforgeError, match="steps must be >= 0"):
        refine_latents(sampler, critic, z0, steps=-1)
    with pytest.raises(GanforgeError, match="prior and noise >= 0"):
        refine_latents(sampler, critic, z0, steps=1, noise=-1.0)
    run = tiny_run(tmp_path / "run")
    folder = load_sampler(run).save_pretrained(tmp_path / "pretrained")
    cases = [(["generate", str(folder), "--refine-steps", "2"], "without the discriminator"),
             (["generate", str(run), "--refine-steps", "2", "--refine-step-size", "0"], "step size must be > 0"),
             (["generate", str(run), "--refine-steps", "2", "--best-of", "2"], "pick one"),
             (["evaluate", "--fake", str(tmp_path / "none.npz"), "--real", "digits", "--refine-steps", "2"],
              "with --fake there is no D")]
    for args, message in cases:
        capsys.readouterr()
        assert main([*args, "--num", "4", "--out", str(tmp_path / "out")] if args[0] == "generate" else args) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_a_runs_sample_section_sets_how_generate_and_evaluate_draw_by_default(tmp_path, monkeypatch):
    run = tiny_run(tmp_path / "ring", "points", sample={"refine_steps": 3, "refine_step_size": 0.5})
    sampler, critic = load_sampler(run), load_critic(run)
    refined = generate_refined(sampler, critic, 50, steps=3, step_size=0.5, seed=2)
    plain = generate(sampler, 50, seed=2)
    assert not torch.equal(refined, plain)

    def generated(*flags):
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}.npz"
        assert main(["generate", str(run), "--num", "50", "--seed", "2", "--format", "npz", "--out", str(out),
                     *flags]) == 0
        with np.load(out) as saved:
            return torch.from_numpy(saved[saved.files[0]])

    assert torch.equal(generated(), refined)  # the run's own setting
    assert torch.equal(generated("--refine-steps", "0"), plain)  # a flag wins
    torch.testing.assert_close(generated("--refine-step-size", "0.1"),
                               generate_refined(sampler, critic, 50, steps=3, step_size=0.1, seed=2))
    folder = sampler.save_pretrained(tmp_path / "pretrained")  # no D kept: plain samples
    assert main(["generate", str(folder), "--num", "50", "--seed", "2", "--format", "npz", "--out",
                 str(tmp_path / "folder.npz")]) == 0
    with np.load(tmp_path / "folder.npz") as saved:
        assert torch.equal(torch.from_numpy(saved[saved.files[0]]), plain)
    scored = []
    monkeypatch.setattr(importlib.import_module("ganforge.metrics.evaluate"), "evaluate",
                        lambda fake, real, metrics, **kwargs: scored.append(fake) or {})
    evaluate_checkpoint(run, ["modes"], num=50, seed=2)
    evaluate_checkpoint(run, ["modes"], num=50, seed=2, refine_steps=0)
    assert torch.equal(scored[0], refined) and torch.equal(scored[1], plain)


def test_the_sample_section_is_checked():
    from ganforge.config import config_from_dict
    from ganforge.errors import ConfigError

    base = {"data": {"name": "ring"}, "model": {"family": "mlp"}}
    assert config_from_dict(base).sample.refine_steps == 0  # plain samples unless a preset says otherwise
    with pytest.raises(ConfigError, match="sample.refine_steps must be >= 0"):
        config_from_dict({**base, "sample": {"refine_steps": -1}})
    with pytest.raises(ConfigError, match="sample.refine_step_size must be > 0"):
        config_from_dict({**base, "sample": {"refine_step_size": 0}})
    with pytest.raises(ConfigError, match="d_pack > 1"):
        config_from_dict({**base, "model": {"family": "mlp", "d_pack": 2}, "sample": {"refine_steps": 2}})
