"""`ganforge report`: one self-contained HTML page about a run, and a GIF of its training progress.

The page needs no network and no files beside it: plots are inline SVG drawn here, images are data: URIs, and
the only script (the sample-grid slider and its play button) is inline. It reads what the trainer leaves in
the run directory (config.yaml, metrics.jsonl, samples/step-*.png, health.txt), so it also works on a run that
is still training (a snapshot; a half-written last line or grid is skipped) and on a run killed mid-way.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_write_bytes
from ganforge.train.health import DIAGNOSES, REMEDIES
from ganforge.train.stats import read_metrics

__all__ = ["report", "write_report", "progress_gif"]

GENERATOR_MARK = "ganforge report"  # in the HTML's <meta name="generator"> and the GIF's comment: ours to replace
LIVE_SECONDS = 120  # a run whose metrics.jsonl changed this recently is reported as still training
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")

# Tick stats plotted together, in this order; keys matching none of them get a plot each.
PLOT_GROUPS: tuple[tuple[str, str, bool], ...] = (  # (title, key regex, log scale)
    ("Losses", r"loss_.*", False),
    ("D outputs: D(x), D(G(z)) and accuracies", r"d_(real|fake|acc_real|acc_fake)", False),
    ("Gradient norms", r"grad_norm_.*", True),
    ("Sample diversity (of real data's)", r"diversity", False),
    ("Learning rates", r"lr_.*", False),
    ("Throughput (images/s)", r"images_per_s", False),
)
SKIPPED_KEYS = {"step", "kimg", "event"}


def report(run_dir: str | Path, out: str | Path | None = None, *, gif: str | Path | bool | None = None,
           max_frames: int = 48, overwrite: bool = False) -> Path:
    """Write a self-contained HTML report of a run (default RUN_DIR/report.html) and return its path.

    `gif`: where the training-progress GIF goes (default: beside the HTML, `<name>-progress.gif`); False for
    none. At most `max_frames` sample grids (evenly spaced, always the last) go into the page and the GIF.
    Files a previous report wrote are replaced; any other existing file only with `overwrite`.
    """
    return write_report(run_dir, out, gif=gif, max_frames=max_frames, overwrite=overwrite)[0]


def write_report(run_dir: str | Path, out: str | Path | None = None, *, gif: str | Path | bool | None = None,
                 max_frames: int = 48, overwrite: bool = False) -> tuple[Path, Path | None]:
    """As `report`; returns (HTML path, GIF path or None when there is no grid yet or gif=False)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GanforgeError(f"{run_dir} is not a directory")
    if not (run_dir / "config.yaml").exists() and not (run_dir / "metrics.jsonl").exists():
        raise GanforgeError(f"{run_dir} is not a ganforge run directory (no config.yaml or metrics.jsonl)")
    if max_frames < 1:
        raise GanforgeError(f"max_frames must be >= 1, got {max_frames}")
    out = Path(out) if out is not None else run_dir / "report.html"
    gif_path = None if gif is False else Path(gif) if gif not in (None, True) else \
        out.with_name(f"{out.stem}-progress.gif")
    _check_target(out, overwrite, _is_our_html)
    if gif_path is not None:
        _check_target(gif_path, overwrite, _is_our_gif)

    run = RunSnapshot.read(run_dir)
    frames = _pick(run.grids, max_frames)
    page = render_html(run, frames)
    atomic_write_bytes(out, page.encode())
    if gif_path is None or not frames:
        return out, None
    atomic_write_bytes(gif_path, progress_gif([data for _, data in frames], [step for step, _ in frames]))
    return out, gif_path


# ------------------------------------------------------------------------------------------------ reading


