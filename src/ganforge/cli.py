"""The `ganforge` command line: subcommands only, each a thin call into the library.

Every user-facing error ends as one line `ganforge: error: ...` on stderr and exit status 2; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ganforge.errors import GanforgeError


def _train(args: argparse.Namespace) -> int:
    from ganforge import config as C
    from ganforge.api import resolve_raw
    from ganforge.train import distributed
    from ganforge.train.trainer import train

    if args.resume:
        if (args.preset or args.dataset or args.set or args.config or args.out or args.data_root
                or args.image_size or args.channels is not None or args.resize or args.labels_per_class is not None):
            raise GanforgeError("--resume continues a run with its own config; only --steps/--epochs (and --logger) "
                                "may change")
        run_dir = Path(args.resume)
        raw = C.load_config_file(run_dir / "config.yaml")
        if args.steps is not None:
            raw.setdefault("train", {})["steps"] = args.steps
            raw["train"]["epochs"] = None
        if args.epochs is not None:
            raw.setdefault("train", {})["epochs"] = args.epochs
        if args.seed is not None:
            raw.setdefault("train", {})["seed"] = args.seed
        if args.no_progress:
            raw.setdefault("train", {})["progress"] = False
    else:
        # preset, --config, the flags, then --set; data named without a preset or family gets a model that fits
        flags = ((["train.progress=false"] if args.no_progress else [])
                 + ([f"model.labels_per_class={args.labels_per_class}"] if args.labels_per_class is not None else []))
        raw, note = resolve_raw(args.preset, config=args.config, dataset=args.dataset, data_root=args.data_root,
                                image_size=_parse_size(args.image_size) if args.image_size else None,
                                channels=args.channels, resize=args.resize, steps=args.steps, epochs=args.epochs,
                                seed=args.seed, overrides=flags + (args.set or []))
        if note:
            print(f"ganforge: {note}", file=sys.stderr)
    if args.logger:  # also on --resume: where the scalars go is no part of the run
        raw.setdefault("train", {})["logger"] = args.logger
    cfg = C.config_from_dict(raw)
    if args.dry_run:
        print(cfg.to_yaml(), end="")
        return 0
    with distributed.session(cfg.train.device) as dist_info:  # under torchrun: one DDP job; else a no-op
        if not args.resume:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = Path(args.out) if args.out else Path("runs") / f"{args.preset or 'default'}-{stamp}"
            run_dir = distributed.broadcast_object(run_dir)  # one directory for all ranks: rank 0's clock
        result = train(cfg, run_dir, resume=bool(args.resume), overwrite=args.overwrite)
    if not dist_info.is_main:
        return 0
    grids = sorted((result.run_dir / "samples").glob("*.png"))
    print(f"run directory: {result.run_dir}  (steps: {result.step}"
          + (f", stopped early: {result.stopped_by}" if result.stopped_by else "") + ")")
    if grids:
        print(f"last sample grid: {grids[-1]}")
    return 0


def _parse_size(text: str) -> list[int]:
    """--image-size: "64" (square) or "HxW" such as "64x48"."""
    parts = text.lower().split("x")
    try:
        size = [int(part) for part in parts]
    except ValueError:
        size = []
    if len(size) not in (1, 2) or any(side <= 0 for side in size):
        raise GanforgeError(f"--image-size must be S or HxW with positive integers (e.g. 64 or 64x48), got {text!r}")
    return size


def _generate(args: argparse.Namespace) -> int:
    from ganforge.controls import parse_classes, parse_codes, parse_sweep, sample_layout
    from ganforge.sampling import write_outputs
    from ganforge.saved import load_for_sampling
    from ganforge.style_tools import truncation_controls, truncation_sweep

    if args.truncation_sweep is not None and args.truncation is None:
        return truncation_sweep(args)  # every sample at every psi (style models)
    if args.num <= 0:
        raise GanforgeError(f"--num must be > 0, got {args.num}")
    controls = truncation_controls(args)  # {} or {"truncation": psi}; an error for a model without it
    loaded = load_for_sampling(args.checkpoint, use_ema=not args.no_ema)
    sampler = loaded.sampler
    if sampler.task != "generate":
        raise GanforgeError(f"{args.checkpoint} holds a {sampler.task} model; `ganforge generate` needs a noise model")
    classes = parse_classes(args.classes, sampler.num_classes) if args.classes is not None else None
    codes = parse_codes(args.code, sampler.codes) if args.code else None
    sweep = parse_sweep(args.sweep, sampler.codes) if args.sweep else None
    # The run's own sample section refines plain noise samples only: not beside --best-of, codes, sweeps or truncation
    plain = args.best_of == 1 and not (codes or sweep or controls)
    args.refine_steps, args.refine_step_size = _refine_settings(args, loaded.sample, plain=plain)
    if args.best_of != 1 or args.refine_steps:
        layout = _critic_layout(args, loaded, classes, codes or sweep or controls)
    else:
        layout = sample_layout(sampler, args.num, seed=args.seed, classes=classes, codes=codes, sweep=sweep,
                               grid=args.grid, batch_size=args.batch_size, controls=controls)
    paths = write_outputs(layout.samples, Path(args.out), fmt=args.format, grid=args.grid, overwrite=args.overwrite,
                          nrow=layout.nrow)
    print(f"wrote {len(layout.samples)} samples to {paths[0] if len(paths) == 1 else Path(args.out)}")
    return 0


def _critic_layout(args: argparse.Namespace, loaded, classes: list[int] | None, other_controls):
    """`generate --best-of N` (samples ranked by the run's D) or `--refine-steps N` (noise moved uphill on it): a
    conditional model's classes cycle, or with --grid fill one row each (with --best-of each row its class's best,
    not one noise down each column as a plain grid)."""
    import math

    import torch

    from ganforge.controls import Layout
    from ganforge.sampling import class_cycle
    from ganforge.saved import critic_guided_samples

    sampler = loaded.sampler
    flag = "--best-of" if args.best_of != 1 else "--refine-steps"
    if args.best_of < 1:
        raise GanforgeError(f"--best-of must be >= 1, got {args.best_of}")
    if other_controls:
        raise GanforgeError(f"{flag} takes noise and --class only, not --code, --sweep or --truncation")
    labels, nrow, num = None, None, args.num
    if sampler.num_classes:
        class_list = torch.tensor(classes) if classes else torch.arange(sampler.num_classes)
        if args.grid:
            nrow = math.ceil(num / len(class_list))
            labels = class_list.repeat_interleave(nrow)
            num = len(labels)
        else:
            labels = class_list[class_cycle(num, len(class_list))]
    samples = critic_guided_samples(sampler, loaded.critic(), num, best_of=args.best_of,
                                    refine_steps=args.refine_steps, refine_step_size=args.refine_step_size,
                                    seed=args.seed, labels=labels, batch_size=args.batch_size)
    return Layout(samples, nrow)


def _translate(args: argparse.Namespace) -> int:
    from ganforge.sampling import translate_files
    from ganforge.saved import load_sampler

    sampler = load_sampler(args.checkpoint, use_ema=not args.no_ema)
    wanted = "upscale" if args.command == "upscale" else "translate"
    if sampler.task != wanted:
        raise GanforgeError(f"{args.checkpoint} holds a {sampler.task} model; `ganforge {args.command}` needs "
                            f"{'an' if wanted == 'upscale' else 'a'} {wanted} model")
    paths = translate_files(sampler, Path(args.images), Path(args.out), direction=getattr(args, "direction", None),
                            overwrite=args.overwrite)
    print(f"wrote {len(paths)} image(s) to {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from ganforge.devices import select_device
    from ganforge.metrics.evaluate import default_metrics, evaluate, format_results
    from ganforge.metrics.sources import resolve_fake
    from ganforge.saved import evaluate_checkpoint

    if (args.checkpoint is None) == (args.fake is None):
        raise GanforgeError("evaluate takes a run directory / checkpoint, or --fake DIR_OR_NPZ (with --real), not "
                            "both")
    for flag, value in (("--num", args.num), ("--num-real", args.num_real), ("--batch-size", args.batch_size)):
        if value is not None and value <= 0:
            raise GanforgeError(f"{flag} must be > 0, got {value}")
    json_path = Path(args.json) if args.json else None
    if json_path is not None and json_path.exists() and not args.overwrite:
        raise GanforgeError(f"{json_path} exists; pass --overwrite to replace it")
    common = dict(features=args.features, resize=args.resize, inception=args.inception, domain=args.domain,
                  data_root=args.data_root, num_real=args.num_real, batch_size=args.batch_size,
                  device=select_device(args.device), progress=not args.no_progress, seed=args.seed)
    if args.fake is not None:
        if args.best_of != 1 or args.refine_steps:
            raise GanforgeError("--best-of and --refine-steps use a run's own D; with --fake there is no D")
        if args.real is None and not args.metrics:
            raise GanforgeError("--fake needs --real DATASET_OR_DIR (or --metrics that need no real data)")
        fake = resolve_fake(args.fake, limit=args.num)
        metrics = args.metrics or default_metrics(fake.is_image)  # "fid,pr": evaluate() parses the list
        results = evaluate(fake, args.real, metrics, **common)
    else:
        metrics = args.metrics or None
        results = evaluate_checkpoint(args.checkpoint, metrics, num=args.num or 10_000, real=args.real,
                                      use_ema=not args.no_ema, best_of=args.best_of,
                                      refine_steps=args.refine_steps, refine_step_size=args.refine_step_size,
                                      **common)
    print(format_results(results))
    if json_path is not None:
        from ganforge.fileio import atomic_write_bytes

        atomic_write_bytes(json_path, (json.dumps(results, indent=2) + "\n").encode())
        print(f"wrote {json_path}")
    return 0


def _classify(args: argparse.Namespace) -> int:
    from ganforge.classify import check_classifier, classify, write_predictions
    from ganforge.saved import load_sampler

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.overwrite:  # before any work
        raise GanforgeError(f"{out} exists; pass --overwrite to replace it")
    sampler = load_sampler(args.checkpoint)
    check_classifier(sampler, args.checkpoint)
    result = classify(sampler, args.data, data_root=args.data_root)
    if result.accuracy is not None:
        print(f"accuracy {result.accuracy:.4%} ({int((result.predictions == result.labels).sum())} of "
              f"{len(result.labels)})")
    else:
        print(f"classified {len(result.probabilities)} images (no labels: no accuracy)")
    if out is not None:
        write_predictions(result, out, overwrite=args.overwrite)
        print(f"wrote {out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ganforge.reporting import write_report

    html, gif = write_report(args.run_dir, args.out, gif=False if args.no_gif else args.gif,
                             max_frames=args.max_frames, overwrite=args.overwrite)
    print(f"wrote {html}" + (f" and {gif}" if gif else ""))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ganforge.saved import load_for_sampling
    from ganforge.serve import check_server_packages, serve

    check_server_packages()  # before the model loads: a missing extra is the first thing to hear about
    loaded = load_for_sampling(args.checkpoint, use_ema=not args.no_ema)
    # Served as `generate` draws it: refined on the run's D when its preset (or the flag) says so.
    sampler, refine = loaded.sampler, _refinement(args, loaded, plain=True)
    del loaded  # the checkpoint as read (optimizer states too) is not kept for the server's lifetime
    serve(sampler, refine=refine, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
          name=args.checkpoint)
    return 0


def _refine_settings(args: argparse.Namespace, stored, *, plain: bool) -> tuple[int, float]:
    """(steps, step size) of latent refinement: --refine-steps / --refine-step-size, or else the run's sample
    section `stored`, whose steps apply to plain noise samples only (`plain`)."""
    steps = args.refine_steps if args.refine_steps is not None else stored.refine_steps if plain else 0
    step_size = stored.refine_step_size if args.refine_step_size is None else args.refine_step_size
    return steps, step_size


def _refinement(args: argparse.Namespace, loaded, *, plain: bool):
    """The Refinement that `_refine_settings` asks for, or None; builds the run's D (saved.LoadedForSampling) only
    when it is needed."""
    from ganforge.refine import Refinement

    steps, step_size = _refine_settings(args, loaded.sample, plain=plain)
    return Refinement(loaded.critic(), steps, step_size) if steps else None


def _interpolate(args: argparse.Namespace) -> int:
    from ganforge.interpolation import interpolate, write_interpolation
    from ganforge.saved import load_for_sampling

    loaded = load_for_sampling(args.checkpoint, use_ema=not args.no_ema)
    sampler = loaded.sampler
    from_seed = args.seed if args.from_seed is None else args.from_seed
    to_seed = from_seed + 1 if args.to_seed is None else args.to_seed
    refine = _refinement(args, loaded, plain=args.space == "z" and args.truncation in (None, 1.0))
    images = interpolate(sampler, steps=args.steps, method=args.method, space=args.space, from_seed=from_seed,
                         to_seed=to_seed, rows=args.rows, label=args.label, truncation=args.truncation,
                         refine=refine)
    path = write_interpolation(images, args.out, fps=args.fps, overwrite=args.overwrite)
    print(f"wrote {path} ({args.rows} path(s) x {args.steps} steps)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ganforge.export import export_sampler
    from ganforge.saved import load_for_sampling

    loaded = load_for_sampling(args.checkpoint, use_ema=not args.no_ema)
    sampler, stored = loaded.sampler, loaded.sample
    path = export_sampler(sampler, args.format, args.out, overwrite=args.overwrite)
    print(f"wrote {path} ({args.format}, {sampler.task} model)")
    if stored.refine_steps:  # what was exported is G alone: say so rather than let its samples surprise
        print(f"note: this run refines its samples on its D ({stored.refine_steps} steps, sample.refine_steps); the "
              f"export holds G only, so it draws plain samples (`ganforge generate {args.checkpoint}` refines)")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from ganforge.config import preset_description, preset_names

    if args.markdown:
        from ganforge.catalog import families_table, presets_table

        print(families_table() + "\n\n" + presets_table())
        return 0
    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def add_refine_args(p: argparse.ArgumentParser) -> None:
    """--refine-steps / --refine-step-size (generate, evaluate, serve, interpolate): latent refinement by the run's D
    (ganforge.refine)."""
    p.add_argument("--refine-steps", type=int, metavar="N",
                   help="move each sample's noise N gradient steps uphill on the run's discriminator's logit before "
                   "decoding it (ganforge.refine; needs a run directory or checkpoint; default: the run's "
                   "sample.refine_steps, 0 unless its preset sets it; 0: off)")
    p.add_argument("--refine-step-size", type=float, metavar="S",
                   help="latent step size of --refine-steps (default: the run's sample.refine_step_size, 0.03)")


def build_parser() -> argparse.ArgumentParser:
    from ganforge import style_tools  # its parser pieces (torch is imported only when a command runs)

    parser = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and use GANs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a GAN (default: DCGAN on scikit-learn's digits, offline)",
                       description="Train from a preset (--preset), a YAML file (--config), the flags below and "
                       "--set overrides, in that order. Naming only data (--dataset) picks a model that fits it: "
                       "the toy MLP GAN for 2-D points, DCGAN at the data's size for images. Writes RUN/config.yaml, "
                       "metrics.jsonl, samples/, checkpoints/ and health.txt.")
    p.add_argument("--preset", help="preset name (see `ganforge presets`); default: default")
    p.add_argument("--config", help="a YAML config file merged over the preset (its `extends: NAME` names the preset)")
    p.add_argument("--dataset", help="dataset name, e.g. digits, mnist, fashion-mnist, cifar10, ring, grid, folder")
    p.add_argument("--data-root", help="folder with the dataset files (the image folder for `folder`)")
    p.add_argument("--image-size", metavar="S|HxW", help="resize the images to S x S or H x W, e.g. 64 or 64x48")
    p.add_argument("--channels", type=int, choices=[1, 3, 4], help="convert the images to this many channels")
    p.add_argument("--resize", choices=["resize", "center-crop"],
                   help="how images reach --image-size: stretch (resize, default) or center-crop then resize")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--steps", type=int, help="training steps (with --resume: total steps to reach)")
    group.add_argument("--epochs", type=float, help="training epochs (overrides steps)")
    p.add_argument("--out", help="run directory (default: runs/PRESET-TIMESTAMP)")
    p.add_argument("--seed", type=int, help="seed for weights, data order and noise")
    p.add_argument("--labels-per-class", type=int, metavar="N",
                   help="semi-supervised (model.family=ssgan): labelled examples per class, chosen by the seed")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. train.lr_g=2e-4")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--logger", choices=["tensorboard", "jsonl", "none"],
                   help="also log to TensorBoard (RUN/tb; the tensorboard extra), or only to metrics.jsonl, which "
                   "every run writes (jsonl, none; default: train.logger)")
    p.set_defaults(func=_train)

    p = sub.add_parser("generate", help="write samples from a checkpoint (no dataset needed)",
                       description="Write --num samples of a run (its last checkpoint, the EMA of G when kept), a "
                       "checkpoint file or a save_pretrained folder: PNG files, one grid (--grid) or one .npz.")
    p.add_argument("checkpoint", help="a run directory or a checkpoint file")
    p.add_argument("--num", type=int, default=64, help="how many samples")
    p.add_argument("--out", required=True, help="output directory (or .npz / .png file)")
    p.add_argument("--format", default="png", choices=["png", "npz"], help="PNG files or one .npz")
    p.add_argument("--grid", action="store_true", help="one grid image instead of one PNG per sample (conditional "
                   "models: one row per class)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same samples)")
    p.add_argument("--class", "--label", dest="classes", metavar="K[,K...]",
                   help="class(es) to generate, e.g. 3 or 0,1,2 (conditional models); with --grid one row each")
    p.add_argument("--code", action="append", metavar="NAME=VALUE",
                   help="fix a latent code (InfoGAN), e.g. c0=3; repeat or comma-separate for several")
    p.add_argument("--sweep", metavar="NAME[=START:STOP:STEPS]",
                   help="vary one code with the rest fixed, e.g. c1=-2:2:8 (a categorical code alone: every value); "
                   "with --grid one row per noise, one column per value")
    p.add_argument("--batch-size", type=int, default=256, help="generation batch size")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    p.add_argument("--best-of", type=int, default=1, metavar="N",
                   help="draw N times --num samples and keep the --num the run's discriminator scores most real "
                   "(per class; needs a run directory or checkpoint)")
    add_refine_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    style_tools.add_generate_args(p)  # --truncation, --truncation-sweep
    p.set_defaults(func=_generate)
    style_tools.add_style_mix_parser(sub)  # ganforge style-mix

    for name, text in (("translate", "translate images with an image-to-image model (pix2pix, CycleGAN, ...)"),
                       ("upscale", "upscale images with a super-resolution model (SRGAN, SRResNet)")):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ": one PNG per input image, "
                           "named after it; every input is read and converted before anything is written.")
        p.add_argument("checkpoint", help="a run directory, a checkpoint file or a save_pretrained folder")
        p.add_argument("images", help="an image file or a folder of images")
        p.add_argument("--out", required=True, help="output folder: one PNG per input, with the input's name")
        if name == "translate":
            p.add_argument("--direction", help="a2b or b2a (models that translate both ways); default: the first")
        p.add_argument("--no-ema", action="store_true", help="use the raw network, not its EMA")
        p.add_argument("--overwrite", action="store_true", help="replace existing output files")
        p.set_defaults(func=_translate)

    p = sub.add_parser("evaluate", help="score generated samples: FID, KID, precision/recall, modes, ...",
                       description="Score a run's generator (RUN_OR_CHECKPOINT) or a set of samples (--fake) "
                       "against real data. Metrics: fid, kid, is, precision, recall (pr), density, coverage (dc), "
                       "modes (2D toy data), stacked_mnist, classes (class mix vs the data's), gan_test, cas.")
    p.add_argument("checkpoint", nargs="?", help="a run directory or checkpoint file to sample from")
    p.add_argument("--fake", help="generated samples instead: an .npz (`generate --format npz`) or image folder")
    p.add_argument("--real", help="real data: a dataset (mnist, mnist:test, ring, ...), image folder or .npz; "
                   "default for a run: its training data")
    p.add_argument("--metrics", help="comma-separated metric names (default: fid,kid,pr; modes,pr for 2D points)")
    p.add_argument("--num", type=int, help="samples to generate (default 10000) or to read from --fake (default all)")
    p.add_argument("--num-real", type=int, help="a seeded subset of this many real samples (default: all)")
    p.add_argument("--features", default="domain", choices=["domain", "inception", "inception-bf16"],
                   help="image features: domain (fast CPU classifier, MNIST/Fashion), inception (the FID network) "
                   "or inception-bf16 (that network in bfloat16: faster on CPUs with native bf16; other features, "
                   "not for published comparisons)")
    p.add_argument("--resize", default="clean", choices=["clean", "legacy"],
                   help="Inception resize protocol: clean (antialiased bicubic) or legacy (bilinear, as TF)")
    p.add_argument("--inception", help="Inception weights file (default: $GANFORGE_INCEPTION, cache, download)")
    p.add_argument("--domain", help="domain classifier to use (mnist, fashion-mnist); default: the real dataset's")
    p.add_argument("--data-root", help="folder with the dataset files")
    p.add_argument("--json", help="also write the results, keyed by metric name, to this JSON file")
    p.add_argument("--seed", type=int, default=0, help="noise seed and subset seed")
    p.add_argument("--batch-size", type=int, help="feature-extraction batch size")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a torch device")
    p.add_argument("--no-ema", action="store_true", help="sample the raw generator, not its EMA")
    p.add_argument("--best-of", type=int, default=1, metavar="N",
                   help="score the best --num of N times --num samples by the run's discriminator (generate "
                   "--best-of)")
    add_refine_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("classify", help="classify images with a trained classifier (a semi-supervised GAN's D)",
                       description="Run a trained classifier (the D of a semi-supervised GAN) on a dataset, a folder "
                       "or an .npz: prints the accuracy where labels exist and writes one CSV row per image "
                       "(--out).")
    p.add_argument("checkpoint", help="a run directory, a checkpoint file or a save_pretrained folder")
    p.add_argument("--data", required=True, help="a dataset (mnist:test), a folder of images (class subfolders "
                   "0/, 1/, ... give labels) or an .npz (images, optional labels)")
    p.add_argument("--out", help="write per-image predictions to this CSV")
    p.add_argument("--data-root", help="folder with the dataset files")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_classify)

    p = sub.add_parser("report", help="write a self-contained HTML report of a run (also while it trains)",
                       description="One HTML page, no network needed: loss and metric curves, the fixed-noise "
                       "grids' evolution (slider, play), final samples, health events with remedies, the evaluation "
                       "table and the config; and a GIF of the grids. Works on a run still training (a snapshot) "
                       "or killed mid-way.")
    p.add_argument("run_dir", help="a run directory")
    p.add_argument("--out", help="HTML file to write (default: RUN_DIR/report.html)")
    p.add_argument("--gif", help="training-progress GIF to write (default: beside the HTML, NAME-progress.gif)")
    p.add_argument("--no-gif", action="store_true", help="write no GIF")
    p.add_argument("--max-frames", type=int, default=48, help="at most this many grids, evenly spaced (default 48)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files that are not earlier reports")
    p.set_defaults(func=_report)

    p = sub.add_parser("serve", help="a latent explorer in the browser: sample, classes, codes, interpolate",
                       description="Serve a page to explore a trained model: seeds, classes, InfoGAN codes, "
                       "truncation, interpolation between two samples, image download; for translate/upscale "
                       "models, upload an image and get the output. Stop it with Ctrl-C.")
    p.add_argument("checkpoint", help="a run directory, a checkpoint file or a save_pretrained folder")
    p.add_argument("--port", type=int, default=7860, help="TCP port (default 7860; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--max-upload-mb", type=float, default=8.0, help="largest image upload accepted (default 8 MB)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    add_refine_args(p)
    p.set_defaults(func=_serve)

    p = sub.add_parser("interpolate", help="images along a path through latent space (GIF or PNG strip)",
                       description="Walk from one latent to another (seeds --from-seed, --to-seed) and write the "
                       "images: an animated GIF (--out x.gif) or a PNG strip (--out x.png), a row per path.")
    p.add_argument("checkpoint", help="a run directory, a checkpoint file or a save_pretrained folder")
    p.add_argument("--out", required=True, help="output file: .gif (animation) or .png (strip)")
    p.add_argument("--steps", type=int, default=16, help="images along each path, endpoints included")
    p.add_argument("--method", choices=["linear", "slerp"],
                   help="linear or spherical interpolation (default: slerp in z, linear in w)")
    p.add_argument("--space", default="z", choices=["z", "w"], help="z: the noise; w: a style model's mapped latent")
    p.add_argument("--seed", type=int, default=0, help="start seed (the end is seed + 1) unless --from/--to-seed")
    p.add_argument("--from-seed", type=int, help="seed of the start latents")
    p.add_argument("--to-seed", type=int, help="seed of the end latents")
    p.add_argument("--rows", type=int, default=1, help="independent paths (rows of the strip)")
    p.add_argument("--class", dest="label", type=int, help="class of every path (conditional models; default: "
                   "row i gets class i)")
    p.add_argument("--truncation", type=float, help="style models: truncation psi in [0, 1]")
    p.add_argument("--fps", type=float, default=8.0, help="GIF frames per second")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_refine_args(p)
    p.set_defaults(func=_interpolate)

    p = sub.add_parser("export", help="export a trained model: ONNX, TorchScript or safetensors + JSON",
                       description="Export the model a user runs (G or its EMA; never D or optimizers). ONNX and "
                       "TorchScript take z (B, latent_dim) [+ labels (B,) int64] and return samples in [-1, 1] "
                       "(image-to-image models: images in, images out); safetensors writes a folder that "
                       "ganforge.load_sampler reads back.")
    p.add_argument("checkpoint", help="a run directory, a checkpoint file or a save_pretrained folder")
    p.add_argument("--format", required=True, choices=["onnx", "torchscript", "safetensors"],
                   help="onnx (needs the export extra), torchscript, or safetensors (a folder)")
    p.add_argument("--out", required=True, help="output file (.onnx, .pt) or, for safetensors, a folder")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator, not its EMA")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_export)

    p = sub.add_parser("presets", help="list the presets", description="List the shipped presets, one line each.")
    p.add_argument("--markdown", action="store_true", help="the families and presets as Markdown tables (README)")
    p.set_defaults(func=_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GanforgeError as err:
        if args.debug:
            raise
        print(f"ganforge: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the user's files and disks: full, read-only, missing, a folder where a file goes
        if args.debug:
            raise
        where = f": {err.filename}" if err.filename else ""
        print(f"ganforge: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
