"""Every command the README shows is run, so the docs cannot rot.

How the harness reads the README:
- Shell blocks (fenced with no language, `bash`, `sh` or `console`): each line, joined with its `\\`
  continuations, split at `&&`; the `ganforge ...` parts run (a `$ ` prompt is dropped; `torchrun ... -m ganforge`
  runs as plain `ganforge`, one process). Other parts (`python3 -m venv`, `pip install`, ...), output lines and
  lines with a `...` or an upper-case placeholder (HOST) are not commands.
- Python blocks run as they are, except those that REUSED names as run by another test.
- The families/presets tables between the catalog markers must equal `ganforge presets --markdown`.

Every command runs in order, in-process (`ganforge.cli.main`), in one scratch folder shared by the whole README
(so `train --out runs/grid` then `train --resume runs/grid` work), with:
- REWRITES, per subcommand, to keep it tiny: trainings run 2 steps on <= 256 examples (a resume 2 more);
  generate/evaluate/interpolate draw few samples; Inception features become the fast domain features (the
  Inception path has its own tests); a training's --image-size over 64 becomes 32. A subcommand missing from
  REWRITES fails the test with a message saying to add it (a command that would not end, like a server, gets
  PARSE_ONLY: its arguments are checked, nothing runs).
- an `--out` that an earlier line (often another section's example) already wrote gets `--overwrite`, where the
  subcommand has it: the sections are separate examples that happen to share file names (grid.png, runs/ring).
- fixtures for what a command reads but the README never made: a run directory named in a command
  (`fixture_run`: a tiny run on the points or images its name suggests, conditional when the command asks for a
  class), the files and folders in FILE_FIXTURES (input images for classify/translate/upscale), ../shared (the
  real datasets) and ~ (a folder of images, and A|B pairs in ~/facades), and a placeholder MNIST domain
  classifier (untrained: the metrics only need features).
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import INCEPTION, REPO, SHARED, SHARED_DATA
from ganforge.cli import build_parser, main
from tiny_runs import tiny_run

README = REPO / "README.md"
SHELL_LANGS = ("", "bash", "sh", "console", "shell")
TINY_TRAIN = ["--set", "data.limit=256", "--set", "train.batch_size=16", "--set", "train.log_every=1",
              "--set", "train.progress=false", "--set", "data.num_points=512"]
REUSED = {"## Adding a model family": "tests/test_family_api.py::test_readme_family_example_trains"}
PARSE_ONLY = "parse-only"

# ------------------------------------------------------------------------------------------ parsing


def readme_blocks(text: str) -> list[tuple[str, str, int, str]]:
    """(language, section heading, first line number, body) of every fenced block."""
    blocks, heading = [], ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.strip() if line.startswith("## ") else heading
        if line.startswith("```"):
            lang = line[3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append((lang, heading, i + 2, "\n".join(lines[i + 1:end])))
            i = end
        i += 1
    return blocks


def shell_commands(body: str, first_line: int) -> list[tuple[int, list[str]]]:
    """(line number, argv after `ganforge`) of each ganforge command in a shell block."""
    found, pending, start = [], "", 0
    for offset, raw in enumerate(body.splitlines()):
        line = raw.rstrip()
        if not pending:
            start = first_line + offset
            if line.startswith("$ "):
                line = line[2:]
            elif not re.match(r"(ganforge|torchrun|python3?|pip|\.)(\s|$)", line.strip()):
                continue  # output, prose
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command, pending = pending + line, ""
        for part in command.split("&&"):
            words = shlex.split(part, comments=True)
            if "..." in part or any(re.fullmatch(r"[A-Z]{3,}", w) for w in words):
                continue  # a placeholder, not a command
            if words[:1] == ["torchrun"] and "-m" in words:
                words = words[words.index("-m") + 1:]
            if words[:1] == ["ganforge"]:
                found.append((start, words[1:]))
    return found


def readme_commands() -> list[tuple[str, object]]:
    """(test id, argv list or python source) in README order."""
    out = []
    for lang, heading, line, body in readme_blocks(README.read_text()):
        if lang in SHELL_LANGS:
            out += [(f"L{n}-{' '.join(argv[:1])}", argv) for n, argv in shell_commands(body, line)]
        elif lang == "python" and heading not in REUSED:
            out.append((f"L{line}-python", body))
    return out


# ------------------------------------------------------------------------------------------ rewrites


def _value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def _replace(argv: list[str], flag: str, value: str | None) -> list[str]:
    """argv with `flag X` set to `flag value` (added if missing; removed if value is None)."""
    argv = list(argv)
    if flag in argv:
        i = argv.index(flag)
        del argv[i:i + 2]
    return argv if value is None else argv + [flag, value]


def rewrite_train(argv: list[str], index: int) -> list[str]:
    if "--dry-run" in argv:
        return argv
    if "--resume" in argv:
        return _replace(argv, "--steps", "4") if "--steps" in argv or "--epochs" in argv else argv
    argv = _replace(_replace(argv, "--epochs", None), "--steps", "2")
    size = _value(argv, "--image-size")
    if size is not None and max(int(side) for side in size.split("x")) > 64:
        argv = _replace(argv, "--image-size", "32")
    if "--out" not in argv:  # runs/PRESET-TIMESTAMP would clash between two lines in the same second
        argv += ["--out", f"runs/readme-{index}"]
    return argv + TINY_TRAIN


def rewrite_evaluate(argv: list[str], index: int) -> list[str]:
    argv = _replace(argv, "--num", "16")
    if _value(argv, "--inception") is not None:
        assert Path(_value(argv, "--inception")).exists(), "the README's --inception file"
    if _value(argv, "--features") == "inception":
        argv = _replace(_replace(argv, "--features", "domain"), "--inception", None)
    return _replace(argv, "--num-real", "64") + ["--no-progress"]


def cap(flag: str, most: int) -> Callable[[list[str], int], list[str]]:
    def rewrite(argv: list[str], index: int) -> list[str]:
        value = _value(argv, flag)
        return _replace(argv, flag, str(min(int(value), most))) if value is not None else argv
    return rewrite


def as_is(argv: list[str], index: int) -> list[str]:
    return argv


def _overwrite_if_written(argv: list[str]) -> list[str]:
    """argv + --overwrite when its --out exists already and the subcommand takes --overwrite."""
    out = _value(argv, "--out")
    if out is None or "--overwrite" in argv or not Path(out).expanduser().exists():
        return argv
    options = build_parser()._subparsers._group_actions[0].choices[argv[0]]._option_string_actions
    return argv + ["--overwrite"] if "--overwrite" in options else argv


# Per subcommand: how the README's line is made tiny (or PARSE_ONLY). New commands add a row here.
REWRITES: dict[str, Callable[[list[str], int], list[str]] | str] = {
    "train": rewrite_train,
    "generate": cap("--num", 16),
    "evaluate": rewrite_evaluate,
    "interpolate": cap("--steps", 4),
    "export": as_is,
    "presets": as_is,
    "translate": as_is,
    "upscale": as_is,
    "report": as_is,
    "classify": as_is,
    "style-mix": as_is,
    "serve": PARSE_ONLY,  # a server does not return: its options are checked, it is not started
}

# ------------------------------------------------------------------------------------------ fixtures

POINT_NAMES = ("grid", "ring", "spiral", "d-wins", "points")


def fixture_run(path: Path, argv: list[str]) -> None:
    """A tiny run at `path`: points if its name says so, MNIST if it says mnist, else digits images."""
    name = path.name
    conditional = "--class" in argv or "--label" in argv or "cond" in name
    if any(word in name for word in POINT_NAMES):
        tiny_run(path, "points")
    elif "mnist" in name:
        tiny_run(path, data={"name": "mnist", "image_size": None, "root": str(SHARED_DATA), "download": False},
                 model={"conditional": conditional})
    else:
        tiny_run(path, model={"conditional": conditional})


def _samples_npz(path: Path) -> None:
    images = torch.randint(0, 256, (32, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    np.savez_compressed(path, images=images.numpy())


def _pngs(folder: Path, count: int, shape: tuple[int, ...], seed: int = 0) -> None:
    """`count` random PNGs of `shape` ((H, W) gray or (H, W, 3) colour) in `folder`."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i}.png")