class RunSnapshot:
    """What a run directory holds right now."""

    def __init__(self, run_dir: Path, config_text: str, config: dict[str, Any], records: list[dict[str, Any]],
                 grids: list[tuple[int, bytes]], health_text: str | None, modified: float) -> None:
        self.run_dir = run_dir
        self.config_text = config_text  # config.yaml as written (empty if missing)
        self.config = config  # parsed, {} if missing or unreadable
        self.ticks = [r for r in records if "event" not in r and "step" in r]
        self.events = [r for r in records if r.get("event") not in (None, "eval")]
        self.evals = [r for r in records if r.get("event") == "eval"]
        self.grids = grids  # (step, PNG bytes), by step
        self.health_text = health_text  # the end-of-run health summary
        self.modified = modified  # newest mtime among the files read

    @classmethod
    def read(cls, run_dir: Path) -> RunSnapshot:
        import yaml

        config_path, metrics_path = run_dir / "config.yaml", run_dir / "metrics.jsonl"
        config_text = config_path.read_text(errors="replace") if config_path.exists() else ""
        try:
            config = yaml.safe_load(config_text) or {}
        except yaml.YAMLError:
            config = {}
        records = read_metrics(metrics_path) if metrics_path.exists() else []
        grids = []
        for path in sorted((run_dir / "samples").glob("step-*.png")):
            match = re.fullmatch(r"step-(\d+)\.png", path.name)
            data = path.read_bytes()
            if match and _is_whole_png(data):  # a grid being written right now is skipped
                grids.append((int(match.group(1)), data))
        health_path = run_dir / "health.txt"
        health_text = health_path.read_text(errors="replace") if health_path.exists() else None
        modified = max((p.stat().st_mtime for p in (config_path, metrics_path) if p.exists()), default=0.0)
        return cls(run_dir, config_text, config if isinstance(config, dict) else {}, records, grids, health_text,
                   modified)

    def section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def last_step(self) -> int:
        steps = [r["step"] for r in self.ticks] + [s for s, _ in self.grids]
        return max(steps, default=0)

    @property
    def total_steps(self) -> int | None:
        train = self.section("train")
        return None if train.get("epochs") else train.get("steps")

    def status(self, now: float | None = None) -> str:
        """finished, still training, stopped early (why) or stopped (killed) — what the files say."""
        now = time.time() if now is None else now
        total, step = self.total_steps, self.last_step
        stops = [e for e in self.events if e.get("action") == "stop" or e.get("event") == "early_stopping"]
        if stops:
            return f"stopped early at step {step}: {stops[-1]['event']}"
        if total is not None and step >= total:
            return f"finished: {step} steps"
        of = f" of {total}" if total is not None else ""
        if now - self.modified < LIVE_SECONDS:
            return f"training (or stopped in the last {LIVE_SECONDS // 60} minutes): a snapshot at step {step}{of}"
        return f"stopped at step {step}{of} (interrupted, or still to resume)"


def _is_whole_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data.rstrip(b"\x00")[-8:-4] == b"IEND"


def _pick(items: Sequence, limit: int) -> list:
    """At most `limit` items, evenly spaced, always including the first and the last."""
    if len(items) <= limit:
        return list(items)
    if limit == 1:
        return [items[-1]]
    idx = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in idx]


def _check_target(path: Path, overwrite: bool, is_ours) -> None:
    if path.exists() and path.is_dir():
        raise GanforgeError(f"{path} is a directory; name a file")
    if path.exists() and not overwrite and not is_ours(path):
        raise GanforgeError(f"{path} exists and is not a ganforge report; pass --overwrite to replace it")


def _is_our_html(path: Path) -> bool:
    with open(path, "rb") as f:
        return f'<meta name="generator" content="{GENERATOR_MARK}">'.encode() in f.read(4096)


def _is_our_gif(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.info.get("comment") == GENERATOR_MARK.encode()
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ the GIF


def progress_gif(pngs: Sequence[bytes], steps: Sequence[int], *, frame_ms: int = 250, hold_ms: int = 1500) -> bytes:
    """An animated GIF of sample grids (PNG bytes), each captioned with its step; the last frame held longer."""
    from PIL import Image, ImageDraw

    if not pngs:
        raise GanforgeError("no sample grids to animate")
    frames = []
    for data, step in zip(pngs, steps):
        with Image.open(io.BytesIO(data)) as im:
            grid = im.convert("RGB")
        caption_h = 14
        frame = Image.new("RGB", (grid.width, grid.height + caption_h), "white")
        frame.paste(grid, (0, 0))
        ImageDraw.Draw(frame).text((3, grid.height + 1), f"step {step}", fill="black")
        frames.append(frame)
    size = frames[-1].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   comment=GENERATOR_MARK.encode(), optimize=False)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ plots


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


