"""The seed001 family's ablation switches: defaults build the seed's model exactly, each switch changes one thing."""

import pytest
import torch
from torch import nn

from ganforge.config import config_from_dict, load_preset
from ganforge.errors import ConfigError
from ganforge.models import FAMILIES, DataSpec

SPEC = DataSpec(shape=(1, 28, 28))


def build(**model):
    cfg = config_from_dict({"model": {"family": "seed001", **model}}).model
    nets = FAMILIES["seed001"].networks(cfg, SPEC)
    torch.manual_seed(0)
    return nets["G"](), nets["D"]()


def seed_reference_layers():
    """Seed 001's layers spelled out (Keras order: activation, then batch norm), built from torch.manual_seed(0)
    in the family's order (G: dense, convs; D: trunk, head) with torch's default initialisation."""
    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    torch.manual_seed(0)
    g = [nn.Linear(100, 256 * 49), nn.ReLU(),
         nn.ConvTranspose2d(256, 128, 5, 1, 2), nn.ReLU(), bn(128),
         nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1), nn.ReLU(), bn(64),
         nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1), nn.Tanh()]
    d = [nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.3), bn(64), nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.3),
         bn(128), nn.Linear(128 * 49, 1)]
    return g, d


def layer_types(module):
    return [type(m).__name__ for m in module.modules() if not list(m.children()) and not isinstance(m, nn.Identity)]


def test_defaults_are_the_seeds_model_with_the_same_initial_weights():
    G, D = build()
    g_ref, d_ref = seed_reference_layers()
    assert layer_types(G) == [type(m).__name__ for m in g_ref]
    assert layer_types(D) == [type(m).__name__ for m in d_ref]
    # Parameters only: D's construction probes its trunk once, which moves the batch-norm running statistics.
    ours = [t for m in (G, D) for t in m.parameters()]
    theirs = [t for m in (*g_ref, *d_ref) for t in m.parameters()]
    assert len(ours) == len(theirs)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))  # bitwise: the legacy digests cannot move


def test_no_d_batchnorm():
    _, D = build(d_batchnorm=False)
    assert "BatchNorm2d" not in layer_types(D.trunk)
    assert layer_types(D.trunk) == ["Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU"]
    assert D(torch.randn(3, *SPEC.shape)).shape == (3,)


def test_d_dropout_follows_each_block_and_is_active_only_in_training():
    _, D = build(d_batchnorm=False, d_dropout=0.3)
    assert layer_types(D.trunk) == ["Conv2d", "LeakyReLU", "Dropout", "Conv2d", "LeakyReLU", "Dropout"]
    x = torch.randn(4, *SPEC.shape)
    D.eval()
    assert torch.equal(D(x), D(x))  # evaluation: deterministic
    D.train()
    torch.manual_seed(1)
    assert not torch.equal(D(x), D(x))  # training: a fresh mask each call
    _, D_seed = build()
    assert "Dropout" not in layer_types(D_seed.trunk)  # the default keeps the seed's layers (and their indices)


def test_norm_order_switches():
    G, D = build(g_norm_order="bn-act", d_norm_order="bn-act")
    assert layer_types(G.convs)[:3] == ["ConvTranspose2d", "BatchNorm2d", "ReLU"]
    assert layer_types(D.trunk)[:3] == ["Conv2d", "BatchNorm2d", "LeakyReLU"]
    # G's BN-then-ReLU: every activation entering the next conv is >= 0; the seed's ReLU-then-BN (batch
    # statistics, as in training) centres them, so some are negative.
    h = G.dense(torch.randn(4, 100)).view(4, 256, 7, 7)
    assert (G.convs[:3](h) >= 0).all()
    G_seed, _ = build()
    assert (G_seed.convs[:3](h) < 0).any()


def test_dcgan_init_draws_normal_002_weights_everywhere():
    G, D = build(init="dcgan")
    weights = [m.weight for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d,
                                                                                    nn.Linear))]
    assert len(weights) == 7  # G: dense and 3 ConvT; D: 2 convs and the head
    for w in weights:
        assert abs(w.std().item() - 0.02) < 0.004 and abs(w.mean().item()) < 0.004
    biases = [m.bias for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(torch.count_nonzero(b) == 0 for b in biases)
    _, D_default = build()
    assert abs(D_default.head.weight.std().item() - 0.02) > 0.001  # the default is not already N(0, 0.02)


def test_dcgan_init_under_spectral_norm_sets_the_stored_weight():
    _, D = build(init="dcgan", d_spectral_norm=True)
    stored = D.head.parametrizations.weight.original
    assert abs(stored.std().item() - 0.02) < 0.004


@pytest.mark.parametrize("key, value", [("d_norm_order", "after"), ("g_norm_order", "bn"), ("init", "xavier"),
                                        ("d_dropout", 1.0), ("d_dropout", -0.1)])
def test_bad_switch_values_are_one_line_errors(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}"):
        config_from_dict({"model": {"family": "seed001", key: value}})


def test_fixed_preset_is_the_seed_with_three_changes():
    seed, fixed = load_preset("seed001"), load_preset("seed001-fixed")
    fixed_model = dict(fixed["model"])
    assert fixed_model.pop("d_batchnorm") is False
    assert fixed_model.pop("g_norm_order") == "bn-act"
    assert fixed_model == seed["model"]  # same architecture otherwise
    logging = {"log_every", "sample_every", "checkpoint_every"}  # how often it reports is not the recipe
    fixed_train = {k: v for k, v in fixed["train"].items() if k not in logging}
    assert fixed_train.pop("betas_g") == fixed_train.pop("betas_d") == [0.5, 0.999]
    assert fixed_train == {k: v for k, v in seed["train"].items() if k not in logging | {"betas_g", "betas_d"}}
    assert fixed["loss"] == seed["loss"] and fixed["data"] == seed["data"]
    config_from_dict(fixed)  # and it validates

