import pytest

from ganforge.config import apply_override, config_from_dict, load_preset, preset_names
from ganforge.errors import ConfigError
from ganforge.models.dcgan import DCGANConfig
from ganforge.models.mlp import MLPConfig


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves(name):
    cfg = config_from_dict(load_preset(name))
    cfg.validate()
    assert cfg.model.family


def test_default_preset_is_dcgan_on_digits():
    cfg = config_from_dict(load_preset("default"))
    assert cfg.data.name == "digits"
    assert isinstance(cfg.model, DCGANConfig)


def test_seed001_preset_matches_the_seed():
    cfg = config_from_dict(load_preset("seed001"))
    assert (cfg.model.family, cfg.train.batch_size, cfg.train.lr_g, cfg.train.lr_d) == ("seed001", 256, 1e-4, 1e-4)


def test_dotted_overrides_are_typed_and_applied():
    raw = load_preset("default")
    apply_override(raw, "train.lr_g=3e-4")
    apply_override(raw, "model.family=mlp")
    apply_override(raw, "loss.regularizers.gp.weight=5")
    raw["model"] = {"family": "mlp"}
    cfg = config_from_dict(raw)
    assert cfg.train.lr_g == 3e-4
    assert isinstance(cfg.model, MLPConfig)
    assert cfg.loss.regularizers == {"gp": {"weight": 5}}


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.batch_size=-4", "train.batch_size"),
        ("train.batch_size=abc", "train.batch_size"),
        ("train.lr_g=0", "train.lr_g"),
        ("train.bogus=1", "train.bogus"),
        ("data.image_size=[0]", "data.image_size"),
        ("model.latent_dim=1.5", "model.latent_dim"),
        ("model.nonsense=3", "model.nonsense"),
        ("train.progress=maybe", "train.progress"),
        ("loss.real_label=1.5", "loss.real_label"),
        ("train.lr_schedule=sometimes", "train.lr_schedule"),
        ("eval.features=clip", "eval.features must be one of domain, inception, inception-bf16"),
    ],
)
def test_invalid_values_name_the_key(override, needle):
    raw = load_preset("default")
    apply_override(raw, override)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("[", r"\[")):
        config_from_dict(raw)


def test_bf16_inception_features_are_a_valid_eval_choice():
    raw = load_preset("default")
    apply_override(raw, "eval.features=inception-bf16")
    assert config_from_dict(raw).eval.features == "inception-bf16"


def test_unknown_family_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid: .*dcgan.*mlp"):
        config_from_dict({"model": {"family": "nope"}})


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid: .*default"):
        load_preset("nope")


def test_bad_override_syntax():
    with pytest.raises(ConfigError):
        apply_override({}, "train.lr_g")
    with pytest.raises(ConfigError):
        apply_override({}, "lr_g=1")


def test_config_yaml_round_trip():
    import yaml

    cfg = config_from_dict(load_preset("toy-grid"))
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