def svg_plot(title: str, series: dict[str, list[tuple[float, float | None]]], *, log_y: bool = False,
             markers: Sequence[tuple[float, str]] = (), width: int = 560, height: int = 240) -> str:
    """A line plot as inline SVG: one polyline per series (gaps at None or non-finite values, and where the step
    goes back after a rollback), nice axis ticks, a legend, and dashed vertical markers (health events)."""
    left, right, top, bottom = 62, 12, 38 + 13 * ((len(series) - 1) // 4), 30
    height += top - 38
    pw, ph = width - left - right, height - top - bottom
    transform = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    points = [(x, transform(y)) for pts in series.values() for x, y in pts if _plottable(y, log_y)]
    if not points:
        return (f'<svg class="plot empty" width="{width}" height="60" role="img"><text x="8" y="20" '
                f'font-weight="bold">{html.escape(title)}</text><text x="8" y="44">no values yet</text></svg>')
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) * 0.1 or 1), y1 + (abs(y1) * 0.1 or 1)
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [f'<svg class="plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="8" y="13" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>']
    y_ticks = _nice_ticks(math.floor(y0), math.ceil(y1), 4) if log_y else _nice_ticks(y0, y1)
    for t in y_ticks:
        if y0 <= t <= y1:
            label = _fmt(10**t) if log_y else _fmt(t)
            parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
                         f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">{label}</text>')
    for t in _nice_ticks(x0, x1):
        parts.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle" class="tick">{_fmt(t)}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 2}" text-anchor="end" class="tick">step</text>')
    for x, label in markers:
        if x0 <= x <= x1:
            parts.append(f'<line class="marker" x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{top}" y2="{top + ph}" '
                         f'stroke="#c00" stroke-dasharray="4 3"><title>{html.escape(label)}</title></line>')
    legend_x, legend_y = left, 29
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        for segment in _segments(pts, log_y):
            coords = " ".join(f"{sx(x):.1f},{sy(transform(y)):.1f}" for x, y in segment)
            if len(segment) == 1:
                x, y = segment[0]
                parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(transform(y)):.1f}" r="2.5" fill="{color}"/>')
            parts.append(f'<polyline class="series" data-name="{html.escape(name)}" points="{coords}" fill="none" '
                         f'stroke="{color}" stroke-width="1.5"><title>{html.escape(name)}</title></polyline>')
        if legend_x + 24 + len(name) * 6.5 > width and legend_x > left:  # wrap the legend to a new row
            legend_x, legend_y = left, legend_y + 13
        parts.append(f'<rect x="{legend_x}" y="{legend_y - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{legend_x + 13}" y="{legend_y}" class="legend">{html.escape(name)}</text>')
        legend_x += 24 + len(name) * 6.5
    parts.append("</svg>")
    return "".join(parts)


def _plottable(y: Any, log_y: bool) -> bool:
    return isinstance(y, (int, float)) and math.isfinite(y) and (y > 0 or not log_y)


def _segments(points: list[tuple[float, Any]], log_y: bool) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    last_x = -math.inf
    for x, y in points:
        if not _plottable(y, log_y) or x < last_x:
            segments.append([])
        if _plottable(y, log_y):
            segments[-1].append((x, y))
        last_x = x
    return [s for s in segments if s]