def _labelled_digits(folder: Path) -> None:
    for label in range(10):  # class subfolders 0/ .. 9/ give the labels
        _pngs(folder / str(label), 2, (28, 28), seed=label)


FILE_FIXTURES: dict[str, Callable[[Path], None]] = {
    "samples.npz": _samples_npz,  # as `generate --format npz` writes (MNIST-shaped)
    "inception-2015-12-05.pt": lambda path: path.symlink_to(INCEPTION),
    "my_digits": _labelled_digits,  # classify: a labelled folder of MNIST-sized digits
    "my_edges": lambda path: _pngs(path, 3, (28, 28)),  # translate with pix2pix-edges (gray 28x28)
    "digits": lambda path: _pngs(path, 3, (28, 28, 3)),  # translate --direction b2a with cyclegan-mnistm (RGB)
    "small": lambda path: _pngs(path, 3, (7, 7)),  # upscale with srgan-mnist (gray 7x7 -> 28x28)
}


def needs_run(argv: list[str]) -> Path | None:
    """The run directory a generate/evaluate/interpolate/export/... line reads (its first positional)."""
    if argv[0] in ("train", "presets") or len(argv) < 2 or argv[1].startswith("-"):
        return None
    return Path(argv[1])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    ws = root / "ws"
    ws.mkdir()
    (root / "shared").symlink_to(SHARED)  # ../shared/data as the README says
    home = root / "home"
    pictures = home / "pictures"
    pictures.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(20):  # more than a batch
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(pictures / f"{i}.png")
    _pngs(home / "facades", 16, (32, 64, 3))  # A|B side by side (two 32x32 halves), for `train --dataset paired`
    for name, make in FILE_FIXTURES.items():
        make(ws / name)
    return ws, home


