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
    from ganforge.train import distributed
    from ganforge.train.trainer import train

    if args.resume:
        if (args.preset or args.dataset or args.set or args.config or args.out or args.data_root
                or args.image_size or args.channels is not None):
            raise GanforgeError("--resume continues a run with its own config; only --steps/--epochs may change")
        run_dir = Path(args.resume)
        raw = C.load_config_file(run_dir / "config.yaml")
    else:
        raw = C.load_preset(args.preset or "default")
        if args.config:
            raw = C.merge(raw, C.load_config_file(args.config))
    if args.dataset:
        C.apply_override(raw, f"data.name={args.dataset}")
    if args.data_root:
        raw.setdefault("data", {})["root"] = args.data_root
    if args.image_size:
        raw.setdefault("data", {})["image_size"] = _parse_size(args.image_size)
    if args.channels is not None:
        raw.setdefault("data", {})["channels"] = args.channels
    if args.steps is not None:
        raw.setdefault("train", {})["steps"] = args.steps
        raw["train"]["epochs"] = None
    if args.epochs is not None:
        raw.setdefault("train", {})["epochs"] = args.epochs
    if args.seed is not None:
        raw.setdefault("train", {})["seed"] = args.seed
    if args.no_progress:
        raw.setdefault("train", {})["progress"] = False
    for assignment in args.set or []:
        C.apply_override(raw, assignment)
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
    from ganforge.sampling import generate, write_outputs
    from ganforge.saved import load_generator
    from ganforge.style_tools import truncation_controls, truncation_sweep

    if args.truncation_sweep is not None and args.truncation is None:
        return truncation_sweep(args)  # every sample at every psi (style models)
    if args.num <= 0:
        raise GanforgeError(f"--num must be > 0, got {args.num}")
    controls = truncation_controls(args)  # {} or {"truncation": psi}; an error for a model without it
    generator = load_generator(args.checkpoint, use_ema=not args.no_ema)
    labels = None
    if args.label is not None:
        if not generator.num_classes:
            raise GanforgeError("--label needs a conditional generator; this one is unconditional")
        if not 0 <= args.label < generator.num_classes:
            raise GanforgeError(f"--label must be in [0, {generator.num_classes - 1}], got {args.label}")
        import torch

        labels = torch.full((args.num,), args.label, dtype=torch.long)
    samples = generate(generator, args.num, seed=args.seed, batch_size=args.batch_size, labels=labels, **controls)
    paths = write_outputs(samples, Path(args.out), fmt=args.format, grid=args.grid, overwrite=args.overwrite)
    print(f"wrote {args.num} samples to {paths[0] if len(paths) == 1 else Path(args.out)}")
    return 0


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
        if args.real is None and not args.metrics:
            raise GanforgeError("--fake needs --real DATASET_OR_DIR (or --metrics that need no real data)")
        fake = resolve_fake(args.fake, limit=args.num)
        metrics = args.metrics or default_metrics(fake.is_image)  # "fid,pr": evaluate() parses the list
        results = evaluate(fake, args.real, metrics, **common)
    else:
        metrics = args.metrics or None
        results = evaluate_checkpoint(args.checkpoint, metrics, num=args.num or 10_000, real=args.real,
                                      use_ema=not args.no_ema, **common)
    print(format_results(results))
    if json_path is not None:
        from ganforge.fileio import atomic_write_bytes

        atomic_write_bytes(json_path, (json.dumps(results, indent=2) + "\n").encode())
        print(f"wrote {json_path}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from ganforge.config import preset_description, preset_names

    names = preset_names()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ganforge import style_tools  # its parser pieces (torch is imported only when a command runs)

    parser = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and use GANs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a GAN (default: DCGAN on scikit-learn's digits, offline)")
    p.add_argument("--preset", help="preset name (see `ganforge presets`); default: default")
    p.add_argument("--config", help="a YAML config file merged over the preset")
    p.add_argument("--dataset", help="dataset name, e.g. digits, mnist, fashion-mnist, cifar10, ring, grid, folder")
    p.add_argument("--data-root", help="folder with the dataset files (the image folder for `folder`)")
    p.add_argument("--image-size", metavar="S|HxW", help="resize the images to S x S or H x W, e.g. 64 or 64x48")
    p.add_argument("--channels", type=int, choices=[1, 3, 4], help="convert the images to this many channels")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--steps", type=int, help="training steps (with --resume: total steps to reach)")
    group.add_argument("--epochs", type=float, help="training epochs (overrides steps)")
    p.add_argument("--out", help="run directory (default: runs/PRESET-TIMESTAMP)")
    p.add_argument("--seed", type=int, help="seed for weights, data order and noise")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. train.lr_g=2e-4")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    p = sub.add_parser("generate", help="write samples from a checkpoint (no dataset needed)")
    p.add_argument("checkpoint", help="a run directory or a checkpoint file")
    p.add_argument("--num", type=int, default=64, help="how many samples")
    p.add_argument("--out", required=True, help="output directory (or .npz / .png file)")
    p.add_argument("--format", default="png", choices=["png", "npz"], help="PNG files or one .npz")
    p.add_argument("--grid", action="store_true", help="one grid image instead of one PNG per sample")
    p.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same samples)")
    p.add_argument("--label", type=int, help="class to generate (conditional models)")
    p.add_argument("--batch-size", type=int, default=256, help="generation batch size")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    style_tools.add_generate_args(p)  # --truncation, --truncation-sweep
    p.set_defaults(func=_generate)
    style_tools.add_style_mix_parser(sub)  # ganforge style-mix

    for name, text in (("translate", "translate images with an image-to-image model (pix2pix, CycleGAN, ...)"),
                       ("upscale", "upscale images with a super-resolution model (SRGAN, SRResNet)")):
        p = sub.add_parser(name, help=text)
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
                       "modes (2D toy data), stacked_mnist, gan_test, cas.")
    p.add_argument("checkpoint", nargs="?", help="a run directory or checkpoint file to sample from")
    p.add_argument("--fake", help="generated samples instead: an .npz (`generate --format npz`) or image folder")
    p.add_argument("--real", help="real data: a dataset (mnist, mnist:test, ring, ...), image folder or .npz; "
                   "default for a run: its training data")
    p.add_argument("--metrics", help="comma-separated metric names (default: fid,kid,pr; modes,pr for 2D points)")
    p.add_argument("--num", type=int, help="samples to generate (default 10000) or to read from --fake (default all)")
    p.add_argument("--num-real", type=int, help="a seeded subset of this many real samples (default: all)")
    p.add_argument("--features", default="domain", choices=["domain", "inception"],
                   help="image features: domain (fast CPU classifier, MNIST/Fashion) or inception (the FID network)")
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
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("presets", help="list the presets")
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