def _tick_plots(run: RunSnapshot) -> list[str]:
    keys: list[str] = []
    for record in run.ticks:
        keys += [k for k, v in record.items() if k not in SKIPPED_KEYS and k not in keys and _numeric_or_none(v)]
    markers = [(e["step"], f"step {e['step']}: {e.get('event')}: {e.get('message', '')}") for e in run.events]
    plots, used = [], set()
    for title, pattern, log_y in PLOT_GROUPS:
        group = [k for k in keys if re.fullmatch(pattern, k)]
        used.update(group)
        if group:
            series = {k: [(r["step"], r.get(k)) for r in run.ticks if k in r] for k in group}
            plots.append(svg_plot(title, series, log_y=log_y, markers=markers if title == "Losses" else ()))
    for key in keys:
        if key not in used:
            plots.append(svg_plot(key, {key: [(r["step"], r.get(key)) for r in run.ticks if key in r]}))
    return plots


def _eval_keys(run: RunSnapshot) -> list[str]:
    keys: list[str] = []
    for record in run.evals:
        keys += [k for k, v in record.items() if k not in SKIPPED_KEYS | {"seconds"} and k not in keys
                 and _numeric_or_none(v)]
    return keys


def _numeric_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


# ------------------------------------------------------------------------------------------------ the page


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render_html(run: RunSnapshot, frames: list[tuple[int, bytes]]) -> str:
    e = html.escape
    name = run.run_dir.resolve().name
    data, model, train = run.section("data"), run.section("model"), run.section("train")
    facts = [("status", run.status()), ("family", model.get("family", "?")), ("dataset", data.get("name", "?")),
             ("loss", run.section("loss").get("name", "?")), ("batch size", train.get("batch_size", "?")),
             ("seed", train.get("seed", "?")), ("ticks logged", len(run.ticks)), ("sample grids", len(run.grids))]
    body = [f"<h1>{e(name)}</h1>",
            '<table class="facts">' + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in facts)
            + "</table>",
            '<nav><a href="#curves">curves</a> · <a href="#samples">samples</a> · <a href="#health">health</a> · '
            '<a href="#evaluation">evaluation</a> · <a href="#config">config</a></nav>']

    body.append('<h2 id="curves">Training curves</h2>')
    plots = _tick_plots(run)
    body.append('<div class="plots">' + "".join(plots) + "</div>" if plots else "<p>No ticks logged yet.</p>")

    body.append('<h2 id="samples">Samples from fixed noise</h2>')
    if frames:
        last_step, last_png = frames[-1]
        imgs = "".join(f'<img class="frame" data-step="{step}" alt="samples at step {step}" src="{_data_uri(png)}"'
                       f'{"" if i == len(frames) - 1 else " hidden"}>' for i, (step, png) in enumerate(frames))
        shown = f"{len(frames)} of {len(run.grids)} grids" if len(frames) < len(run.grids) else f"{len(frames)} grids"
        body.append(
            f'<h3>Evolution ({shown})</h3><div id="evolution"><div id="frames">{imgs}</div>'
            f'<div class="controls"><button id="play" type="button">play</button> '
            f'<input id="frame" type="range" min="0" max="{len(frames) - 1}" value="{len(frames) - 1}" '
            f'aria-label="grid"> <span id="frame-step">step {last_step}</span></div></div>'
            f'<h3>Final samples (step {last_step})</h3>'
            f'<img id="final" class="final" alt="final samples" src="{_data_uri(last_png)}">')
    else:
        body.append("<p>No sample grids yet.</p>")

    body.append('<h2 id="health">Training health</h2>')
    body.append(_health_html(run))

    body.append('<h2 id="evaluation">Evaluation</h2>')
    keys = _eval_keys(run)
    if run.evals and keys:
        header = "".join(f"<th>{e(k)}</th>" for k in ["step", *keys])
        rows = "".join("<tr>" + f"<td>{r['step']}</td>" + "".join(
            f"<td>{_fmt(r[k]) if isinstance(r.get(k), (int, float)) else '–'}</td>" for k in keys) + "</tr>"
            for r in run.evals)
        body.append(f'<table id="eval-table" class="grid"><tr>{header}</tr>{rows}</table>')
        if len(run.evals) > 1:
            body.append('<div class="plots">' + "".join(
                svg_plot(k, {k: [(r["step"], r.get(k)) for r in run.evals]}) for k in keys) + "</div>")
    else:
        body.append("<p>No evaluations in this run (set <code>eval.every</code> and <code>eval.metrics</code>, or "
                    "run <code>ganforge evaluate</code>).</p>")

    body.append('<h2 id="config">Config</h2>')
    body.append(f"<pre>{e(run.config_text) or '(no config.yaml)'}</pre>")
    body.append(f'<footer>Written {time.strftime("%Y-%m-%d %H:%M:%S")} by <code>ganforge report</code> from '
                f"{e(str(run.run_dir))}.</footer>")
    return _PAGE.format(title=e(f"{name} · ganforge report"), mark=GENERATOR_MARK, style=_STYLE,
                        body="\n".join(body), script=_SCRIPT)


