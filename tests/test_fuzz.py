"""Bad input, fuzzed with hypothesis: configs, YAML files, overrides, CLI numbers and checkpoint bytes.

The property everywhere: ganforge either accepts the input or refuses it with a GanforgeError whose message
is one line naming what is wrong; through the CLI that is one `ganforge: error: ...` line on stderr and exit
status 2. No other exception ever escapes, and no traceback is printed unless `--debug` asks for one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, tiny_config
from ganforge.cli import main
from ganforge.config import Config, config_from_dict
from ganforge.errors import CheckpointError, ConfigError
from ganforge.models import FAMILIES
from ganforge.saved import load_generator
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.trainer import train

# FUZZ_EXAMPLES=2000 for a long local hunt; the default keeps the file to a few seconds.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# Every (section, field) of the schema, the model section being the MLP family's (tiny_config's family).
SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
SCHEMA = [
    (section, field.name)
    for section, cls in (
        ("data", Config().data), ("loss", Config().loss), ("train", Config().train), ("eval", Config().eval),
        ("health", Config().health), ("model", FAMILIES["mlp"].config_class()),
    )
    for field in dataclasses.fields(cls)
    if (section, field.name) != ("model", "family")  # another family makes the MLP keys unknown: tested apart
]

scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.integers(-3, 3)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.sampled_from(["ring", "mlp", "gp", "linear", "none", "fid", "1e-3", "-1", "nan", "[1, 2]", "{}"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6) | st.integers(), inner,
                                                               max_size=3),
    max_leaves=6,
)


def cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def assert_clean_refusal(status: int, err: str) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge: error: "), err
    assert "Traceback" not in err


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


# ------------------------------------------------------------------------------------- config values


@FUZZ
@given(mutations=st.lists(st.tuples(st.sampled_from(SCHEMA), values), min_size=1, max_size=3))
def test_wrong_values_name_their_key(mutations):
    raw = tiny_config()
    for (section, key), value in mutations:
        raw.setdefault(section, {})[key] = value
    try:
        cfg = config_from_dict(raw)
    except ConfigError as err:
        assert_one_line(str(err))
        named = [f"{section}.{key}" for (section, key), _ in mutations]
        assert any(k in str(err) for k in named), (str(err), named)
        return
    # Accepted: then it is a real config that survives its own YAML round trip (what --resume reads back).
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()


@FUZZ
@given(section=st.sampled_from([*SECTIONS, ""]), key=st.text(min_size=1, max_size=10) | st.integers() | st.none(),
       value=values)
def test_unknown_keys_are_named(section, key, value):
    raw = tiny_config()
    node = raw.setdefault(section, {}) if section else raw
    if key in node or (section == "" and key in SECTIONS) or (section, key) in SCHEMA or key == "family":
        return  # a known key, not an unknown one
    node[key] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert_one_line(str(info.value))
    dotted = f"{section}.{key}" if section else str(key)
    assert f"unknown config key {dotted!r}" in str(info.value) or f"unknown config key {key!r}" in str(info.value)


@FUZZ
@given(section=st.sampled_from(list(SECTIONS)), value=scalars | st.lists(scalars, max_size=2))
def test_a_section_that_is_not_a_mapping(section, value):
    raw = tiny_config()
    raw[section] = value
    if value is None or value == {}:
        return  # an empty section means "all defaults" (or, for model, the default family's keys)
    with pytest.raises(ConfigError, match=section) as info:
        config_from_dict(raw)
    assert_one_line(str(info.value))


@FUZZ
@given(family=values)
def test_model_family(family):
    try:
        config_from_dict({"model": {"family": family}})
    except ConfigError as err:
        assert_one_line(str(err))
        assert "model.family" in str(err)
    else:
        assert family in FAMILIES


@FUZZ
@given(section=st.sampled_from(["train", "data", "model", "eval"]),
       key=st.sampled_from(["batch_size", "steps", "checkpoint_every", "num_points", "limit", "latent_dim",
                            "g_hidden", "d_layers", "num", "log_every"]),
       size=st.integers(max_value=0))
def test_non_positive_sizes(section, key, size):
    if (section, key) not in SCHEMA:
        return
    raw = tiny_config()
    raw.setdefault(section, {})[key] = size
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert_one_line(str(info.value))
    assert f"{section}.{key}" in str(info.value)


# ---------------------------------------------------------------------------------- YAML files, CLI

YAML_TOKENS = st.sampled_from([
    "train:", "data:", "model:", "loss:", "eval:", "health:", "  batch_size:", "  steps:", "  lr_g:", "  name:",
    "  family:", "  regularizers:", "    gp:", "      weight:", " -1", " 0", " 1e-3", " 3e-4", " .inf", " .nan",
    " ring", " mlp", " [1, 2]", " {a: 1}", " null", " yes", " 'x'", "\t", "- ", "&a", "*a",
    " !!python/object/apply:os.getcwd []", " !!binary aGk=", "---", "...", ":", "{", "}", "[", "]", "#",
    "\n", "\n", "\n", "  ", "%YAML 1.2", "? ",
])


def _write(path: Path, payload: str | bytes) -> Path:
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        path.write_text(payload, encoding="utf-8", errors="surrogatepass")
    return path


@FUZZ
@given(payload=st.lists(YAML_TOKENS, max_size=40).map("".join) | st.text(max_size=200) | st.binary(max_size=200))
def test_any_config_file_is_accepted_or_refused_on_one_line(tmp_path, payload):
    path = _write(tmp_path / "fuzz.yaml", payload)
    status, out, err = cli(["train", "--preset", "toy-ring", "--config", str(path), "--dry-run"])
    if status == 0:
        assert err == "" and yaml.safe_load(out)["data"]  # the resolved config was printed
    else:
        assert_clean_refusal(status, err)


@FUZZ
@given(key=st.sampled_from([f"{s}.{k}" for s, k in SCHEMA]) | st.text(max_size=15),
       text=st.text(max_size=20) | st.sampled_from(["-1", "0", "[", "{a: [", "1e999", "nan", "~", "!!str 3"]))
def test_any_override_is_accepted_or_refused_on_one_line(key, text):
    status, _, err = cli(["train", "--preset", "toy-ring", "--dry-run", f"--set={key}={text}"])
    if status != 0:
        assert_clean_refusal(status, err)


@FUZZ
@given(option=st.sampled_from(["--steps", "--seed", "--epochs"]),
       number=st.integers(-(2**70), -1) | st.integers(2**32, 2**70) | st.just(0))
def test_out_of_range_numbers_on_the_command_line(option, number):
    if option == "--seed" and number == 0:
        return  # seed 0 is valid
    if option != "--seed":
        number = min(number, 0)  # any step or epoch count > 0 is valid
    status, _, err = cli(["train", "--preset", "toy-ring", "--dry-run", option, str(number)])
    assert_clean_refusal(status, err)
    assert {"--steps": "train.steps", "--seed": "train.seed", "--epochs": "train.epochs"}[option] in err


def test_missing_unreadable_and_directory_configs(tmp_path):
    for path, needle in ((tmp_path / "nope.yaml", "cannot read config"), (tmp_path, "cannot read config"),
                         (_write(tmp_path / "bin.yaml", b"\xff\xfe\x00train: {}"), "not UTF-8"),
                         (_write(tmp_path / "list.yaml", "- 1\n- 2\n"), "must be a mapping"),
                         (_write(tmp_path / "bad.yaml", "train:\n  steps: [1,\n"), "not valid YAML at line")):
        status, _, err = cli(["train", "--config", str(path), "--dry-run"])
        assert_clean_refusal(status, err)
        assert needle in err


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "ganforge", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=REPO)


def test_traceback_only_with_debug(tmp_path):
    """The real process: exit status and stderr as a shell sees them, with and without --debug."""
    bad = _write(tmp_path / "bad.yaml", "train:\n  batch_size: -3\n")
    quiet = _run_cli("train", "--config", str(bad), "--dry-run")
    assert quiet.returncode == 2
    assert quiet.stderr.strip() == "ganforge: error: train.batch_size must be > 0, got -3"
    loud = _run_cli("--debug", "train", "--config", str(bad), "--dry-run")
    assert loud.returncode != 0 and "Traceback (most recent call last)" in loud.stderr
    assert "ConfigError: train.batch_size must be > 0" in loud.stderr


# --------------------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fuzz-ckpt") / "run"
    raw = tiny_config(train={"steps": 2, "log_every": 1, "sample_every": 2, "checkpoint_every": 2})
    train(config_from_dict(raw), run)
    return run / "checkpoints" / "last.pt"


@FUZZ
@given(data=st.data())
def test_damaged_checkpoints_are_refused_cleanly(tmp_path, good_checkpoint, data):
    """Truncated, bit-flipped, overwritten or random files: CheckpointError or a checkpoint that still loads;
    `ganforge generate` either works or prints one line."""
    blob = bytearray(good_checkpoint.read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "splice", "random"]))
    if how == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif how == "flip":
        for pos in data.draw(st.lists(st.integers(0, len(blob) - 1), min_size=1, max_size=8)):
            blob[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "splice":
        start = data.draw(st.integers(0, len(blob) - 1))
        junk = data.draw(st.binary(min_size=1, max_size=64))
        blob[start : start + len(junk)] = junk
    else:
        blob = bytearray(data.draw(st.binary(max_size=512)))
    path = tmp_path / "damaged.pt"
    path.write_bytes(bytes(blob))
    try:
        state = load_checkpoint(path)
    except CheckpointError as err:
        assert_one_line(str(err))
    else:
        assert state["format"] == "ganforge-checkpoint"
    try:
        load_generator(path)
    except CheckpointError as err:
        assert_one_line(str(err))
    except ConfigError as err:  # a damaged config text inside a checkpoint that otherwise loads
        assert_one_line(str(err))
    status, _, err = cli(["generate", str(path), "--num", "2", "--format", "npz", "--overwrite",
                          "--out", str(tmp_path / "out.npz")])
    if status != 0:
        assert_clean_refusal(status, err)


def test_fuzzed_checkpoint_fixture_is_valid(good_checkpoint):
    assert load_checkpoint(good_checkpoint)["step"] == 2
    assert isinstance(load_generator(good_checkpoint)(torch.zeros(3, 4)), torch.Tensor)
