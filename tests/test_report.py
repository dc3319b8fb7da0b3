"""Loggers (--logger tensorboard|jsonl|none) and `ganforge report`: the HTML page, the GIF, partial runs, Chromium."""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest
from PIL import Image

from browser import Browser, need_chromium, pixel_variety
from ganforge.cli import main
from ganforge.errors import ConfigError, GanforgeError
from ganforge.reporting import report, write_report
from ganforge.train.health import REMEDIES
from tiny_runs import POINTS_RUN, train_run, trained


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A finished conditional DCGAN run that also logged to TensorBoard."""
    return trained("image", tmp_path_factory, logger="tensorboard")


@pytest.fixture(scope="module")
def points_run(tmp_path_factory):
    return trained("points", tmp_path_factory)


def _copy(run, tmp_path):
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


# ------------------------------------------------------------------------------------------------ loggers


def test_tensorboard_logger_writes_scalars_events_and_grids(image_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((image_run / "tb").glob("events.out.tfevents.*"))
    assert files, "no TensorBoard event file"
    acc = EventAccumulator(str(image_run / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("loss/loss_d", "loss/loss_g", "D/d_real", "D/d_fake", "grad/grad_norm_g", "grad/grad_norm_d",
                "lr/lr_g", "lr/lr_d", "train/diversity", "perf/images_per_s"):
        assert tag in tags, tag
    ticks = [json.loads(line) for line in (image_run / "metrics.jsonl").read_text().splitlines()]
    ticks = [t for t in ticks if "event" not in t]
    logged = [(e.step, e.value) for e in acc.Scalars("loss/loss_d")]
    assert [s for s, _ in logged] == [t["step"] for t in ticks]  # the same records as the JSONL
    assert logged[-1][1] == pytest.approx(ticks[-1]["loss_d"], rel=1e-6)
    images = acc.Images("samples")
    assert [i.step for i in images] == [4, 8, 12]
    with Image.open(io.BytesIO(images[-1].encoded_image_string)) as im:
        with Image.open(image_run / "samples" / "step-00000012.png") as grid:
            assert im.size == grid.size


def test_tensorboard_logger_records_eval_and_health_events(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ganforge.train.loggers import build_logger

    logger = build_logger("tensorboard", tmp_path)
    logger.write({"step": 10, "event": "eval", "fid": 12.5, "seconds": 1.0})
    logger.write({"step": 20, "event": "mode_collapse", "message": "diversity 0.02", "action": "warn"})
    logger.close()
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert [(s.step, s.value) for s in acc.Scalars("eval/fid")] == [(10, 12.5)]
    assert [(s.step, s.value) for s in acc.Scalars("health/mode_collapse")] == [(20, 1.0)]
    assert "health/text_summary" in acc.Tags()["tensors"]  # the message, as text


def test_jsonl_and_none_write_no_tensorboard_files_and_the_same_jsonl(points_run, tmp_path):
    assert not (points_run / "tb").exists()  # the default (jsonl)
    run = train_run(POINTS_RUN, tmp_path / "none", logger="none")
    assert not (run / "tb").exists()
    keys = lambda path: [sorted(json.loads(line)) for line in path.read_text().splitlines()]  # noqa: E731
    assert keys(run / "metrics.jsonl") == keys(points_run / "metrics.jsonl")


def test_logger_may_change_on_resume(points_run, tmp_path, capsys):
    run = _copy(points_run, tmp_path)
    assert main(["train", "--resume", str(run), "--steps", "50", "--logger", "tensorboard"]) == 0
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert "logger: tensorboard" in (run / "config.yaml").read_text()


def test_logger_flag_and_older_tensorboard_key(tmp_path, capsys):
    from ganforge.config import config_from_dict

    assert main(["train", "--dry-run", "--logger", "tensorboard"]) == 0
    assert "logger: tensorboard" in capsys.readouterr().out
    old = config_from_dict({"train": {"tensorboard": True}})  # written before train.logger existed
    assert old.train.logger_name == "tensorboard"
    with pytest.raises(ConfigError, match="train.logger must be one of jsonl, tensorboard, none"):
        config_from_dict({"train": {"logger": "wandb"}})


def test_missing_tensorboard_is_one_clear_error(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    out = tmp_path / "run"
    code = main(["train", "--preset", "toy-ring", "--steps", "2", "--logger",
                 "tensorboard", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == "ganforge: error: --logger tensorboard needs the tensorboard package: pip install " \
                  "'ganforge[tensorboard]'"
    assert not (out / "checkpoints").exists()  # refused before training


# ------------------------------------------------------------------------------------------------ report


def test_report_cli_writes_a_self_contained_page_and_gif(image_run, tmp_path, capsys):
    run = _copy(image_run, tmp_path)
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {run / 'report.html'} and {run / 'report-progress.gif'}"
    page = (run / "report.html").read_text()
    # Nothing is fetched from anywhere: every src/href is a data: URI or an in-page anchor, and the page's
    # Content-Security-Policy forbids network loads.
    for ref in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert ref.startswith(("data:image/png;base64,", "#")), ref[:60]
    assert "default-src 'none'" in page
    assert page.count('class="frame"') == 3  # the grids of steps 4, 8, 12
    assert 'id="final"' in page and "step 12" in page
    for title in ("Losses", "D outputs", "Gradient norms", "Learning rates", "Sample diversity"):
        assert f'aria-label="{title}' in page
    assert "model:\n  family: dcgan" in page  # the config
    with Image.open(run / "report-progress.gif") as gif:
        assert gif.n_frames == 3
        with Image.open(run / "samples" / "step-00000012.png") as grid:
            assert gif.size[0] == grid.size[0]
    # Elsewhere, with fewer frames: the first and the last grid.
    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--gif", str(tmp_path / "p.gif"),
                 "--max-frames", "2"]) == 0
    assert re.findall(r'class="frame" data-step="(\d+)"', (tmp_path / "r.html").read_text()) == ["4", "12"]
    with Image.open(tmp_path / "p.gif") as gif:
        assert gif.n_frames == 2
    assert main(["report", str(run), "--max-frames", "0"]) == 2


def test_report_shows_health_events_with_remedies_and_evaluations(points_run, tmp_path):
    run = _copy(points_run, tmp_path)
    with open(run / "metrics.jsonl", "a") as f:  # a health event as the trainer logs one
        f.write(json.dumps({"step": 30, "event": "oscillation", "message": "loss_d swings 5 times",
                            "action": "warn"}) + "\n")
    page = report(run, tmp_path / "r.html", gif=False).read_text()
    assert not (tmp_path / "r-progress.gif").exists()
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [e["step"] for e in evals] == [20, 40]
    table = page.split('id="eval-table"')[1].split("</table>")[0]
    for key in ("modes", "high_quality", "reverse_kl"):
        assert f"<th>{key}</th>" in table
    assert f"<td>{evals[-1]['modes']:.4g}</td>" in table
    health = page.split('id="health-events"')[1]
    assert "oscillation" in health and "loss_d swings 5 times" in health
    for remedy in REMEDIES["oscillation"]:
        assert remedy.replace("'", "&#x27;") in health
    assert 'class="marker"' in page  # the event marked on the loss plot


def test_report_of_a_run_still_training_or_killed(image_run, tmp_path):
    run = _copy(image_run, tmp_path)
    (run / "health.txt").unlink()
    (run / "samples" / "step-00000012.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # being written
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # torn
    html, gif = write_report(run)
    page = html.read_text()
    assert "training (or stopped in the last 2 minutes): a snapshot at step 8 of 12" in page  # written just now
    assert page.count('class="frame"') == 2  # the half-written grid is left out
    with Image.open(gif) as im:
        assert im.n_frames == 2
    import os
    import time

    old = time.time() - 3600
    os.utime(run / "metrics.jsonl", (old, old))
    os.utime(run / "config.yaml", (old, old))
    assert "stopped at step 8 of 12 (interrupted" in report(run).read_text()  # and refreshed in place


def test_report_of_a_run_killed_before_its_first_tick(tmp_path):
    run = tmp_path / "early"
    run.mkdir()
    (run / "config.yaml").write_text("train:\n  steps: 100\n")
    page = report(run).read_text()
    assert "No ticks logged yet" in page and "No sample grids yet" in page
    assert not list(run.glob("*.gif"))


def test_report_refuses_bad_input_and_foreign_files(tmp_path, image_run, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing is not a directory")
    assert main(["report", str(tmp_path)]) == 2
    assert "not a ganforge run directory" in capsys.readouterr().err
    mine = tmp_path / "mine.html"
    mine.write_text("my notes")
    with pytest.raises(GanforgeError, match="is not a ganforge report; pass --overwrite"):
        report(image_run, mine, gif=False)
    assert mine.read_text() == "my notes"
    report(image_run, mine, gif=False, overwrite=True)
    report(image_run, mine, gif=False)  # now ours: replaced without --overwrite


# ------------------------------------------------------------------------------------------------ Chromium


def test_report_renders_in_headless_chromium(image_run, tmp_path):
    executable = need_chromium()
    html = report(_copy(image_run, tmp_path), gif=False)
    with Browser(executable) as browser:
        browser.open(html.as_uri())
        lines = browser.evaluate("document.querySelectorAll('svg.plot polyline.series').length")
        assert lines >= 10  # losses, D outputs, grad norms, lr, diversity, throughput
        drawn = browser.evaluate("Array.from(document.querySelectorAll('svg.plot')).every("
                                 "s => s.getBoundingClientRect().width > 100 && s.getBoundingClientRect().height > 50)")
        assert drawn
        sizes = browser.evaluate("Array.from(document.querySelectorAll('#frames img, #final'))"
                                 ".map(i => [i.complete, i.naturalWidth])")
        assert sizes and all(complete and width > 0 for complete, width in sizes)  # the data: URIs decode
        visible = "Array.from(document.querySelectorAll('#frames img')).findIndex(i => !i.hidden)"
        assert browser.evaluate(visible) == 2
        browser.evaluate("(() => { const s = document.getElementById('frame'); s.value = 0;"
                         " s.dispatchEvent(new Event('input')); })()")  # the slider shows the first grid
        assert browser.evaluate(visible) == 0
        assert browser.evaluate("document.getElementById('frame-step').textContent") == "step 4"
        assert pixel_variety(browser.screenshot()) > 50  # not blank
        assert all(url.startswith(("file:", "data:")) for url in browser.requests), "the page fetched something"
