"""Why seed 001's DCGAN collapses on MNIST: one change at a time, scored by sample diversity and domain FID.

Seed 001's recipe (the `seed001` preset: batch 256, Adam 1e-4 with betas (0.9, 0.999), BCE on logits) gives one
identical texture for every sample within a few epochs, in ganforge and in the seed's own Keras code. Each row
below trains the seed's model with exactly one change from the seed (or none):

    seed              the recipe as written
    no-d-bn           D without batch norm (the TF DCGAN tutorial's D, which the seed follows, has none)
    d-bn-before-act   D's batch norm before its LeakyReLU instead of after
    g-bn-before-relu  G's batch norm before its ReLU (Radford et al.) instead of after
    dcgan-init        N(0, 0.02) weights (Radford et al.) instead of the layer defaults
    betas-0.5         Adam beta1 0.5 (Radford et al.) instead of 0.9

then the combinations that led to `seed001-fixed` (each single change still collapses within a few epochs at
batch 256), so that each of the fix's three changes can be left out in turn:

    no-d-bn-dropout           no-d-bn plus dropout 0.3 after each D block (the TF tutorial's D exactly)
    no-d-bn-betas-0.5         no-d-bn + betas-0.5
    no-d-bn-g-bn-before-relu  no-d-bn + g-bn-before-relu
    g-bn-before-relu-betas-0.5  g-bn-before-relu + betas-0.5 (the seed's D kept)
    fixed                     no-d-bn + g-bn-before-relu + betas-0.5: the `seed001-fixed` preset

and reports, at the end of each run: per-pixel std over 64 samples (one repeated texture ~0.03; real MNIST digits 0.38),
the diversity ratio (mean pairwise distance of 128 samples over that of real digits; collapse -> 0), D's
accuracy on real and fake in the last logging tick, and domain FID (`--num` samples of the generator against
10,000 training images; the MNIST classifier's features) at every `--eval-every` steps.

    python benchmarks/seed001_ablation.py --data-root /work/shared/data                 # 5 epochs each (full)
    python benchmarks/seed001_ablation.py --data-root /work/shared/data --steps 120 --batch-size 64 --threads 1

The full setting is the seed's (batch 256) for 1,172 steps (5 epochs, where the collapse was first measured).
A reduced run changes only the batch size and the length, and says so in its output. Grids of the final
samples go to --out/VARIANT/samples/; --grids copies them (small PNGs) beside RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import REPO, build_config, diversity, machine, train_timed  # noqa: E402
from ganforge.saved import load_sampler  # noqa: E402

# The three changes that make up `seed001-fixed`, each a variant alone and in the combinations below.
NO_D_BN = ["model.d_batchnorm=false"]  # D without batch norm (the TF DCGAN tutorial's D, which the seed follows)
G_BN_BEFORE_RELU = ["model.g_norm_order=bn-act"]  # G's batch norm before its ReLU (Radford et al.)
BETAS_05 = ["train.betas_g=[0.5, 0.999]", "train.betas_d=[0.5, 0.999]"]  # Adam beta1 0.5 (Radford et al.)

VARIANTS: dict[str, list[str]] = {
    "seed": [],
    "no-d-bn": NO_D_BN,
    "d-bn-before-act": ["model.d_norm_order=bn-act"],
    "g-bn-before-relu": G_BN_BEFORE_RELU,
    "dcgan-init": ["model.init=dcgan"],
    "betas-0.5": BETAS_05,
    # Two changes: D without batch norm (its one-change fix) plus dropout 0.3 in D, the TF DCGAN tutorial's D.
    "no-d-bn-dropout": [*NO_D_BN, "model.d_dropout=0.3"],
    "no-d-bn-betas-0.5": NO_D_BN + BETAS_05,
    "no-d-bn-g-bn-before-relu": NO_D_BN + G_BN_BEFORE_RELU,
    "g-bn-before-relu-betas-0.5": G_BN_BEFORE_RELU + BETAS_05,
    # The three changes together: what the `seed001-fixed` preset sets.
    "fixed": NO_D_BN + G_BN_BEFORE_RELU + BETAS_05,
}


def run_variant(name: str, args: argparse.Namespace) -> dict:
    overrides = [
        *VARIANTS[name],
        f"train.steps={args.steps}", f"train.batch_size={args.batch_size}", f"train.seed={args.seed}",
        f"train.cpu_threads={args.threads}", f"train.amp={args.amp}", "train.progress=false",
        f"train.sample_every={args.steps}",
        f"train.checkpoint_every={args.steps}", "train.keep_checkpoints=0",
        f"train.log_every={min(50, args.steps)}",
        f"eval.every={args.eval_every}", "eval.metrics=[fid]", f"eval.num={args.num}", "eval.features=domain",
    ]
    cfg = build_config("seed001", overrides, data_root=args.data_root)
    cfg.train.epochs = None  # the preset trains 50 epochs; here the length is --steps
    run = train_timed(cfg, args.out / name)
    sampler = load_sampler(run.run_dir)
    g = torch.Generator().manual_seed(args.seed + 7)
    real_idx = torch.randperm(60000, generator=g)[:128]
    from ganforge.data import load_dataset

    data = load_dataset(cfg.data)
    real = data.to_model_space(data.data[real_idx])
    with torch.no_grad():
        fake = sampler.generate(128, seed=args.seed + 7).float() / 127.5 - 1  # uint8 -> [-1, 1]
    div = diversity(fake[:64], real[:64]) | {"diversity": diversity(fake, real)["diversity"]}
    div |= batch_mean_logits(run.run_dir, data, seed=args.seed)
    tick = run.last_tick
    row = {
        "variant": name, "overrides": VARIANTS[name], "steps": run.steps, "batch_size": args.batch_size,
        "amp": args.amp, "threads": args.threads,
        "train_cpu_s": run.train_cpu_s, "wall_s": run.wall_s, **div,
        "d_acc_real": round(tick.get("d_acc_real", float("nan")), 3),
        "d_acc_fake": round(tick.get("d_acc_fake", float("nan")), 3),
        "fid_curve": [(e["step"], round(e["fid"], 2)) for e in run.curve],
        "fid": round(run.curve[-1]["fid"], 2) if run.curve else None,
    }
    print(json.dumps(row), flush=True)
    return row


def batch_mean_logits(run_dir: Path, data, *, seed: int = 0, batch: int = 64, batches: int = 8) -> dict[str, float]:
    """D as it trains (train mode: batch statistics, real and fake in separate batches) on `batches` real and fake
    batches of the final G: mean logits and accuracies. A D that cannot reject the fakes scores them > 0."""
    import yaml

    from ganforge.config import config_from_dict
    from ganforge.models import FAMILIES, DataSpec
    from ganforge.train.checkpoint import load_checkpoint

    state = load_checkpoint(run_dir)
    cfg = config_from_dict(yaml.safe_load(state["config"]))
    nets = FAMILIES["seed001"].networks(cfg.model, DataSpec.from_dict(state["spec"]))
    G, D = nets["G"](), nets["D"]()
    G.load_state_dict(state["networks"]["G"])
    D.load_state_dict(state["networks"]["D"])
    G.train()
    D.train()
    g = torch.Generator().manual_seed(seed + 11)
    order = torch.randperm(len(data.data), generator=g)
    real_logits, fake_logits = [], []
    with torch.no_grad():
        for i in range(batches):
            real = data.to_model_space(data.data[order[i * batch : (i + 1) * batch]])
            real_logits.append(D(real))
            fake_logits.append(D(G(torch.randn(batch, cfg.model.latent_dim, generator=g))))
    real_l, fake_l = torch.cat(real_logits), torch.cat(fake_logits)
    return {"real_logit_mean": round(real_l.mean().item(), 3), "fake_logit_mean": round(fake_l.mean().item(), 3),
            "d_acc_real_8": round((real_l > 0).float().mean().item(), 3),
            "d_acc_fake_8": round((fake_l < 0).float().mean().item(), 3)}


def table(rows: list[dict]) -> str:
    lines = ["| variant | change from the seed | pixel std (64) | diversity | D acc real / fake (last tick) | final D "
             "on 8 x 64 real / fake: acc, mean logit | domain FID by step | final domain FID | train CPU s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        curve = ", ".join(f"{s}: {f}" for s, f in r["fid_curve"])
        lines.append(f"| {r['variant']} | {' '.join(r['overrides']) or '(none)'} | {r['pixel_std']} | "
                     f"{r['diversity']} | {r['d_acc_real']} / {r['d_acc_fake']} | {r['d_acc_real_8']} / "
                     f"{r['d_acc_fake_8']}, {r['real_logit_mean']} / {r['fake_logit_mean']} | {curve} | {r['fid']} | "
                     f"{r['train_cpu_s']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST (torchvision layout); no download")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=1172, help="steps per variant (1,172 = 5 epochs at 256)")
    parser.add_argument("--batch-size", type=int, default=256, help="the seed's is 256")
    parser.add_argument("--eval-every", type=int, default=235, help="steps between domain FIDs")
    parser.add_argument("--num", type=int, default=2000, help="generated samples per domain FID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    parser.add_argument("--amp", default="none", choices=["none", "bf16"],
                        help="bf16: mixed precision (2.3x fp32 on a CPU with AMX; changes the numerics)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "seed001-ablation")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--grids", type=Path, help="copy each variant's final sample grid into this folder")
    parser.add_argument("--diagnose", type=Path, help="only add D's batch-mean logits to the rows in this JSON "
                        "(from an earlier --json run whose run directories are still under --out), and print the table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.diagnose:
        from ganforge.data import load_dataset

        rows = json.loads(args.diagnose.read_text())
        data = load_dataset(build_config("seed001", [], data_root=args.data_root).data)
        for r in rows:
            r |= batch_mean_logits(args.out / r["variant"], data, seed=args.seed)
        args.diagnose.write_text(json.dumps(rows, indent=1) + "\n")
        print(table(rows))
        return
    print(f"# seed001 ablation: {args.steps} steps x batch {args.batch_size}, seed {args.seed}, amp {args.amp}, "
          f"domain FID of {args.num} samples every {args.eval_every} steps; {machine()}", flush=True)
    start = time.perf_counter()
    rows = [run_variant(name, args) for name in args.variants]
    print(table(rows))
    print(f"# total wall {time.perf_counter() - start:.0f} s; {machine()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if args.grids:
        args.grids.mkdir(parents=True, exist_ok=True)
        for r in rows:
            grid = sorted((args.out / r["variant"] / "samples").glob("step-*.png"))[-1]
            shutil.copyfile(grid, args.grids / f"seed001-{r['variant']}.png")


if __name__ == "__main__":
    main()