def _health_html(run: RunSnapshot) -> str:
    e = html.escape
    parts = []
    if run.events:
        rows = "".join(
            f"<tr class=\"event\"><td>{ev['step']}</td><td>{e(str(ev.get('event')))}</td>"
            f"<td>{e(str(ev.get('message', '')))}</td><td>{e(str(ev.get('action') or ''))}</td></tr>"
            for ev in run.events)
        parts.append('<table id="health-events" class="grid"><tr><th>step</th><th>event</th><th>evidence</th>'
                     f"<th>action</th></tr>{rows}</table>")
        seen = [d for d in DIAGNOSES if any(ev.get("event") == d for ev in run.events)]
        for diag in seen:
            items = "".join(f"<li>{e(r)}</li>" for r in REMEDIES[diag])
            parts.append(f'<div class="remedies"><h3>{e(diag)}: what the literature suggests</h3><ul>{items}</ul>'
                         "</div>")
    else:
        parts.append("<p>No health events were logged.</p>")
    if run.health_text:
        parts.append(f"<h3>End-of-run summary (health.txt)</h3><pre>{e(run.health_text)}</pre>")
    return "".join(parts)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1240px}
h1{margin:0 0 8px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table.facts th{text-align:left;padding-right:12px;font-weight:600}
table.grid{border-collapse:collapse}table.grid td,table.grid th{border:1px solid #ccc;padding:3px 8px;
text-align:right}table.grid td:nth-child(2),table.grid td:nth-child(3){text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plot{background:#fff;border:1px solid #eee}
.plot text{font-size:11px;fill:#333}.plot .tick{font-size:10px;fill:#666}
#frames img,img.final{image-rendering:pixelated;min-width:256px;max-width:100%;border:1px solid #ddd}
.controls{margin:6px 0}#frame{width:320px;vertical-align:middle}
pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:480px}footer{margin-top:32px;color:#777}
"""

_SCRIPT = """
(function(){
  var frames = Array.prototype.slice.call(document.querySelectorAll('#frames img'));
  var slider = document.getElementById('frame'), label = document.getElementById('frame-step');
  var button = document.getElementById('play'), timer = null;
  function show(i){
    frames.forEach(function(f, j){ f.hidden = j !== i; });
    slider.value = i; label.textContent = 'step ' + frames[i].dataset.step;
  }
  if (frames.length) {
    slider.addEventListener('input', function(){ show(+slider.value); });
    button.addEventListener('click', function(){
      if (timer) { clearInterval(timer); timer = null; button.textContent = 'play'; return; }
      if (+slider.value === frames.length - 1) show(0);
      button.textContent = 'pause';
      timer = setInterval(function(){
        var next = +slider.value + 1;
        if (next >= frames.length) { clearInterval(timer); timer = null; button.textContent = 'play'; return; }
        show(next);
      }, 250);
    });
  }
  document.body.setAttribute('data-ready', '1');
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="{mark}">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'">
<title>{title}</title><style>{style}</style></head>
<body>
{body}
<script>{script}</script>
</body></html>
"""