@pytest.fixture(scope="module")
def readme_env(workspace):
    from ganforge.metrics.domain import DomainClassifier, classifier_path, save_classifier

    ws, home = workspace
    mp = pytest.MonkeyPatch()
    mp.chdir(ws)
    mp.setenv("HOME", str(home))
    mp.setenv("GANFORGE_CACHE", str(ws.parent / "cache"))  # set before the per-test cache fixture, which keeps it
    mp.setenv("GANFORGE_DATA", str(SHARED_DATA))  # datasets named without --data-root are "downloaded" already
    torch.manual_seed(0)
    path = classifier_path("mnist")
    if not path.exists():
        save_classifier(DomainClassifier(num_classes=10).eval(), path, {"dataset": "mnist", "note": "README test"})
    yield ws
    mp.undo()


# ------------------------------------------------------------------------------------------ the tests

COMMANDS = readme_commands()


def test_the_readme_has_commands_for_every_subcommand():
    shown = {argv[0] for _, argv in COMMANDS if isinstance(argv, list)}
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    assert subcommands - {"translate", "upscale"} <= shown, "subcommands the README never shows"


def test_catalog_tables_match_the_registry():
    from ganforge.catalog import families_table, presets_table

    text = README.read_text()
    start = text.index("<!-- catalog:start")
    body = text[text.index("-->", start) + 3:text.index("<!-- catalog:end -->")].strip()
    assert body == families_table() + "\n\n" + presets_table(), "run `ganforge presets --markdown` into the README"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="the README's commands use ../shared/data")
@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[cid for cid, _ in COMMANDS])
def test_readme_command(index, readme_env, capsys, monkeypatch):
    _, command = COMMANDS[index]
    if isinstance(command, str):
        run_python(command, monkeypatch)
        return
    argv = list(command)
    rewrite = REWRITES.get(argv[0])
    assert rewrite is not None, f"add a rewrite for `ganforge {argv[0]}` to REWRITES in tests/test_readme.py"
    if rewrite == PARSE_ONLY:
        build_parser().parse_args(argv)
        return
    run = needs_run(argv)
    if run is not None and not run.exists() and "--fake" not in argv:
        fixture_run(run, argv)
    argv = _overwrite_if_written(rewrite(argv, index))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0, f"`ganforge {' '.join(command)}` failed (run as {argv}): {err.strip()[-500:]}"


def run_python(source: str, monkeypatch) -> None:
    """Run a README Python block with every ganforge.train call made tiny (2 steps) in the scratch folder."""
    import ganforge
    from ganforge.api import train as real_train
    from ganforge.config import Config

    def tiny_train(config=None, run_dir=None, **kwargs):
        if isinstance(config, Config):
            config = copy.deepcopy(config)
            config.train.steps, config.train.epochs, config.train.progress = 2, None, False
            config.data.limit, config.train.log_every = 256, 1
        else:
            kwargs["steps"] = 2
            kwargs["overrides"] = list(kwargs.get("overrides", [])) + ["data.limit=256", "train.progress=false",
                                                                        "train.log_every=1"]
        return real_train(config, run_dir, overwrite=True, **kwargs)

    monkeypatch.setattr(ganforge, "train", tiny_train)
    exec(compile(source, "README.md", "exec"), {"__name__": "readme"})


def test_the_harness_fails_on_a_wrong_command(readme_env, capsys):
    # The same path the README lines take: a misspelt flag or key must fail, not pass silently.
    with pytest.raises(SystemExit):
        main(rewrite_train(["train", "--preset", "default", "--stpes", "3"], 999))
    assert main(rewrite_train(["train", "--set", "train.lr_gg=1"], 998)) == 2
    assert "unknown config key 'train.lr_gg'" in capsys.readouterr().err
    fresh = ["generate", "runs/grid", "--out", "never-written.png"]
    assert _overwrite_if_written(fresh) == fresh  # only an output an earlier line wrote is overwritten
    cmds = shell_commands("$ ganforge train --preset toy-ring \\\n      --steps 5 --out x\nsome output\n"
                          "python3 -m venv .venv && . .venv/bin/activate && ganforge presets  # note\n"
                          "torchrun --nproc-per-node 2 -m ganforge train --out y\nganforge train ...", 10)
    assert cmds == [(10, ["train", "--preset", "toy-ring", "--steps", "5", "--out", "x"]), (13, ["presets"]),
                    (14, ["train", "--out", "y"])]
