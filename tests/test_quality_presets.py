"""The recommended image presets (issue 15) resolve, validate and build; their descriptions carry measurements."""

import pytest
import torch
import yaml

from ganforge.cli import main
from ganforge.config import config_from_dict, load_preset, preset_description
from ganforge.models import FAMILIES, DataSpec

PRESETS = {"mnist": "mnist", "mnist-fast": "mnist", "fashion-mnist": "fashion-mnist", "seed001-fixed": "mnist",
           "mnist-unconditional": "mnist", "fashion-mnist-unconditional": "fashion-mnist",
           "mnist-self-conditioned": "mnist", "fashion-mnist-self-conditioned": "fashion-mnist"}
LABELLED = {"mnist", "fashion-mnist"}  # the recommended presets train on the labels; their -unconditional twins not
# A class input: the labels, or k-means clusters of the images.
CONDITIONAL = LABELLED | {"mnist-self-conditioned", "fashion-mnist-self-conditioned"}


@pytest.mark.parametrize("name, dataset", list(PRESETS.items()))
def test_preset_dry_run_resolves(name, dataset, capsys):
    assert main(["train", "--preset", name, "--dry-run"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["data"]["name"] == dataset
    resolved = config_from_dict(load_preset(name))
    assert resolved.model.family == cfg["model"]["family"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_networks_build_for_28x28(name):
    cfg = config_from_dict(load_preset(name))
    assert cfg.model.conditional == (name in CONDITIONAL)
    nets = FAMILIES[cfg.model.family].networks(cfg.model, DataSpec(shape=(1, 28, 28), num_classes=10))
    G, D = nets["G"](), nets["D"]()
    labels = torch.tensor([3, 7]) if cfg.model.conditional else None
    x = G(torch.randn(2, cfg.model.latent_dim), labels)
    assert x.shape == (2, 1, 28, 28) and D(x, labels).shape == (2,)


def test_conditional_presets_are_their_unconditional_twins_plus_labels():
    for name in LABELLED:
        cond, plain = load_preset(name), load_preset(f"{name}-unconditional")
        assert cond["train"] == plain["train"] and cond["loss"] == plain["loss"] and cond["data"] == plain["data"]
        extra = {k: v for k, v in cond["model"].items() if plain["model"].get(k) != v}
        assert extra == {"family": "cgan", "g_condition": "concat", "d_condition": "projection",
                         "label_embed_dim": 16}


@pytest.mark.parametrize("name, count", [("mnist", 50), ("fashion-mnist", 10)])
def test_self_conditioned_preset_is_the_conditional_recipe_on_clusters(name, count):
    clusters, labelled = load_preset(f"{name}-self-conditioned"), load_preset(name)
    assert {k: v for k, v in clusters.items() if k != "data"} == {k: v for k, v in labelled.items() if k != "data"}
    assert clusters["data"] == labelled["data"] | {"labels": "clusters", "clusters": count}


@pytest.mark.parametrize("name", [*PRESETS, "seed001"])
def test_descriptions_state_measured_figures(name):
    text = preset_description(name)
    assert "FID" in text or "collapse" in text  # the measured figure (or, for seed001, the measured failure)
