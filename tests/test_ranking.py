"""Best-of-n sampling (ganforge.ranking): it keeps exactly the candidates the critic scores highest, per class for
conditional models, reproducibly; `generate --best-of` and `evaluate --best-of` read the run's D; bad input is one
error line."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.errors import CheckpointError, GanforgeError
from ganforge.models import FAMILIES, DataSpec
from ganforge.ranking import generate_best_of
from ganforge.sampling import generate, to_output
from ganforge.saved import evaluate_checkpoint, load_critic, load_sampler
from tiny_runs import tiny_run

SPEC = DataSpec(shape=(1, 8, 8), num_classes=10)


def sampler_of(family: str, **fields):
    model = config_from_dict({"data": {"name": "digits", "image_size": [8]},
                              "model": {"family": family, "latent_dim": 4, "g_channels": 4, "d_channels": 4,
                                        **fields}}).model
    nets = FAMILIES[family].networks(model, SPEC)
    torch.manual_seed(0)
    g = nets["G"]()
    with torch.no_grad():  # weights far from init, so the samples differ visibly
        for weight in g.parameters():
            weight.normal_(0.0, 0.5)
    return FAMILIES[family].sampler({"G": g}, config=model, spec=SPEC).eval(), model


class Brightness(nn.Module):
    """A critic that finds bright images the most real (each pixel weighted by its position, so scores do not
    tie): a score anyone can recompute from the saved pixels."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.seen_labels: list = []

    def forward(self, x, labels=None):
        self.seen_labels.append(labels)
        return brightness(to_output(x, True))


def brightness(images: torch.Tensor) -> torch.Tensor:
    weights = torch.linspace(1.0, 2.0, images[0].numel(), dtype=torch.float64)
    return images.flatten(1).double() @ weights


def test_keeps_the_highest_scored_of_the_pool_in_drawing_order():
    sampler, model = sampler_of("dcgan")
    kept = generate_best_of(sampler, Brightness(model), 10, best_of=3, seed=7, batch_size=8)
    pool = generate(sampler, 30, seed=7, batch_size=8)  # the same noise stream: the candidates
    order = brightness(pool).argsort(descending=True)[:10].sort().values
    assert kept.dtype == torch.uint8 and kept.shape == (10, 1, 8, 8)
    assert len(brightness(pool).unique()) == 30  # no ties: one right answer
    assert torch.equal(kept, pool[order])
    assert brightness(kept).mean() > brightness(pool).mean()  # the critic's preference shows
    assert torch.equal(kept, generate_best_of(sampler, Brightness(model), 10, best_of=3, seed=7, batch_size=8))
    assert torch.equal(generate_best_of(sampler, Brightness(model), 5, best_of=1, seed=7), generate(sampler, 5, seed=7))


def test_conditional_keeps_each_requested_class_and_its_best_candidates():
    sampler, model = sampler_of("cgan")
    labels = torch.tensor([3, 3, 3, 5, 5, 1])
    critic = Brightness(model)
    kept = generate_best_of(sampler, critic, 6, best_of=4, seed=1, labels=labels, batch_size=5)
    pool_labels = labels.repeat(4)
    assert torch.equal(torch.cat(critic.seen_labels), pool_labels)  # D judged each candidate with its own class
    pool = generate(sampler, 24, seed=1, labels=pool_labels, batch_size=5)
    for k in (1, 3, 5):
        wanted = labels == k
        candidates = pool[pool_labels == k]
        best = candidates[brightness(candidates).argsort(descending=True)[: int(wanted.sum())].sort().values]
        assert torch.equal(kept[wanted], best), k


def test_bad_input_is_one_clear_error():
    sampler, model = sampler_of("dcgan")
    with pytest.raises(GanforgeError, match="best-of must be >= 1"):
        generate_best_of(sampler, Brightness(model), 4, best_of=0)

    class Pair(Brightness):
        def forward(self, x, labels=None):
            return x.mean(dim=(1, 2, 3)), x

    with pytest.raises(GanforgeError, match="one D logit per sample"):
        generate_best_of(sampler, Pair(model), 4, best_of=2)
    packed = config_from_dict({"data": {"name": "digits", "image_size": [8]},
                               "model": {"family": "dcgan", "d_pack": 2}}).model
    with pytest.raises(GanforgeError, match="packed"):
        generate_best_of(sampler, Brightness(packed), 4, best_of=2)


def test_cli_and_evaluate_rank_by_the_runs_own_discriminator(tmp_path, monkeypatch):
    run = tiny_run(tmp_path / "run")
    critic = load_critic(run)
    assert not critic.training and not any(p.requires_grad for p in critic.parameters())
    sampler = load_sampler(run)
    expected = generate_best_of(sampler, critic, 6, best_of=3, seed=4)
    assert main(["generate", str(run), "--num", "6", "--best-of", "3", "--seed", "4", "--format", "npz",
                 "--out", str(tmp_path / "best.npz")]) == 0
    with np.load(tmp_path / "best.npz") as saved:
        assert torch.equal(torch.from_numpy(saved[saved.files[0]]), expected)
    # what D thinks of the kept ones beats what it thinks of plain samples from the same seed
    with torch.no_grad():
        def score(images):
            return critic(images.float() / 127.5 - 1).mean()

        assert score(expected) > score(generate(sampler, 6, seed=4))
    scored = {}

    def fake_evaluate(fake, real, metrics, **kwargs):  # what evaluate_checkpoint hands to the metrics
        scored["fake"] = fake
        return {}

    # the module, not the function ganforge.metrics re-exports under the same name
    monkeypatch.setattr(importlib.import_module("ganforge.metrics.evaluate"), "evaluate", fake_evaluate)
    evaluate_checkpoint(run, ["fid"], num=6, best_of=3, seed=4, real="digits")
    assert torch.equal(scored["fake"], expected)


def test_cli_refuses_what_best_of_cannot_do(tmp_path, capsys):
    run = tiny_run(tmp_path / "run", model={"conditional": True})
    folder = load_sampler(run).save_pretrained(tmp_path / "pretrained")
    with pytest.raises(CheckpointError, match="without the discriminator"):
        load_critic(folder)
    cases = [([str(folder), "--best-of", "2"], "without the discriminator"),
             ([str(run), "--best-of", "0"], "--best-of must be >= 1"),
             ([str(tiny_run(tmp_path / "ring", "points")), "--best-of", "2"], "points")]
    for args, message in cases:
        capsys.readouterr()
        assert main(["generate", *args, "--num", "4", "--out", str(tmp_path / "out")]) != 0
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
    # a conditional grid: one row per class, each row that class's best
    assert main(["generate", str(run), "--best-of", "2", "--grid", "--num", "20", "--class", "3,5", "--format", "npz",
                 "--out", str(tmp_path / "grid.npz")]) == 0
    sampler, critic = load_sampler(run), load_critic(run)
    with np.load(tmp_path / "grid.npz") as saved:
        grid = torch.from_numpy(saved[saved.files[0]])
    rows = torch.tensor([3, 5]).repeat_interleave(10)
    assert torch.equal(grid, generate_best_of(sampler, critic, 20, best_of=2, labels=rows))
    capsys.readouterr()
    assert main(["evaluate", "--fake", str(tmp_path / "none.npz"), "--real", "digits", "--best-of", "2"]) != 0
    assert "with --fake there is no D" in capsys.readouterr().err
