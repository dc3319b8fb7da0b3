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


def test_extends_deep_merges_the_named_preset_under_the_variant():
    base, fast = load_preset("mnist-unconditional"), load_preset("mnist-fast")
    assert "extends" not in fast
    assert fast["train"]["steps"] == 12000 and base["train"]["steps"] != 12000
    assert fast["model"] == base["model"] and fast["loss"] == base["loss"]  # inherited whole
    assert fast["train"]["lr_g"] == base["train"]["lr_g"]  # inherited key by key inside a merged section
    assert load_preset("seed001-fixed")["model"]["family"] == "seed001"


@pytest.fixture
def preset_folder(tmp_path, monkeypatch):
    """Presets read from tmp_path instead of the package, to test broken `extends` chains."""
    import ganforge.config as C

    monkeypatch.setattr(C.resources, "files", lambda package: tmp_path)
    return tmp_path


def test_extends_chains_and_later_files_win(preset_folder):
    (preset_folder / "a.yaml").write_text("train: {steps: 1, lr_g: 0.1}\nloss: {name: hinge}\n")
    (preset_folder / "b.yaml").write_text("extends: a\ntrain: {steps: 2}\n")
    (preset_folder / "c.yaml").write_text("extends: b\nloss: {name: wgan}\n")
    assert load_preset("c") == {"train": {"steps": 2, "lr_g": 0.1}, "loss": {"name": "wgan"}}


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"a": "extends: a\n"}, "cycle: a -> a"),
        ({"a": "extends: b\n", "b": "extends: a\n"}, "cycle: a -> b -> a"),
        ({"a": "extends: nowhere\n"}, "extends must name a preset, got 'nowhere'"),
        ({"a": "extends: [b]\n", "b": "{}\n"}, "extends must name a preset"),
    ],
)
def test_broken_extends_is_one_clear_error(preset_folder, files, needle):
    for name, text in files.items():
        (preset_folder / f"{name}.yaml").write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        load_preset("a")
