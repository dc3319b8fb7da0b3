"""`ganforge serve`: the explorer's API validates every input, stays up, is safe under concurrent clients, and its
page works in headless Chromium (a control changes the image)."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import torch
from PIL import Image
from torch import nn

from browser import Browser, need_chromium, pixel_variety
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.models import DataSpec, ModelConfig
from ganforge.models.sampler import CodeSpec, NoiseSampler, TranslationSampler
from ganforge.refine import Refinement, generate_refined
from ganforge.sampling import generate, points_image
from ganforge.saved import load_critic, load_sampler
from ganforge.serve import Explorer, create_app, run_in_background, slerp
from ganforge.serve import _png as points_png  # the bytes the explorer sends for a scatter plot
from ganforge.serve import _png_grid as images_png  # ... and for images
from tiny_runs import tiny_run, trained

TIMEOUT = 60  # seconds: a guard against a hung server, generous for a busy CI machine (not a speed test)


class CodedSampler(NoiseSampler):
    """Test-only: the InfoGAN and style contract (codes, truncation, w space) over a plain generator."""

    supports_truncation = True

    @property
    def codes(self) -> dict[str, CodeSpec]:
        return {"c0": CodeSpec("c0", "categorical", size=3), "c1": CodeSpec("c1", "continuous", low=-1.0, high=1.0)}

    def forward(self, z, labels=None, *, codes, truncation=1.0):
        z = self.to_w(z, labels, truncation=truncation).clone()
        z[:, 0] += 3.0 * codes["c0"].float()  # each code moves the latent, so it changes the image
        z[:, 1] += 3.0 * codes["c1"]
        return self.G(z, labels)

    def to_w(self, z, labels=None, truncation=1.0):
        return z * truncation

    def from_w(self, w):
        return self.G(w, None)


class LinearG(nn.Module):
    """Test-only generator: tanh of a linear map of z (plus a class embedding), whose images vary visibly with
    every input (a freshly initialised DCGAN's outputs are nearly constant)."""

    def __init__(self, *, latent_dim: int = 8, num_classes: int = 0, shape=(1, 16, 16)) -> None:
        super().__init__()
        self.latent_dim, self.num_classes, self.shape = latent_dim, num_classes, shape
        self.net = nn.Linear(latent_dim, shape[0] * shape[1] * shape[2])
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None

    def sample_latent(self, n, *, device="cpu", generator=None):
        return torch.randn(n, self.latent_dim, generator=generator).to(device)

    def forward(self, z, labels=None):
        if self.embed is not None:
            z = z + 2.0 * self.embed(labels)
        return torch.tanh(2.0 * self.net(z)).view(-1, *self.shape)


def _sampler(cls=NoiseSampler, *, conditional=False):
    torch.manual_seed(0)
    num_classes = 4 if conditional else 0
    spec = DataSpec(shape=(1, 16, 16), num_classes=num_classes)
    return cls({"G": LinearG(num_classes=num_classes)}, config=ModelConfig(latent_dim=8), spec=spec).eval()


def _inverter():
    """A translate sampler whose network maps x to -x: the output image is 255 - the input, exactly."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    conv.weight.data.fill_(-1.0)
    spec = DataSpec(shape=(1, 8, 8), extra_shapes=(("a", (1, 8, 8)),))
    return TranslationSampler({"G": conv}, config=ModelConfig(family="dcgan"), spec=spec).eval()


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixels(data: bytes) -> torch.Tensor:
    import numpy as np

    with Image.open(io.BytesIO(data)) as im:
        return torch.from_numpy(np.asarray(im).copy())


@pytest.fixture(scope="module")
def coded():
    with run_in_background(create_app(_sampler(CodedSampler))) as url, \
            httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained("image", tmp_path_factory, logger="tensorboard")


# ------------------------------------------------------------------------------------------------ API


def test_info_describes_the_model(coded):
    info = coded.get("/api/info").json()
    assert info["task"] == "generate" and info["shape"] == [1, 16, 16] and info["latent_dim"] == 8
    assert info["supports_truncation"] and info["supports_w"] and info["num_classes"] == 0
    assert info["codes"] == [{"name": "c0", "kind": "categorical", "size": 3, "low": -2.0, "high": 2.0},
                             {"name": "c1", "kind": "continuous", "size": 1, "low": -1.0, "high": 1.0}]


def test_controls_change_the_image_and_seeds_reproduce_it(coded):
    def get(**params):
        r = coded.get("/api/sample", params=params)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
        return r.content

    base = get(seed=3)
    assert get(seed=3) == base  # same inputs, same image
    for change in ({"seed": 4}, {"seed": 3, "code.c0": 2}, {"seed": 3, "code.c1": 0.9}, {"seed": 3, "truncation": 0.3}):
        assert get(**change) != base, change
    grid = _pixels(get(seed=3, n=4, scale=2))
    assert grid.shape == (2 * (2 * 16 + 3), 2 * (2 * 16 + 3))  # 2x2 grid with 1-pixel lines, enlarged twice


def test_interpolation_ends_at_its_two_samples(coded):
    for space in ("z", "w"):
        for mode in ("slerp", "linear"):
            ends = [coded.get("/api/interpolate", params={"seed_a": 5, "seed_b": 9, "t": t, "mode": mode,
                                                          "space": space}).content for t in (0, 0.5, 1)]
            assert ends[0] == coded.get("/api/sample", params={"seed": 5}).content
            assert ends[2] == coded.get("/api/sample", params={"seed": 9}).content
            assert ends[1] not in (ends[0], ends[2])


def test_slerp_keeps_the_norm_of_equal_norm_latents():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid.norm(), torch.tensor(3.0)) and torch.allclose(mid, torch.tensor([[2.1213, 2.1213]]),
                                                                               atol=1e-4)
    assert torch.equal(slerp(a, b, 0.0), a)


@pytest.mark.parametrize("path, params, message", [
    ("/api/sample", {"seed": -1}, "seed must be in [0, 2147483647], got -1"),
    ("/api/sample", {"seed": "x1"}, "seed must be an integer, got 'x1'"),
    ("/api/sample", {"n": 65}, "n must be in [1, 64], got 65"),
    ("/api/sample", {"code.c0": 3}, "code.c0 must be in [0, 2], got 3"),
    ("/api/sample", {"code.c1": "nan"}, "code.c1 must be in [-1, 1], got nan"),
    ("/api/sample", {"truncation": 1.5}, "truncation must be in [0, 1], got 1.5"),
    ("/api/sample", {"class": 1}, "class: this model is unconditional"),
    ("/api/sample", {"sed": 1}, "unknown parameter 'sed'"),
    ("/api/sample", {"scale": 0}, "scale must be in [1, 8], got 0"),
    ("/api/interpolate", {"t": 1.01}, "t must be in [0, 1], got 1.01"),
    ("/api/interpolate", {"mode": "cubic"}, "mode must be one of slerp, linear, got 'cubic'"),
])
def test_bad_requests_get_400_with_a_message(coded, path, params, message):
    r = coded.get(path, params=params)
    assert r.status_code == 400
    assert r.json()["error"].startswith(message)


def test_other_bad_requests_and_the_server_keeps_serving(coded):
    assert coded.get("/api/sample?seed=1&seed=2").status_code == 400  # repeated parameter
    assert coded.get("/api/sample?" + "a" * 5000).status_code == 414
    assert coded.get("/api/nothing").status_code == 404
    assert coded.post("/api/sample").status_code == 405
    r = coded.post("/api/translate", content=b"x")
    assert r.status_code == 404 and "takes no uploads" in r.json()["error"]
    assert coded.get("/api/sample", params={"seed": 1}).status_code == 200


def test_outputs_are_bounded_before_anything_is_generated(monkeypatch):
    import ganforge.serve as serve_module
    from ganforge.serve import BadRequest, Explorer

    explorer = Explorer(_sampler())
    monkeypatch.setattr(serve_module, "MAX_PIXELS", 100 * 100)
    explorer.sample({"n": "4", "scale": "2"})  # 2x2 grid of 16x16: 70x70 pixels
    with pytest.raises(BadRequest, match="the image would be 140x140 pixels, over the limit of 10000"):
        explorer.sample({"n": "4", "scale": "4"})
    up = _inverter()
    up.scale = 4  # an upscaler: 8x8 in, 32x32 out
    upscaler = Explorer(up)
    monkeypatch.setattr(serve_module, "MAX_PIXELS", 31 * 31)
    with pytest.raises(BadRequest, match=r"larger than the limit of 60 pixels \(outputs are 4x larger\)") as err:
        upscaler.translate(_png((torch.zeros(8, 8, dtype=torch.uint8)).numpy()), {})
    assert err.value.status == 413


def test_concurrent_clients_get_the_serial_answers(coded):
    seeds = list(range(24))
    serial = {seed: coded.get("/api/sample", params={"seed": seed, "n": 4}).content for seed in seeds}
    results, errors = {}, []

    def client(part):
        with httpx.Client(base_url=str(coded.base_url), timeout=TIMEOUT) as own:
            for seed in part:
                r = own.get("/api/sample", params={"seed": seed, "n": 4})
                if r.status_code != 200:
                    errors.append(r.status_code)
                results[seed] = r.content

    threads = [threading.Thread(target=client, args=(seeds[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == serial


def test_conditional_model_classes(tmp_path):
    app = create_app(_sampler(conditional=True))
    with run_in_background(app) as url, httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        one = c.get("/api/sample", params={"seed": 1, "class": 0}).content
        assert c.get("/api/sample", params={"seed": 1, "class": 3}).content != one
        r = c.get("/api/sample", params={"class": 4})
        assert r.status_code == 400 and r.json()["error"] == "class must be in [0, 3], got 4"
        r = c.get("/api/interpolate", params={"space": "w"})
        assert r.status_code == 400 and "w space" in r.json()["error"]
        mixed = c.get("/api/interpolate", params={"seed_a": 1, "seed_b": 1, "class": 0, "class_b": 3, "t": 1})
        assert mixed.content == c.get("/api/sample", params={"seed": 1, "class": 3}).content


def test_translate_uploads(tmp_path):
    image = (torch.arange(64, dtype=torch.uint8).reshape(8, 8) * 4).numpy()
    app = create_app(_inverter(), max_upload_mb=0.01)
    with run_in_background(app) as url, httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        assert c.get("/api/info").json()["directions"] == {"a2b": [1, 8, 8]}
        r = c.post("/api/translate", content=_png(image))
        assert r.status_code == 200
        assert torch.equal(_pixels(r.content), 255 - torch.from_numpy(image))
        rgb = Image.fromarray(image).convert("RGB").resize((10, 9))  # RGB, sides not what it was trained on
        buffer = io.BytesIO()
        rgb.save(buffer, format="PNG")
        r = c.post("/api/translate", content=buffer.getvalue())
        assert r.status_code == 200 and _pixels(r.content).shape == (9, 10)
        r = c.post("/api/translate", content=b"not an image")
        assert r.status_code == 415 and r.json()["error"].startswith("cannot read the uploaded image")
        big = os.urandom(20_000)
        assert c.post("/api/translate", content=big).status_code == 413  # declared length
        r = c.post("/api/translate", content=iter([big[:8000], big[8000:]]))  # chunked, no length declared
        assert r.status_code == 413 and "larger than 10485 bytes" in r.json()["error"]
        assert c.post("/api/translate?direction=b2a", content=_png(image)).status_code == 400
        assert c.get("/api/sample").status_code == 404
        assert c.post("/api/translate", content=_png(image)).status_code == 200  # still serving


def test_points_model_returns_a_scatter_plot():
    from ganforge.models import FAMILIES

    family = FAMILIES["mlp"]
    config = family.config_class(family="mlp", latent_dim=4, g_hidden=16, g_layers=2, d_hidden=16, d_layers=2)
    spec = DataSpec(shape=(2,))
    torch.manual_seed(0)
    sampler = family.sampler({"G": family.networks(config, spec)["G"]()}, config=config, spec=spec)
    with run_in_background(create_app(sampler)) as url, httpx.Client(base_url=url, timeout=TIMEOUT) as c:
        assert c.get("/api/info").json()["is_image"] is False
        plot = _pixels(c.get("/api/sample", params={"seed": 0, "n": 500}).content)
        assert plot.shape == (384, 384, 3) and len(torch.unique(plot.reshape(-1, 3), dim=0)) >= 2
        assert c.get("/api/sample", params={"n": 10001}).status_code == 400
        assert c.get("/api/interpolate").status_code == 404


# ------------------------------------------------------------------------------------------------ refinement


def test_a_refining_run_is_served_as_generate_draws_it(tmp_path):
    run = tiny_run(tmp_path / "ring", "points", sample={"refine_steps": 3, "refine_step_size": 0.5})
    sampler, critic = load_sampler(run), load_critic(run)
    refined = Explorer(sampler, refine=Refinement(critic, 3, 0.5))
    plain = Explorer(sampler)
    assert refined.info()["refine_steps"] == 3 and refined.info()["refine_step_size"] == 0.5
    assert plain.info()["refine_steps"] == 0
    expected = generate_refined(sampler, critic, 50, steps=3, step_size=0.5, seed=2)
    assert not torch.equal(expected, generate(sampler, 50, seed=2))
    assert refined.sample({"seed": "2", "n": "50"}) == points_png(points_image(expected))
    assert plain.sample({"seed": "2", "n": "50"}) == points_png(points_image(generate(sampler, 50, seed=2)))


def test_refined_interpolation_ends_at_the_refined_samples(run_dir):
    sampler, critic = load_sampler(run_dir), load_critic(run_dir)
    explorer = Explorer(sampler, refine=Refinement(critic, 3, 1.0))  # a tiny run's D is flat: large steps
    one = explorer.sample({"seed": "3", "class": "1"})
    assert one == images_png(generate_refined(sampler, critic, 1, steps=3, step_size=1.0, seed=3,
                                              labels=torch.tensor([1])), 1)
    grid = {"seed": "3", "n": "16"}
    assert explorer.sample(grid) != Explorer(sampler).sample(grid)  # refinement moved the images
    ends = [explorer.interpolate({"seed_a": "3", "seed_b": "4", "class": "1", "class_b": "2", "t": t})
            for t in ("0", "1")]
    assert ends == [one, explorer.sample({"seed": "4", "class": "2"})]


def test_refinement_needs_a_noise_model_and_a_possible_setting(run_dir):
    sampler, critic = load_sampler(run_dir), load_critic(run_dir)
    with pytest.raises(GanforgeError, match="refine step size must be > 0"):
        Explorer(sampler, refine=Refinement(critic, 2, 0.0))
    with pytest.raises(GanforgeError, match="moves noise; this is a translate model"):
        Explorer(_inverter(), refine=Refinement(critic, 2, 0.1))


def test_serve_cli_refines_as_the_runs_sample_section_says(tmp_path, monkeypatch, capsys):
    import ganforge.serve

    run = tiny_run(tmp_path / "ring", "points", sample={"refine_steps": 3, "refine_step_size": 0.5})
    served = []
    monkeypatch.setattr(ganforge.serve, "serve", lambda sampler, **kwargs: served.append(kwargs["refine"]))

    def refine_of(*argv):
        assert main(["serve", *argv]) == 0
        return served[-1]

    default = refine_of(str(run))
    assert (default.steps, default.step_size) == (3, 0.5) and type(default.critic).__name__ == "Discriminator"
    assert refine_of(str(run), "--refine-steps", "0") is None
    assert refine_of(str(run), "--refine-step-size", "0.1").step_size == 0.1
    folder = load_sampler(run).save_pretrained(tmp_path / "pretrained")
    assert refine_of(str(folder)) is None  # a sampler folder keeps no D: plain samples, as `generate` gives
    capsys.readouterr()
    assert main(["serve", str(folder), "--refine-steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "without the discriminator" in err and len(err.splitlines()) == 1


def test_missing_server_packages_is_one_clear_error(run_dir, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", str(run_dir), "--port", "0"]) == 2
    assert capsys.readouterr().err.strip() == "ganforge: error: ganforge serve needs uvicorn: pip install " \
                                              "'ganforge[serve]'"


# ------------------------------------------------------------------------------------------------ CLI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_cli_on_a_tiny_run(run_dir):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", str(run_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {run_dir} at http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" at ")[1].split()[0]
        info = httpx.get(url + "api/info", timeout=TIMEOUT).json()
        assert info["family"] == "dcgan" and info["num_classes"] == 10
        sample = httpx.get(url + "api/sample", params={"seed": 2, "class": 7}, timeout=TIMEOUT).content
        expected = load_sampler(run_dir).generate(1, seed=2, labels=torch.tensor([7]))[0, 0]
        assert torch.equal(_pixels(sample), expected)  # the run's EMA generator, as `generate` gives it
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130, -signal.SIGINT)


def test_serve_cli_errors(run_dir, tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(run_dir), "--port", str(port)]) == 2
    assert capsys.readouterr().err.strip() == (f"ganforge: error: port {port} on 127.0.0.1 is in use; pass another "
                                               "--port (0: any free one)")
    assert main(["serve", str(tmp_path / "nope"), "--port", str(_free_port())]) == 2
    assert capsys.readouterr().err.startswith("ganforge: error:")
    assert main(["serve", str(run_dir), "--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb must be > 0" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ Chromium

_IMAGE_DATA = ("(() => {{ const i = document.getElementById('{0}'); const c = document.createElement('canvas');"
               " c.width = i.naturalWidth; c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);"
               " return c.toDataURL(); }})()")


def _wait_image(browser, element, version):
    browser.wait_for(f"(() => {{ const i = document.getElementById('{element}');"
                     f" return i.dataset.version === '{version}' && i.complete && i.naturalWidth > 0; }})()")
    return browser.evaluate(_IMAGE_DATA.format(element))


def test_explorer_in_headless_chromium():
    executable = need_chromium()
    with run_in_background(create_app(_sampler(CodedSampler))) as url, Browser(executable) as browser:
        browser.open(url + "/")
        first = _wait_image(browser, "sample", 1)
        _wait_image(browser, "interp", 1)
        assert browser.evaluate("document.getElementById('codes').querySelectorAll('select, input').length") == 2
        # Type a new seed into the field, as a user would.
        browser.evaluate("(() => { const s = document.getElementById('seed'); s.focus(); s.select(); })()")
        browser.call("Input.insertText", text="7")
        typed = _wait_image(browser, "sample", 2)
        assert typed != first
        assert browser.evaluate("document.getElementById('download-sample').download") == "sample-seed7.png"
        # Move the categorical code: the sample and the interpolation both follow.
        browser.evaluate("(() => { const c = document.getElementById('code-c0'); c.value = '2';"
                         " c.dispatchEvent(new Event('input')); })()")
        assert _wait_image(browser, "sample", 3) != typed
        # The interpolation slider.
        before = _wait_image(browser, "interp", 2)
        browser.evaluate("(() => { const t = document.getElementById('t'); t.value = '0.9';"
                         " t.dispatchEvent(new Event('input')); })()")
        assert _wait_image(browser, "interp", 3) != before
        # An out-of-range value typed into the page: the server's message is shown, and the page keeps working.
        browser.evaluate("(() => { const s = document.getElementById('seed'); s.value = '-5';"
                         " s.dispatchEvent(new Event('input')); })()")
        browser.wait_for("document.getElementById('error').textContent.includes('seed must be in')")
        assert httpx.get(url + "/api/sample", params={"seed": "-5"}, timeout=TIMEOUT).status_code == 400
        browser.evaluate("(() => { const s = document.getElementById('seed'); s.value = '8';"
                         " s.dispatchEvent(new Event('input')); })()")
        _wait_image(browser, "sample", 4)
        assert browser.evaluate("document.getElementById('error').textContent") == ""
        assert pixel_variety(browser.screenshot()) > 50
        local = (url, "blob:" + url)
        assert all(u.startswith(local) for u in browser.requests), [u for u in browser.requests
                                                                     if not u.startswith(local)]


def test_translate_page_in_headless_chromium(tmp_path):
    executable = need_chromium()
    image = (torch.arange(64, dtype=torch.uint8).reshape(8, 8) * 4).numpy()
    upload = tmp_path / "in.png"
    upload.write_bytes(_png(image))
    with run_in_background(create_app(_inverter())) as url, Browser(executable) as browser:
        browser.open(url + "/")
        assert browser.evaluate("document.getElementById('generate-ui').hidden")
        assert not browser.evaluate("document.getElementById('translate-ui').hidden")
        root = browser.call("DOM.getDocument")["root"]["nodeId"]
        node = browser.call("DOM.querySelector", nodeId=root, selector="#upload")["nodeId"]
        browser.call("DOM.setFileInputFiles", files=[str(upload)], nodeId=node)  # as if the user chose the file
        data_url = _wait_image(browser, "output", 1)
        import base64

        output = _pixels(base64.b64decode(data_url.split(",", 1)[1]))
        assert torch.equal(output[..., 0], 255 - torch.from_numpy(image))  # the canvas gives RGBA
        assert browser.evaluate("document.getElementById('download-output').download") == "output.png"
