"""`ganforge serve`: a latent explorer in the browser, on starlette + uvicorn (the optional extra `serve`).

Why not Gradio: by default its page loads web fonts from Google's servers and it sends usage analytics, so running
fully offline means switching both off and re-checking each release for new outside calls; it is a large install
(a web framework, pandas and a bundled front end) that is not here already; and its Svelte front end is harder to
drive from a test than a plain page. This is one small page (inline script and style, nothing fetched from
elsewhere, a Content-Security-Policy that forbids it) on a maintained ASGI server, and every request is a plain
URL: `GET /api/sample?seed=3&class=1` returns a PNG, so the page, scripts and tests all use the same interface.

A run whose preset refines its samples (`sample.refine_steps`, ganforge.refine) is served refined, as `generate`
draws it: served from a run directory or checkpoint, the explorer keeps the run's D and moves each noise uphill on
it before decoding (samples and z-space interpolation at truncation 1); a save_pretrained folder keeps no D, so its
samples are plain. /api/info says which.

Every input is validated here, on the server: an unknown, malformed or out-of-range parameter is a 4xx answer
with a one-line message and the server keeps serving. Uploads are bounded in bytes and pixels; generation runs
under one lock, so any number of concurrent clients take turns on the model.
"""

from __future__ import annotations

import io
import math
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.models.sampler import NoiseSampler, Sampler, TranslationSampler
from ganforge.refine import Refinement

__all__ = ["BadRequest", "Explorer", "create_app", "run_in_background", "serve"]

MAX_SEED = 2**31 - 1  # seeds the page can hold exactly (JavaScript numbers) and torch accepts
MAX_IMAGES = 64  # images per sample request
MAX_POINTS = 10_000  # points per request for 2D models
MAX_SCALE = 8  # nearest-neighbour enlargement of returned images
MAX_QUERY = 4096  # characters of query string
MAX_PIXELS = 4096 * 4096  # largest image in or out: an upload (or its upscaled output) or a grid is refused above it


