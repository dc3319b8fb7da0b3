"""Tools for style-based models: truncation for `ganforge generate`, and the `ganforge style-mix` grid.

`generate --truncation PSI` pulls every w towards the average w tracked in training (psi 1: none, 0: the
average image); `generate --truncation-sweep 1,0.7,0.5,0` renders each sample at every psi (a row per sample, a
column per psi with `--grid`). `style-mix` is the crossover figure of the StyleGAN paper: column sources on
top, row destinations on the left, and each cell the destination with the coarse, middle or fine layers' w taken
from the column's source.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ganforge.errors import GanforgeError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI builds its parser from this module
    from torch import Tensor

MAX_PSI = 2.0  # beyond this, truncation extrapolates so far that images break up: refused


def parse_psi(text: str, flag: str = "--truncation") -> float:
    """One truncation value: a finite number in [0, MAX_PSI]."""
    try:
        psi = float(text)
    except (TypeError, ValueError):
        raise GanforgeError(f"{flag} needs numbers in [0, {MAX_PSI:g}], got {text!r}") from None
    if not math.isfinite(psi) or not 0.0 <= psi <= MAX_PSI:
        raise GanforgeError(f"{flag} values must be in [0, {MAX_PSI:g}], got {text!r}")
    return psi


def parse_sweep(text: str) -> list[float]:
    """`1,0.7,0.5,0` -> [1.0, 0.7, 0.5, 0.0]."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p for p in parts):
        raise GanforgeError(f"--truncation-sweep needs comma-separated numbers such as 1,0.7,0.5,0, got {text!r}")
    return [parse_psi(p, "--truncation-sweep") for p in parts]


def add_generate_args(parser: argparse.ArgumentParser) -> None:
    """`generate`'s truncation flags."""
    parser.add_argument("--truncation", metavar="PSI", help="truncation psi in [0, 2] (style models): pull w "
                        "towards its average; 1 = none, 0.7 = typical, 0 = the average image")
    parser.add_argument("--truncation-sweep", metavar="PSI,PSI,...", help="render each sample at every psi "
                        "(style models); with --grid one image, a row per sample and a column per psi")


def _load_truncating_sampler(args: argparse.Namespace):
    from ganforge.saved import load_sampler

    sampler = load_sampler(args.checkpoint, use_ema=not args.no_ema)
    if not getattr(sampler, "supports_truncation", False):
        raise GanforgeError(f"{args.checkpoint} holds a {sampler.config.family} model, which has no truncation "
                            f"(only style-based models such as stylegan2 have a w space to truncate)")
    return sampler


def truncation_controls(args: argparse.Namespace) -> dict[str, float]:
    """{} or {"truncation": psi} for `generate`'s sampling call; errors for models without truncation."""
    if getattr(args, "truncation", None) is None:
        return {}
    if getattr(args, "truncation_sweep", None):
        raise GanforgeError("pass --truncation or --truncation-sweep, not both")
    psi = parse_psi(args.truncation)
    _load_truncating_sampler(args)
    return {"truncation": psi}


def truncation_sweep(args: argparse.Namespace) -> int:
    """`generate --truncation-sweep`: every sample at every psi; a grid, one folder per psi, or an .npz."""
    import torch
    from torchvision.utils import make_grid, save_image

    from ganforge.sampling import generate, write_outputs

    if args.num <= 0:
        raise GanforgeError(f"--num must be > 0, got {args.num}")
    values = parse_sweep(args.truncation_sweep)
    sampler = _load_truncating_sampler(args)
    labels = _labels(args, sampler)
    # Same seed for every psi: the same z, so each row shows one sample moving towards the average.
    per_psi = [generate(sampler, args.num, seed=args.seed, batch_size=args.batch_size, labels=labels, truncation=psi)
               for psi in values]
    out = Path(args.out)
    if args.grid or args.format == "npz":
        rows = torch.stack(per_psi, dim=1).flatten(0, 1)  # (num * len(values), C, H, W): row-major by sample
        if args.format == "npz":
            target = write_outputs(rows, out, fmt="npz", grid=False, overwrite=args.overwrite)[0]
        else:
            target = out if out.suffix == ".png" else out / "grid.png"
            if target.exists() and not args.overwrite:
                raise GanforgeError(f"{target} exists; pass --overwrite to replace it")
            target.parent.mkdir(parents=True, exist_ok=True)
            save_image(make_grid(rows.float() / 255.0, nrow=len(values)), target)
        print(f"wrote {args.num} samples x {len(values)} truncation values (psi {', '.join(map(str, values))}) "
              f"to {target}")
        return 0
    folders = [out / f"psi-{psi:g}" for psi in values]
    for folder in folders:  # refuse before writing anything
        if folder.exists() and any(folder.iterdir()) and not args.overwrite:
            raise GanforgeError(f"output directory {folder} is not empty; pass --overwrite to write into it")
    for folder, samples in zip(folders, per_psi):
        write_outputs(samples, folder, fmt="png", grid=False, overwrite=args.overwrite)
    print(f"wrote {args.num} samples at each of {len(values)} truncation values to {out}/psi-*")
    return 0


