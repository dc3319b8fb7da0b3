"""The recommended image presets (issue 15) resolve, validate and build; their descriptions carry measurements."""

import pytest
import torch
import yaml

from ganforge.cli import main
from ganforge.config import config_from_dict, load_preset, preset_description
from ganforge.models import FAMILIES, DataSpec

PRESETS = {"mnist": "mnist", "mnist-fast": "mnist", "fashion-mnist": "fashion-mnist", "seed001-fixed": "mnist"}


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
    nets = FAMILIES[cfg.model.family].networks(cfg.model, DataSpec(shape=(1, 28, 28)))
    G, D = nets["G"](), nets["D"]()
    x = G(torch.randn(2, cfg.model.latent_dim))
    assert x.shape == (2, 1, 28, 28) and D(x).shape == (2,)


@pytest.mark.parametrize("name", ["mnist", "mnist-fast", "fashion-mnist", "seed001-fixed", "seed001"])
def test_descriptions_state_measured_figures(name):
    text = preset_description(name)
    assert "FID" in text or "collapse" in text  # the measured figure (or, for seed001, the measured failure)