class BadRequest(Exception):
    """A request the explorer refuses: its message goes back to the client with `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Params:
    """A request's query parameters, read once each; whatever is left unread is an error naming it."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self._raw = dict(query)
        self._read: set[str] = set()

    def _get(self, name: str) -> str | None:
        self._read.add(name)
        value = self._raw.get(name)
        return None if value is None or value == "" else value

    def int(self, name: str, low: int, high: int, default: int | None = None) -> int | None:
        text = self._get(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise BadRequest(f"{name} must be an integer, got {text[:40]!r}") from None
        if not low <= value <= high:
            raise BadRequest(f"{name} must be in [{low}, {high}], got {value}")
        return value

    def float(self, name: str, low: float, high: float, default: float | None = None) -> float | None:
        text = self._get(name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise BadRequest(f"{name} must be a number, got {text[:40]!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise BadRequest(f"{name} must be in [{low:g}, {high:g}], got {text[:40]}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        text = self._get(name)
        if text is None:
            return default
        if text not in choices:
            raise BadRequest(f"{name} must be one of {', '.join(choices)}, got {text[:40]!r}")
        return text

    def present(self, name: str) -> bool:
        return self._raw.get(name) not in (None, "")

    def finish(self) -> None:
        unknown = sorted(set(self._raw) - self._read)
        if unknown:
            raise BadRequest(f"unknown parameter {unknown[0][:40]!r}; valid: {', '.join(sorted(self._read))}")


class Explorer:
    """What the pages ask of a sampler, validated; PNG bytes out. Thread-safe (one lock around the model)."""

    def __init__(self, sampler: Sampler, *, refine: Refinement | None = None,
                 max_upload_bytes: int = 8 * 2**20) -> None:
        if not isinstance(sampler, (NoiseSampler, TranslationSampler)):
            raise GanforgeError(f"the explorer serves noise and translation models; this is a {sampler.task} model")
        if refine is not None and not isinstance(sampler, NoiseSampler):
            raise GanforgeError(f"latent refinement moves noise; this is a {sampler.task} model")
        self.sampler = sampler.eval()
        self.refine = None if refine is None else refine.for_sampler(sampler)
        self.max_upload_bytes = max_upload_bytes
        self.lock = threading.Lock()

    @property
    def translates(self) -> bool:
        return isinstance(self.sampler, TranslationSampler)

    def info(self) -> dict[str, Any]:
        s = self.sampler
        out: dict[str, Any] = {"task": s.task, "family": s.config.family, "shape": list(s.spec.shape),
                               "is_image": s.spec.is_image, "max_upload_bytes": self.max_upload_bytes,
                               "limits": {"seed": MAX_SEED, "images": MAX_IMAGES, "points": MAX_POINTS,
                                          "scale": MAX_SCALE, "pixels": MAX_PIXELS}}
        if self.translates:
            out["directions"] = {name: list(s.input_shape(name)) for name in s.directions}
            out["scale"] = s.scale
            out["multiple"] = s.multiple
        else:
            out.update(latent_dim=s.latent_dim, num_classes=s.num_classes,
                       supports_truncation=bool(s.supports_truncation), supports_w=hasattr(s, "to_w"),
                       refine_steps=self.refine.steps if self.refine else 0,
                       refine_step_size=self.refine.step_size if self.refine else None,
                       codes=[{"name": c.name, "kind": c.kind, "size": c.size, "low": c.low, "high": c.high}
                              for c in s.codes.values()])
        return out

    # --------------------------------------------------------------------------------------- noise models

    def _noise_sampler(self) -> NoiseSampler:
        if self.translates:
            raise BadRequest("this is a translate model: POST an image to /api/translate", 404)
        return self.sampler

    def _controls(self, params: Params, n: int) -> dict[str, Any]:
        """Truncation and InfoGAN codes from the query, as the sampler's keyword controls."""
        s = self._noise_sampler()
        controls: dict[str, Any] = {}
        if s.supports_truncation:
            controls["truncation"] = params.float("truncation", 0.0, 1.0, 1.0)
        elif params.present("truncation"):
            raise BadRequest("this model has no truncation")
        codes = {}
        for name, spec in s.codes.items():
            if spec.kind == "categorical":
                value = params.int(f"code.{name}", 0, spec.size - 1, 0)
                codes[name] = torch.full((n,), value, dtype=torch.long)
            else:
                default = min(max(0.0, spec.low), spec.high)
                value = params.float(f"code.{name}", spec.low, spec.high, default)
                codes[name] = torch.full((n,), value, dtype=torch.float32)
        if codes:
            controls["codes"] = codes
        return controls

    def _refinement(self, controls: dict[str, Any]) -> Refinement | None:
        """The refinement for a request with these controls: none below truncation 1 (its own trade of variety
        for quality, on another path through the model), as `generate` refines plain noise only."""
        if self.refine is None or controls.get("truncation", 1.0) != 1.0:
            return None
        return self.refine

    def _labels(self, params: Params, n: int, name: str = "class") -> Tensor | None:
        s = self._noise_sampler()
        if not s.num_classes:
            if params.present(name):
                raise BadRequest(f"{name}: this model is unconditional")
            return None
        label = params.int(name, 0, s.num_classes - 1)
        if label is None:
            return torch.arange(n) % s.num_classes
        return torch.full((n,), label, dtype=torch.long)

    def sample(self, query: Mapping[str, str]) -> bytes:
        """GET /api/sample: seed, n, class, truncation, code.NAME, scale -> one image, a grid, or a scatter plot."""
        from ganforge.sampling import points_image

        s = self._noise_sampler()
        params = Params(query)
        seed = params.int("seed", 0, MAX_SEED, 0)
        if s.spec.is_image:
            n = params.int("n", 1, MAX_IMAGES, 1)
        else:
            n = params.int("n", 1, MAX_POINTS, 1000)
        scale = params.int("scale", 1, MAX_SCALE, 1)
        labels = self._labels(params, n)
        controls = self._controls(params, n)
        params.finish()
        if s.spec.is_image:
            _check_output_size(n, s.spec.shape, scale)
        refine = self._refinement(controls)
        with self.lock, torch.no_grad():
            if refine is not None:  # the same noise as below, each moved uphill on the run's D first
                out = self._call(lambda: refine.generate(s, n, seed=seed, labels=labels))
            else:
                out = self._call(lambda: s.generate(n, seed=seed, labels=labels, **controls))
        if not s.spec.is_image:
            return _png(points_image(out))
        return _png_grid(out, scale)

    def interpolate(self, query: Mapping[str, str]) -> bytes:
        """GET /api/interpolate: seed_a, seed_b, t in [0, 1], mode slerp|linear, space z|w, class, class_b, ..."""
        s = self._noise_sampler()
        if not s.spec.is_image:
            raise BadRequest("interpolation shows one image; this model makes 2D points", 404)
        params = Params(query)
        seed_a = params.int("seed_a", 0, MAX_SEED, 0)
        seed_b = params.int("seed_b", 0, MAX_SEED, 1)
        t = params.float("t", 0.0, 1.0, 0.5)
        mode = params.choice("mode", ("slerp", "linear"), "slerp")
        space = params.choice("space", ("z", "w"), "z")
        scale = params.int("scale", 1, MAX_SCALE, 1)
        label_a = self._labels(params, 1)
        label_b = self._labels(params, 1, "class_b")
        controls = self._controls(params, 1)
        params.finish()
        _check_output_size(1, s.spec.shape, scale)
        if space == "w" and not hasattr(s, "to_w"):
            raise BadRequest("space=w needs a style-based model (one with a w space); this one has only z")
        device = s.device
        with self.lock, torch.no_grad():
            z_a = s.sample_latent(1, generator=torch.Generator().manual_seed(seed_a)).to(device)
            z_b = s.sample_latent(1, generator=torch.Generator().manual_seed(seed_b)).to(device)
            if space == "w":
                truncation = controls.get("truncation", 1.0)
                w_a = s.to_w(z_a, _to(label_a, device), truncation=truncation)
                w_b = s.to_w(z_b, _to(label_b if label_b is not None else label_a, device), truncation=truncation)
                w = w_a.lerp(w_b, t) if mode == "linear" else slerp(w_a, w_b, t)
                images = self._call(lambda: s.from_w(w))
            else:
                z = z_a.lerp(z_b, t) if mode == "linear" else slerp(z_a, z_b, t)
                labels = _to(_mix_labels(label_a, label_b, t), device)
                refine = self._refinement(controls)
                if refine is not None:  # each point of the path refined as a sample is: its ends are the samples
                    z = self._call(lambda: refine.latents(s, z, labels))
                images = self._call(lambda: s(z, labels, **_to_device(controls, device)))
        from ganforge.sampling import to_output

        return _png_grid(to_output(images.float().cpu(), True), scale)

    # --------------------------------------------------------------------------------------- translation

    def translate(self, body: bytes, query: Mapping[str, str]) -> bytes:
        """POST /api/translate?direction=NAME with an image file as the body -> the output image."""
        from PIL import Image, UnidentifiedImageError

        if not self.translates:
            raise BadRequest("this model generates from noise; it takes no uploads", 404)
        s: TranslationSampler = self.sampler
        params = Params(query)
        direction = params.choice("direction", tuple(s.directions), next(iter(s.directions)))
        params.finish()
        if not body:
            raise BadRequest("the request body must be an image file (PNG, JPEG, ...)")
        channels = s.input_shape(direction)[0]
        try:
            with Image.open(io.BytesIO(body)) as im:
                if im.width * im.height * s.scale**2 > MAX_PIXELS:
                    limit = MAX_PIXELS // s.scale**2
                    raise BadRequest(f"image of {im.width}x{im.height} pixels is larger than the limit of {limit} "
                                     f"pixels" + (f" (outputs are {s.scale}x larger)" if s.scale > 1 else ""), 413)
                im = im.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
                # Sides cut down to the model's multiple (a U-Net's 2**depth) rather than refusing the image.
                width, height = im.width - im.width % s.multiple, im.height - im.height % s.multiple
                if width == 0 or height == 0:
                    raise BadRequest(f"image sides must be at least {s.multiple} pixels")
                im = im.crop((0, 0, width, height))
                array = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as err:
            raise BadRequest(f"cannot read the uploaded image: {str(err).splitlines()[0][:120]}", 415) from None
        images = array.reshape(height, width, channels).permute(2, 0, 1)[None]
        with self.lock:
            out = self._call(lambda: s.translate(images, direction=direction))
        return _png_grid(out, 1)

    def warm_up(self) -> None:
        """One request's work now (imports, first-call allocations), so the first client does not wait for it
        and a model that cannot run fails at start rather than on every request."""
        if self.translates:
            return
        self.sample({"n": "1"})

    @staticmethod
    def _call(fn):
        """Run the model; an error it raises about its inputs is the client's (400), not the server's."""
        try:
            return fn()
        except GanforgeError as err:
            raise BadRequest(str(err)) from None


def _check_output_size(n: int, shape: tuple[int, ...], scale: int) -> None:
    """Refuse a request whose image (a grid of n, enlarged scale x) would exceed MAX_PIXELS, before generating."""
    _, h, w = shape
    cols = math.ceil(math.sqrt(n)) if n > 1 else 1
    rows = math.ceil(n / cols)
    height = (rows * (h + 1) + 1 if n > 1 else h) * scale
    width = (cols * (w + 1) + 1 if n > 1 else w) * scale
    if height * width > MAX_PIXELS:
        raise BadRequest(f"the image would be {width}x{height} pixels, over the limit of {MAX_PIXELS}; "
                         f"ask for fewer samples or a smaller scale")


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation between rows of a and b (as for Gaussian latents); linear when nearly parallel."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.arccos((a_n * b_n).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    if bool((so.abs() < 1e-6).any()):
        return a.lerp(b, t)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def _mix_labels(a: Tensor | None, b: Tensor | None, t: float) -> Tensor | None:
    """Class labels are discrete: the interpolation shows class a up to halfway, class b after."""
    if b is None or t < 0.5:
        return a
    return b


def _to(x: Tensor | None, device) -> Tensor | None:
    return None if x is None else x.to(device)


def _to_device(controls: dict[str, Any], device) -> dict[str, Any]:
    out = {}
    for name, value in controls.items():
        if isinstance(value, dict):
            out[name] = {k: v.to(device) for k, v in value.items()}
        else:
            out[name] = value.to(device) if isinstance(value, Tensor) else value
    return out


def _png(image: Tensor) -> bytes:
    """A float image (C, H, W) in [0, 1] as PNG bytes."""
    return _png_uint8(image.mul(255).round().clamp(0, 255).to(torch.uint8))


def _png_grid(images: Tensor, scale: int) -> bytes:
    """uint8 images (N, C, H, W) as one PNG: the image itself for N = 1, else a square grid with 1-pixel white
    lines between them; enlarged `scale` x."""
    image = images[0] if len(images) == 1 else _grid(images)
    if scale > 1:
        image = image.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    return _png_uint8(image)


def _grid(images: Tensor) -> Tensor:
    """(N, C, H, W) -> (C, rows*(H+1)+1, cols*(W+1)+1), row-major, white padding (torchvision's layout, without
    importing torchvision into the server)."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.full((c, rows * (h + 1) + 1, cols * (w + 1) + 1), 255, dtype=images.dtype)
    for i, image in enumerate(images):
        r, k = divmod(i, cols)
        grid[:, 1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + k * (w + 1): 1 + k * (w + 1) + w] = image
    return grid


def _png_uint8(image: Tensor) -> bytes:
    from PIL import Image

    array = image.permute(1, 2, 0).contiguous().numpy()
    if array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ the app


def check_server_packages() -> None:
    import importlib.util

    missing = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise GanforgeError(f"ganforge serve needs {' and '.join(missing)}: pip install 'ganforge[serve]'")


def create_app(sampler: Sampler, *, refine: Refinement | None = None, max_upload_mb: float = 8.0):
    """The explorer as an ASGI app (starlette): the page at /, the JSON description at /api/info, PNGs from
    /api/sample and /api/interpolate, and POST /api/translate for image-to-image models. With `refine`, noise
    samples are refined on the run's D (ganforge.refine) as `generate` draws them."""
    check_server_packages()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    if not max_upload_mb > 0:
        raise GanforgeError(f"--max-upload-mb must be > 0, got {max_upload_mb}")
    explorer = Explorer(sampler, refine=refine, max_upload_bytes=int(max_upload_mb * 2**20))
    explorer.warm_up()

    def error(err: BadRequest) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    def png(data: bytes) -> Response:
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    def checked_query(request: Request) -> Mapping[str, str]:
        if len(request.url.query) > MAX_QUERY:
            raise BadRequest(f"query string longer than {MAX_QUERY} characters", 414)
        pairs = request.query_params.multi_items()
        names = [k for k, _ in pairs]
        repeated = sorted({k for k in names if names.count(k) > 1})
        if repeated:
            raise BadRequest(f"parameter {repeated[0][:40]!r} given more than once")
        return dict(pairs)

    def png_endpoint(method):
        async def endpoint(request: Request) -> Response:
            try:
                return png(await run_in_threadpool(method, checked_query(request)))
            except BadRequest as err:
                return error(err)
        return endpoint

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})

    async def info(request: Request) -> Response:
        return JSONResponse(explorer.info())

    async def translate(request: Request) -> Response:
        try:
            query = checked_query(request)
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > explorer.max_upload_bytes):
                raise BadRequest(f"upload larger than {explorer.max_upload_bytes} bytes (--max-upload-mb)", 413)
            body = bytearray()
            async for chunk in request.stream():  # bounded even when no length is declared (chunked)
                body += chunk
                if len(body) > explorer.max_upload_bytes:
                    raise BadRequest(f"upload larger than {explorer.max_upload_bytes} bytes (--max-upload-mb)", 413)
            return png(await run_in_threadpool(explorer.translate, bytes(body), query))
        except BadRequest as err:
            return error(err)

    routes = [Route("/", page), Route("/api/info", info),
              Route("/api/sample", png_endpoint(explorer.sample)),
              Route("/api/interpolate", png_endpoint(explorer.interpolate)),
              Route("/api/translate", translate, methods=["POST"])]
    app = Starlette(routes=routes)
    app.state.explorer = explorer
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or one clear error (port in use, no such interface)."""
    if not 0 <= port <= 65535:
        raise GanforgeError(f"--port must be in [0, 65535], got {port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno == 98:  # EADDRINUSE
            raise GanforgeError(f"port {port} on {host} is in use; pass another --port (0: any free one)") from None
        raise GanforgeError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def _server(app, sock: socket.socket):
    import uvicorn

    # limit_concurrency: connections beyond it get 503 at once instead of piling up memory.
    config = uvicorn.Config(app, log_level="warning", limit_concurrency=64, timeout_keep_alive=5)
    return uvicorn.Server(config)


def serve(sampler: Sampler, *, refine: Refinement | None = None, host: str = "127.0.0.1", port: int = 7860,
          max_upload_mb: float = 8.0, name: str = "the model") -> None:
    """Serve the explorer of `sampler` (e.g. `ganforge.load_sampler(RUN)`) until interrupted; prints its URL."""
    app = create_app(sampler, refine=refine, max_upload_mb=max_upload_mb)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {name} at http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C stops)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {host}: anyone who can reach this machine can use the model (no authentication)",
              flush=True)
    try:
        _server(app, sock).run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def run_in_background(app, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` from a thread for the `with` block (notebooks, tests, benchmarks); yields its base URL."""
    import time

    sock = bind(host, port)
    server = _server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise GanforgeError("the explorer's server did not start")
            time.sleep(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# ------------------------------------------------------------------------------------------------ the page

CSP = ("default-src 'none'; img-src 'self' blob: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "connect-src 'self'")

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ganforge explorer</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222;max-width:1100px}
h1{margin:0}h2{margin:22px 0 6px;border-bottom:1px solid #ddd}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin:6px 0}
label{white-space:nowrap}input[type=number]{width:7em}input[type=range]{width:200px;vertical-align:middle}
.out{display:flex;gap:20px;flex-wrap:wrap;align-items:flex-start}
figure{margin:8px 0}figure img{image-rendering:pixelated;width:320px;border:1px solid #ccc;background:#eee}
#error{color:#b00;min-height:1.4em}#meta{color:#555}
</style></head>
<body>
<h1>ganforge explorer</h1><p id="meta">loading…</p>
<p id="error" role="alert"></p>
<section id="generate-ui" hidden>
  <h2>Sample</h2>
  <div class="row">
    <label>seed <input id="seed" type="number" min="0" value="0"></label>
    <button id="random" type="button">random seed</button>
    <label>samples <select id="n"></select></label>
    <label id="class-row" hidden>class <select id="class"></select></label>
    <label id="truncation-row" hidden>truncation ψ <input id="truncation" type="range" min="0" max="1" step="0.05"
      value="1"> <span id="truncation-value">1</span></label>
  </div>
  <div class="row" id="codes"></div>
  <figure><img id="sample" alt="sample"><figcaption><a id="download-sample" download="sample.png">download
    PNG</a></figcaption></figure>
  <section id="interpolate-ui" hidden>
    <h2>Interpolate between two samples</h2>
    <div class="row">
      <label>seed A <input id="seed-a" type="number" min="0" value="0"></label>
      <label>seed B <input id="seed-b" type="number" min="0" value="1"></label>
      <label id="class-b-row" hidden>class B <select id="class-b"></select></label>
      <label>path <select id="mode"><option>slerp</option><option>linear</option></select></label>
      <label id="space-row" hidden>space <select id="space"><option>z</option><option>w</option></select></label>
      <label>A <input id="t" type="range" min="0" max="1" step="0.01" value="0.5"> B</label>
      <span id="t-value">0.50</span>
    </div>
    <figure><img id="interp" alt="interpolation"><figcaption><a id="download-interp" download="interpolation.png">
      download PNG</a></figcaption></figure>
  </section>
</section>
<section id="translate-ui" hidden>
  <h2 id="translate-title">Translate an image</h2>
  <div class="row"><input id="upload" type="file" accept="image/*">
    <label id="direction-row">direction <select id="direction"></select></label></div>
  <div class="out">
    <figure><img id="input-preview" alt="input"><figcaption>input</figcaption></figure>
    <figure><img id="output" alt="output"><figcaption><a id="download-output" download="output.png">download
      PNG</a></figcaption></figure>
  </div>
</section>
<script>
(function(){
  var $ = function(id){ return document.getElementById(id); };
  var info = null;
  function fail(message){ $('error').textContent = message; }
  function option(select, value, text){ var o = document.createElement('option'); o.value = value;
    o.textContent = text; select.appendChild(o); }
  // One request at a time per image: while one is in flight, only the newest wish is kept.
  function updater(img, link, name, request){
    var busy = false, again = false;
    function run(){
      if (busy) { again = true; return; }
      busy = true;
      request().then(function(r){
        if (!r.ok) return r.json().then(function(j){ throw new Error(j.error); },
                                        function(){ throw new Error(r.status + ' ' + r.statusText); });
        return r.blob();
      }).then(function(blob){
        if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
        var url = URL.createObjectURL(blob);
        img.src = url; img.dataset.url = url; link.href = url; link.download = name();
        img.dataset.version = String((+img.dataset.version || 0) + 1);
        fail('');
      }).catch(function(e){ fail(e.message); }).then(function(){
        busy = false; if (again) { again = false; run(); }
      });
    }
    return run;
  }
  function controlsQuery(q){
    if (info.supports_truncation) q.set('truncation', $('truncation').value);
    info.codes.forEach(function(c){ q.set('code.' + c.name, $('code-' + c.name).value); });
    return q;
  }
  function setupGenerate(){
    $('generate-ui').hidden = false;
    var counts = info.is_image ? [1, 4, 16, 64] : [250, 1000, 5000];
    counts.forEach(function(n){ option($('n'), n, n); });
    $('n').value = info.is_image ? 1 : 1000;
    $('seed').max = $('seed-a').max = $('seed-b').max = info.limits.seed;
    if (info.num_classes) {
      $('class-row').hidden = false; $('class-b-row').hidden = false;
      option($('class'), '', 'all (cycling)');
      option($('class-b'), '', 'same as A');
      for (var k = 0; k < info.num_classes; k++) { option($('class'), k, k); option($('class-b'), k, k); }
    }
    if (info.supports_truncation) $('truncation-row').hidden = false;
    if (info.supports_w) $('space-row').hidden = false;
    info.codes.forEach(function(c){
      var label = document.createElement('label'), input;
      label.textContent = 'code ' + c.name + ' ';
      if (c.kind === 'categorical') {
        input = document.createElement('select');
        for (var v = 0; v < c.size; v++) option(input, v, v);
      } else {
        input = document.createElement('input'); input.type = 'range';
        input.min = c.low; input.max = c.high; input.step = (c.high - c.low) / 100;
        input.value = Math.min(Math.max(0, c.low), c.high);
      }
      input.id = 'code-' + c.name; label.appendChild(input); $('codes').appendChild(label);
      if (c.kind !== 'categorical') {
        var shown = document.createElement('span'); shown.textContent = ' ' + input.value; label.appendChild(shown);
        input.addEventListener('input', function(){ shown.textContent = ' ' + (+input.value).toFixed(2); });
      }
    });
    var sample = updater($('sample'), $('download-sample'),
      function(){ return 'sample-seed' + $('seed').value + '.png'; },
      function(){
        var q = new URLSearchParams({seed: $('seed').value, n: $('n').value});
        if ($('class').value !== '') q.set('class', $('class').value);
        return fetch('/api/sample?' + controlsQuery(q));
      });
    var interp = updater($('interp'), $('download-interp'),
      function(){ return 'interpolation-t' + $('t').value + '.png'; },
      function(){
        var q = new URLSearchParams({seed_a: $('seed-a').value, seed_b: $('seed-b').value, t: $('t').value,
                                     mode: $('mode').value, space: $('space').value});
        if ($('class').value !== '') q.set('class', $('class').value);
        if ($('class-b').value !== '') q.set('class_b', $('class-b').value);
        return fetch('/api/interpolate?' + controlsQuery(q));
      });
    function both(){ sample(); if (info.is_image) interp(); }
    ['seed', 'n', 'class'].forEach(function(id){ $(id).addEventListener('input', sample); });
    ['truncation', 'class'].forEach(function(id){ $(id).addEventListener('input', both); });
    $('truncation').addEventListener('input', function(){ $('truncation-value').textContent = $('truncation').value; });
    info.codes.forEach(function(c){ $('code-' + c.name).addEventListener('input', both); });
    $('random').addEventListener('click', function(){
      $('seed').value = Math.floor(Math.random() * 1000000); sample(); });
    if (info.is_image) {
      $('interpolate-ui').hidden = false;
      ['seed-a', 'seed-b', 'class-b', 'mode', 'space', 't'].forEach(function(id){
        $(id).addEventListener('input', interp); });
      $('t').addEventListener('input', function(){ $('t-value').textContent = (+$('t').value).toFixed(2); });
    }
    both();
  }
  function setupTranslate(){
    $('translate-ui').hidden = false;
    if (info.task === 'upscale') $('translate-title').textContent = 'Upscale an image (' + info.scale + '×)';
    Object.keys(info.directions).forEach(function(d){ option($('direction'), d, d); });
    $('direction-row').hidden = Object.keys(info.directions).length < 2;
    var file = null;
    var run = updater($('output'), $('download-output'), function(){ return 'output.png'; }, function(){
      return fetch('/api/translate?direction=' + encodeURIComponent($('direction').value),
                   {method: 'POST', body: file}); });
    var post = function(){
      if (!file) return;
      if (file.size > info.max_upload_bytes) { fail('file larger than ' + info.max_upload_bytes + ' bytes'); return; }
      run();
    };
    $('upload').addEventListener('change', function(){
      file = $('upload').files[0] || null;
      if (file) { $('input-preview').src = URL.createObjectURL(file); post(); }
    });
    $('direction').addEventListener('input', post);
  }
  fetch('/api/info').then(function(r){ return r.json(); }).then(function(j){
    info = j;
    var what = info.task === 'generate'
      ? (info.is_image ? info.shape.join('×') + ' images' : info.shape[0] + 'D points') +
        ', latent ' + info.latent_dim + (info.num_classes ? ', ' + info.num_classes + ' classes' : '') +
        (info.codes.length ? ', codes ' + info.codes.map(function(c){ return c.name; }).join(', ') : '') +
        (info.refine_steps ? ', noise refined by D (' + info.refine_steps + ' steps at truncation 1)' : '')
      : info.task + ' model, directions ' + Object.keys(info.directions).join(', ');
    $('meta').textContent = info.family + ': ' + what;
    if (info.task === 'generate') setupGenerate(); else setupTranslate();
    document.body.setAttribute('data-ready', '1');
  }).catch(function(e){ fail('cannot reach the server: ' + e.message); });
})();
</script>
</body></html>
"""