def _labels(args: argparse.Namespace, sampler) -> Tensor | None:
    """generate's --class (one class or a list, cycled over the samples), checked against the model."""
    import torch

    from ganforge.controls import parse_classes
    from ganforge.sampling import class_cycle

    text = getattr(args, "classes", None)
    if text is None:
        return None
    classes = torch.tensor(parse_classes(text, sampler.num_classes))
    return classes[class_cycle(args.num, len(classes))]


# ------------------------------------------------------------------------------------------------ style-mix

GROUPS = ("coarse", "middle", "fine")


def style_mix_grid(sampler, *, rows: int, cols: int, seed: int = 0, groups: tuple[str, ...] = GROUPS,
                   truncation: float = 1.0) -> Tensor:
    """The crossover figure as one uint8 image (C, H', W').

    Layout: the top row holds the `cols` column sources (after an empty corner); then for each group a block of
    `rows` rows: the row's destination image, then the destination with that group's layers' w taken from each
    column source. Row and column sources come from `seed` (rows first), labels cycling through the classes.
    """
    import torch
    from torchvision.utils import make_grid

    from ganforge.sampling import class_cycle, to_output

    if rows < 1 or cols < 1:
        raise GanforgeError(f"--rows and --cols must be >= 1, got {rows} and {cols}")
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise GanforgeError(f"--styles must name some of {', '.join(GROUPS)}, got {', '.join(groups) or 'none'}")
    with torch.no_grad():
        G = sampler.G
        device = sampler.device
        rng = torch.Generator().manual_seed(seed)
        z = sampler.sample_latent(rows + cols, generator=rng).to(device)
        labels = class_cycle(rows + cols, sampler.num_classes)
        labels = None if labels is None else labels.to(device)
        w = sampler.to_w(z, labels, truncation)  # (rows + cols, w_dim)
        ws = w.unsqueeze(1).expand(-1, sampler.num_ws, -1)  # (N, num_ws, w_dim)
        dst, src = ws[:rows], ws[rows:]
        bounds = G.layer_groups()
        images = sampler.from_w(ws)  # (rows + cols, C, H, W)
        blank = torch.full_like(images[:1], -1.0)
        cells = [blank, images[rows:]]
        for group in groups:
            start, stop = bounds[group]
            for r in range(rows):
                mixed = dst[r : r + 1].expand(cols, -1, -1).clone()
                mixed[:, start:stop] = src[:, start:stop]
                cells += [images[r : r + 1], sampler.from_w(mixed)]
        grid = torch.cat(cells)  # (1 + cols + len(groups) * rows * (1 + cols), C, H, W) in row-major order
        return make_grid(to_output(grid.float().cpu(), True).float() / 255.0, nrow=cols + 1, padding=1,
                         pad_value=1.0).mul(255).round().to(torch.uint8)


def style_mix_command(args: argparse.Namespace) -> int:
    """`ganforge style-mix RUN --rows 4 --cols 4 --out mix.png`."""
    from torchvision.utils import save_image

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise GanforgeError(f"--out must be a .png file, got {args.out!r}")
    if out.exists() and not args.overwrite:
        raise GanforgeError(f"{out} exists; pass --overwrite to replace it")
    groups = tuple(g.strip() for g in args.styles.split(",") if g.strip())
    psi = parse_psi(args.truncation) if args.truncation is not None else 1.0
    if args.rows < 1 or args.cols < 1:
        raise GanforgeError(f"--rows and --cols must be >= 1, got {args.rows} and {args.cols}")
    from ganforge.saved import load_sampler

    sampler = load_sampler(args.checkpoint, use_ema=not args.no_ema)
    if not hasattr(sampler, "from_w"):
        raise GanforgeError(f"{args.checkpoint} holds a {sampler.config.family} model; style mixing needs a "
                            f"style-based model (stylegan2) with per-layer w")
    grid = style_mix_grid(sampler, rows=args.rows, cols=args.cols, seed=args.seed, groups=groups, truncation=psi)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid.float() / 255.0, out)
    print(f"wrote a {args.rows}x{args.cols} style-mixing grid ({', '.join(groups)} styles) to {out}")
    return 0


def add_style_mix_parser(sub) -> None:
    p = sub.add_parser("style-mix", help="style-mixing grid of a style model: coarse/middle/fine crossovers",
                       description="Top row: column sources; each block of rows: a destination (left) with the "
                       "coarse, middle or fine layers' styles of each column source.")
    p.add_argument("checkpoint", help="a run directory, a checkpoint file or a save_pretrained folder")
    p.add_argument("--rows", type=int, default=4, help="destination images (rows per style group)")
    p.add_argument("--cols", type=int, default=4, help="source images (columns)")
    p.add_argument("--styles", default="coarse,middle,fine", help="which layer groups to copy, comma-separated")
    p.add_argument("--out", required=True, help="output .png file")
    p.add_argument("--seed", type=int, default=0, help="noise seed of the sources")
    p.add_argument("--truncation", metavar="PSI", help="truncation psi in [0, 2] for every source (default 1)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=style_mix_command)
