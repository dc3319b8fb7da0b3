"""Where a toy step's time goes: ganforge's trainer against a bare PyTorch loop of the same MLPs, side by side.

Issue 15 asks for `toy-grid` / `toy-ring` to reach their quality in <= 30 s; the presets run 20,000 steps, so that
needs ~1.5 ms a step. This measures, in one process and one thread, interleaved in rounds so that machine noise hits
both alike: CPU-ms per step of (a) ganforge's Trainer on a toy preset (`--preset`, default `toy-grid`; `run_step`,
as `ganforge train` runs it, without logging or evaluation) and (b) a bare loop written here with the preset's
widths, batch and R1 gamma (3-layer MLPs, non-saturating loss, R1 every 4th D step, G's step on the D step's fakes
when the preset reuses them, D frozen in G's step, fused Adam as the trainer uses; no EMA, no LR schedule) - the
floor of eager PyTorch for this recipe - and (c) the same bare loop with foreach (multi-tensor) Adam, the trainer's
optimizer until 2026-12-07. Then a torch.profiler table of the bare loop: how much is matrix multiplication
(arithmetic) and how much everything else (launches, elementwise ops, Adam).

    python benchmarks/toy_step_cost.py                   # 5 rounds of 400 steps each
    python benchmarks/toy_step_cost.py --rounds 2 --steps 100 --no-profile
    python benchmarks/toy_step_cost.py --preset toy-grid-fast
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_runs import build_config, machine  # noqa: E402
from ganforge.train.trainer import Trainer  # noqa: E402

R1_INTERVAL = 4  # the toy presets' lazy R1: every 4th D step


def mlp(inputs: int, hidden: int, outputs: int, act: type[nn.Module] | None = None) -> nn.Sequential:
    make = act or (lambda: nn.LeakyReLU(0.2))
    return nn.Sequential(nn.Linear(inputs, hidden), make(), nn.Linear(hidden, hidden), make(),
                         nn.Linear(hidden, hidden), make(), nn.Linear(hidden, outputs))


class BareLoop:
    """The preset's recipe in a dozen lines: the floor of eager PyTorch for one step of it."""

    def __init__(self, batch: int = 256, width: int = 128, *, r1_gamma: float = 0.1, fused: bool = True,
                 reuse_fakes: bool = True) -> None:
        self.batch, self.r1_gamma = batch, r1_gamma
        self.reuse_fakes = reuse_fakes  # G's step on the D step's fakes (one G forward a step), as the trainer does
        self.G, self.D = mlp(2, width, 2, nn.ReLU), mlp(2, width, 1)
        adam = {"fused": True} if fused else {"foreach": True}
        self.opt_g = torch.optim.Adam(self.G.parameters(), 1e-3, betas=(0.5, 0.999), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), 1e-3, betas=(0.5, 0.999), **adam)
        self.step_index = 0

    def step(self) -> None:
        real, lazy_r1 = torch.randn(self.batch, 2), self.step_index % R1_INTERVAL == 0
        with torch.set_grad_enabled(self.reuse_fakes):
            fake = self.G(torch.randn(self.batch, 2))
        real.requires_grad_(lazy_r1)
        logits_real = self.D(real)
        loss_d = F.softplus(-logits_real).mean() + F.softplus(self.D(fake.detach())).mean()
        if lazy_r1:
            (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
            loss_d = loss_d + self.r1_gamma / 2 * R1_INTERVAL * grad.square().sum(1).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        if not self.reuse_fakes:
            fake = self.G(torch.randn(self.batch, 2))
        self.D.requires_grad_(False)  # as the trainer: gradients flow through D, not into its weights
        loss_g = F.softplus(-self.D(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        self.step_index += 1


def cpu_ms_per_step(step, steps: int) -> float:
    start = time.process_time()
    for _ in range(steps):
        step()
    return (time.process_time() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400, help="steps per contestant per round")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--preset", default="toy-grid", help="a toy preset: toy-grid, toy-ring, toy-grid-fast, ...")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = build_config(args.preset, ["train.progress=false", "train.cpu_threads=1"], data_root=None)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))

        def trainer_step() -> None:
            trainer.run_step(measure=False)
            trainer.step += 1

        same = {"batch": cfg.train.batch_size, "width": cfg.model.g_hidden,
                "r1_gamma": cfg.loss.regularizers["r1"]["gamma"], "reuse_fakes": cfg.train.g_reuse_fakes}
        bare = BareLoop(**same)
        bare_foreach = BareLoop(**same, fused=False)
        for warm_up in (trainer_step, bare.step, bare_foreach.step):
            cpu_ms_per_step(warm_up, 50)
        rows = []
        for r in range(args.rounds):
            rows.append(tuple(cpu_ms_per_step(step, args.steps) for step in (trainer_step, bare.step,
                                                                               bare_foreach.step)))
            print(f"round {r}: ganforge {rows[-1][0]:.2f} CPU-ms/step, bare loop {rows[-1][1]:.2f}, bare loop with "
                  f"foreach Adam {rows[-1][2]:.2f}", flush=True)
    ours, floor, foreach = (statistics.median(row[i] for row in rows) for i in range(3))
    print(f"median: ganforge {ours:.2f}, bare loop {floor:.2f} CPU-ms/step, ratio {ours / floor:.2f}; "
          f"{cfg.train.steps:,} steps (the preset's) = "
          f"{ours * cfg.train.steps / 1e3:.1f} / {floor * cfg.train.steps / 1e3:.1f} CPU-s; bare loop with foreach "
          f"Adam {foreach:.2f} ({foreach / floor:.2f}x fused)")
    if not args.no_profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                bare.step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        gemm = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm"))
        print(f"bare loop profile: matrix multiplies {100 * gemm / total:.0f}% of self CPU time, everything else "
              f"{100 * (total - gemm) / total:.0f}%; top ops:")
        print(events.table(sort_by="self_cpu_time_total", row_limit=8))
    print(f"# {machine()}")


if __name__ == "__main__":
    main()
