"""Image-to-image results: SR x4 (MNIST, Fashion-MNIST, scikit-image photos), pix2pix mnist-edges, CycleGAN
MNIST-M -> MNIST. Everything trains within one CPU budget (--cpu-minutes, split over the runs by fixed shares);
each run's step count comes from a short calibration of its CPU time per step, so a longer run is one flag away.

    nice -n 10 python benchmarks/image2image.py --data-root /work/shared/data --cpu-minutes 30

SR: PSNR and SSIM (scikit-image; RGB/gray on uint8, no border crop) of bicubic, SRResNet-mode and SRGAN-mode
against the high-res test images, plus domain FID (the MNIST / Fashion-MNIST classifier's features) for the
digits. The SRResNet figure is the SRGAN run's generator at the end of its pixel-loss warm-up (the paper
starts SRGAN from SRResNet; until then the run is SRResNet training), so both come from one run.
pix2pix: test L1 and the MNIST classifier's accuracy on the translated test edges. CycleGAN: the MNIST
classifier's accuracy on MNIST-M-style test images translated to MNIST against the untranslated ones, and
the cycle L1. Writes a JSON of results and side-by-side PNGs next to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.config import config_from_dict, load_preset, merge
from ganforge.data import load_dataset
from ganforge.data.derived import skimage_photos, sr_pairs
from ganforge.data.image2image_sets import mnist_m_task
from ganforge.metrics.domain import classifier_accuracy, load_domain_extractor
from ganforge.metrics.evaluate import evaluate
from ganforge.saved import load_sampler
from ganforge.train.trainer import Trainer, train

SHARES = {  # of the training budget
    "sr-mnist": 0.13, "sr-fashion-mnist": 0.13, "sr-photos": 0.22, "pix2pix": 0.2, "cyclegan": 0.32,
}
WARMUP_FRACTION = 0.6  # of an SRGAN run's steps: pixel loss only (the SRResNet figures are taken there)


def cpu_seconds() -> float:
    return time.process_time()


def calibrate(raw: dict, work: Path, steps: int = 6) -> float:
    """CPU seconds per training step of this config (a throwaway trainer; 2 steps of warm-up not counted)."""
    cfg = config_from_dict(merge(raw, {"train": {"steps": 10_000, "progress": False}}))
    trainer = Trainer(cfg, work / "calibrate")
    trainer.run_step(False)
    trainer.step += 1
    trainer.run_step(False)
    trainer.step += 1
    start = cpu_seconds()
    for _ in range(steps):
        trainer.run_step(False)
        trainer.step += 1
    return (cpu_seconds() - start) / steps


def run(name: str, raw: dict, seconds: float, work: Path, log: dict, overrides=None) -> tuple[Path, int]:
    """Train `raw` for as many steps as fit in `seconds` of CPU; overrides(steps) -> more config to merge."""
    per_step = calibrate(raw, work)
    steps = max(20, int(seconds / per_step))
    raw = merge(raw, {"train": {"steps": steps, "progress": False, "sample_every": steps, "checkpoint_every": steps}})
    if overrides is not None:
        raw = merge(raw, overrides(steps))
    start = cpu_seconds()
    result = train(config_from_dict(raw), work / name, overwrite=True)
    log[name] = {"steps": result.step, "cpu_s": round(cpu_seconds() - start, 1), "s_per_step": round(per_step, 4),
                 "batch": raw["train"]["batch_size"]}
    print(f"[{name}] {result.step} steps in {log[name]['cpu_s']} CPU s", file=sys.stderr, flush=True)
    return result.run_dir, steps


def warmup_split(steps: int) -> dict:
    """SRGAN runs: pixel loss for the first WARMUP_FRACTION of the steps, with a checkpoint right there."""
    warm = max(1, int(WARMUP_FRACTION * steps))
    return {"model": {"warmup_steps": warm}, "train": {"checkpoint_every": warm, "keep_checkpoints": 3}}


def sr_models(run_dir: Path, steps: int):
    """(SRResNet = G at the end of the warm-up, SRGAN = G at the end), raw weights."""
    warm = warmup_split(steps)["model"]["warmup_steps"]
    return (load_sampler(run_dir / "checkpoints" / f"step-{warm:08d}.pt", use_ema=False),
            load_sampler(run_dir, use_ema=False))


@torch.no_grad()
def batched(sampler, images: torch.Tensor, direction: str | None = None, batch: int = 500) -> torch.Tensor:
    """uint8 in, uint8 out, through the sampler's network in batches (small images: no tiling needed)."""
    out = []
    for chunk in images.split(batch):
        y = sampler(chunk.float().div(127.5).sub(1), direction)
        out.append(y.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def psnr_ssim(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM over images, scikit-image's implementations, uint8 data range."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnrs, ssims = [], []
    for out, tgt in zip(outputs.numpy(), targets.numpy()):
        o, t = np.moveaxis(out, 0, -1), np.moveaxis(tgt, 0, -1)
        if np.array_equal(o, t):
            psnrs.append(100.0)
        else:
            psnrs.append(peak_signal_noise_ratio(t, o, data_range=255))
        ssims.append(structural_similarity(t, o, data_range=255, channel_axis=-1))  # 7x7 Gaussian-free windows
    return float(np.mean(psnrs)), float(np.mean(ssims))


def bicubic(low: torch.Tensor, scale: int) -> torch.Tensor:
    up = F.interpolate(low.float(), scale_factor=scale, mode="bicubic", align_corners=False)
    return up.round().clamp(0, 255).to(torch.uint8)


def strip(rows: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Columns of (N, C, h, w) uint8 panels, each resized (nearest) to `size`, as one (N, 3, H, W*cols) strip."""
    panels = []
    for p in rows:
        p = F.interpolate(p.float(), size=size, mode="nearest")
        panels.append(p.expand(-1, 3, -1, -1) if p.shape[1] == 1 else p[:, :3])
    return torch.cat(panels, dim=3)


def save_png(strips: torch.Tensor, path: Path) -> None:
    from torchvision.utils import save_image

    save_image(strips / 255.0, path, nrow=1, padding=2, pad_value=1.0)


# ----------------------------------------------------------------------------------------------- SR


def sr_digits(dataset: str, seconds: float, args, work: Path, log: dict, results: dict) -> torch.Tensor:
    raw = merge(load_preset("srgan-mnist"), {"data": {"root": args.data_root, "download": False,
                                                      "task": {"source": dataset}}})
    run_dir, steps = run(f"sr-{dataset}", raw, seconds, work, log, warmup_split)
    srresnet, srgan = sr_models(run_dir, steps)
    cfg = config_from_dict(merge(raw, {"data": {"split": "test", "limit": args.eval_num}}))
    test = load_dataset(cfg.data)
    low, high = test.extras["x_lowres"], test.data
    outs = {"bicubic": bicubic(low, 4), "srresnet": batched(srresnet, low), "srgan": batched(srgan, low)}
    rows = {}
    for method, out in outs.items():
        p, s = psnr_ssim(out, high)
        fid = evaluate(out, high, ["fid"], features="domain", domain=dataset, data_root=args.data_root,
                       progress=False)["fid"]
        rows[method] = {"psnr": round(p, 2), "ssim": round(s, 4), "domain_fid": round(fid, 2)}
    results[f"sr-{dataset}"] = {"test_images": len(high), **rows}
    return strip([low[:8], outs["bicubic"][:8], outs["srresnet"][:8], outs["srgan"][:8], high[:8]], (56, 56))


def sr_photos(seconds: float, args, work: Path, log: dict, results: dict) -> torch.Tensor:
    run_dir, steps = run("sr-photos", load_preset("srgan-photos"), seconds, work, log, warmup_split)
    srresnet, srgan = sr_models(run_dir, steps)
    per = {m: [] for m in ("bicubic", "srresnet", "srgan")}
    crops = []
    for photo in skimage_photos("test"):
        low, high = sr_pairs(photo[None], scale=4)
        outs = {"bicubic": bicubic(low, 4), "srresnet": srresnet.translate(low), "srgan": srgan.translate(low)}
        for m, out in outs.items():
            per[m].append(psnr_ssim(out, high))
        y, x = high.shape[-2] // 3, high.shape[-1] // 3  # a 96x96 detail near the centre, for the picture
        crops.append([t[..., y:y + 96, x:x + 96] for t in (F.interpolate(low.float(), scale_factor=4,
                                                                          mode="nearest").to(torch.uint8),
                                                            outs["bicubic"], outs["srresnet"], outs["srgan"], high)])
    results["sr-photos"] = {"test_photos": len(per["bicubic"]), **{
        m: {"psnr": round(float(np.mean([v[0] for v in vals])), 2),
            "ssim": round(float(np.mean([v[1] for v in vals])), 4)} for m, vals in per.items()}}
    return torch.cat([strip(list(c), (96, 96)) for c in crops])


# ------------------------------------------------------------------------------------------ pix2pix


def pix2pix(seconds: float, args, work: Path, log: dict, results: dict, classifier) -> torch.Tensor:
    raw = merge(load_preset("pix2pix-edges"), {"data": {"root": args.data_root, "download": False}})
    run_dir, _ = run("pix2pix", raw, seconds, work, log)
    cfg = config_from_dict(merge(raw, {"data": {"split": "test", "limit": args.eval_num}}))
    test = load_dataset(cfg.data)
    sampler = load_sampler(run_dir, use_ema=False)
    out = batched(sampler, test.extras["a"])
    results["pix2pix-edges"] = {
        "test_images": len(out),
        "l1": round((out.float() - test.data.float()).abs().mean().item() / 255, 4),
        "l1_input": round((test.extras["a"].float() - test.data.float()).abs().mean().item() / 255, 4),
        "accuracy_translated": round(classifier_accuracy(classifier, out, test.labels), 4),
        "accuracy_edges": round(classifier_accuracy(classifier, test.extras["a"], test.labels), 4),
        "accuracy_real": round(classifier_accuracy(classifier, test.data, test.labels), 4),
    }
    return strip([test.extras["a"][:8], out[:8], test.data[:8]], (56, 56))


# ------------------------------------------------------------------------------------------ CycleGAN


def cyclegan(seconds: float, args, work: Path, log: dict, results: dict, classifier) -> torch.Tensor:
    raw = merge(load_preset("cyclegan-mnistm"), {"data": {"root": args.data_root, "download": False}})
    run_dir, _ = run("cyclegan", raw, seconds, work, log)
    cfg = config_from_dict(merge(raw, {"data": {"name": "mnist", "split": "test", "limit": None}}))
    digits = load_dataset(cfg.data)
    n = min(args.eval_num, len(digits) // 2)
    task = mnist_m_task(digits.data[:2 * n], digits.labels[:2 * n], seed=1, split="test")  # test photos only
    a, labels = task["a"], task["a_labels"]
    sampler = load_sampler(run_dir, use_ema=False)
    to_mnist = batched(sampler, a, "a2b")
    back = batched(sampler, to_mnist, "b2a")
    results["cyclegan-mnistm"] = {
        "test_images": len(a),
        "accuracy_translated": round(classifier_accuracy(classifier, to_mnist, labels), 4),
        "accuracy_untranslated": round(classifier_accuracy(classifier, a, labels), 4),
        "cycle_l1": round((back.float() - a.float()).abs().mean().item() / 255, 4),
    }
    return strip([a[:8], to_mnist[:8], back[:8]], (56, 56))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="/work/shared/data", help="MNIST / Fashion-MNIST files")
    parser.add_argument("--cpu-minutes", type=float, default=30.0, help="training budget, all runs together")
    parser.add_argument("--eval-num", type=int, default=10_000, help="test images per digit task")
    parser.add_argument("--tasks", default="sr,pix2pix,cyclegan", help="comma-separated subset")
    parser.add_argument("--out", default="benchmarks/image2image", help="prefix of the JSON and PNG outputs")
    parser.add_argument("--json", default=None, help="results file (default: OUT.json)")
    parser.add_argument("--work", default=None, help="run directories (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    budget = args.cpu_minutes * 60
    tasks = args.tasks.split(",")
    total_start = cpu_seconds()
    results: dict = {}
    log: dict = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        start = cpu_seconds()
        classifiers = {d: load_domain_extractor(d, data_root=args.data_root, progress=False).classifier
                       for d in ("mnist", "fashion-mnist")}
        log["classifiers_cpu_s"] = round(cpu_seconds() - start, 1)

        def report() -> None:  # after every task, so a failure later keeps what was measured
            log["total_cpu_s"] = round(cpu_seconds() - total_start, 1)
            text = json.dumps({"args": vars(args), "results": results, "runs": log, "torch": torch.__version__},
                              indent=2)
            Path(args.json or out.with_suffix(".json")).write_text(text + "\n")
            print(text, flush=True)

        if "sr" in tasks:
            digits = torch.cat([sr_digits("mnist", SHARES["sr-mnist"] * budget, args, work, log, results),
                                sr_digits("fashion-mnist", SHARES["sr-fashion-mnist"] * budget, args, work, log,
                                          results)])
            save_png(digits, out.with_name(out.name + "_sr_digits.png"))
            report()
            save_png(sr_photos(SHARES["sr-photos"] * budget, args, work, log, results),
                     out.with_name(out.name + "_sr_photos.png"))
            report()
        if "pix2pix" in tasks:
            save_png(pix2pix(SHARES["pix2pix"] * budget, args, work, log, results, classifiers["mnist"]),
                     out.with_name(out.name + "_pix2pix.png"))
            report()
        if "cyclegan" in tasks:
            save_png(cyclegan(SHARES["cyclegan"] * budget, args, work, log, results, classifiers["mnist"]),
                     out.with_name(out.name + "_cyclegan.png"))
            report()


if __name__ == "__main__":
    main()
