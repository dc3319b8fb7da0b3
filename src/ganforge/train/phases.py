"""The training step as a list of named phases (StyleGAN3 style), not a function full of config branches.

A family declares, by name, its optimizers (`OptimizerSpec`: which networks each one updates, param groups
with lr multipliers, betas) and its phases (`PhaseSpec`: which optimizer, which networks it calls but must not
update, the loss, repeats, a lazy interval, a start step). The trainer runs every phase the same way: compute
the phase's loss, step its optimizer, update the EMAs of the networks that optimizer moved. It knows nothing
else about the family.

`adversarial_phases` builds the standard D-then-G pair that the noise-to-sample families share.

Under DDP (see `ganforge.train.distributed`) `ctx.nets.train[name]` is the DDP-wrapped (and maybe compiled)
network: a phase calls a network through it when that phase's optimizer updates it. A network the phase calls
but does not update goes through `ctx.nets.call[name]` (compiled, not DDP-wrapped): it needs gradients through
the network, not for its weights, and a DDP module whose parameters take no gradient would wait for a
reduction that never comes. `ctx.nets.eager[name]` is the plain module: for penalties that differentiate twice
(AOTAutograd has no double backward) and for methods such as `sample_latent`. Noise and labels are drawn for
the *global* batch and sliced with `ctx.shard`, so every rank's RNG stream stays that of a single process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.losses import AdversarialLoss
from ganforge.regularizers import RegContext
from ganforge.train.stats import StatsCollector

Batch = dict[str, Tensor]  # one real batch on the device, by key: x (model space), y (labels), a, b, ...


@dataclass(frozen=True)
class OptimizerSpec:
    """One Adam optimizer of a family, declared by name."""

    networks: tuple[str, ...]  # the networks whose parameters it updates (their EMAs follow after each step)
    lr: float  # base learning rate (before lr_mult and the schedule)
    betas: tuple[float, float]  # Adam betas
    weight_decay: float = 0.0  # decoupled weight decay
    # Parameter-name prefixes ("G.mapping", or a whole network "Q") -> learning-rate multiplier; each prefix gets
    # its own param group. StyleGAN's mapping network trains at 0.01x G's rate this way.
    lr_mult: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseSpec:
    """One update of one optimizer, declared by name; the trainer runs them in order every step."""

    name: str  # for logs: its loss is reported as loss_<name lowercased>
    optimizer: str  # the OptimizerSpec that steps on this phase's loss
    loss: Callable[[PhaseContext, int, bool], Tensor]  # (ctx, step, measure) -> scalar loss
    frozen: tuple[str, ...] = ()  # networks it calls but must not update: no weight gradients are computed
    repeats: int = 1  # updates per training step (n_critic / n_gen)
    interval: int = 1  # lazy phases run only on steps where step % interval == 0
    start: int = 0  # first step the phase runs (e.g. an adversarial phase after a warm-up)
    after: Callable[[PhaseContext], None] | None = None  # after the optimizer step (e.g. WGAN weight clipping)


@dataclass
class NetworkViews:
    """Each network three ways (see the module docstring): updated here, called frozen, and eager."""

    train: dict[str, nn.Module]  # DDP-wrapped (and compiled): for the phase whose optimizer updates it
    call: dict[str, nn.Module]  # compiled, not DDP-wrapped: for phases that only call it
    eager: dict[str, nn.Module]  # the plain modules: double-backward penalties, sample_latent, ...


@dataclass
class PhaseContext:
    """What the phases share: networks, batches, losses and tools. Families read it; only the trainer builds it."""

    nets: NetworkViews
    batches: Iterator[Batch]  # endless real batches, in an order fixed by (seed, batches drawn)
    batch_size: int  # the global batch size (noise is drawn for all of it, then sharded)
    device: torch.device
    loss: AdversarialLoss  # the config's adversarial loss (loss.name), chosen by name
    regularizers: dict[str, list[nn.Module]]  # config penalties by the phase kind they join: "d" or "g"
    augment: nn.Module  # applied to every D input, real and fake (DiffAugment, instance noise, ADA)
    stats: StatsCollector  # report(name, tensor): gathered once per tick
    autocast: Callable[[], AbstractContextManager]  # mixed-precision context (a no-op without AMP)
    state: dict[str, nn.Module]  # the family's own checkpointed state (an image pool, ADA's p, ...)
    config: Any  # the resolved ganforge.config.Config
    shard: Callable[[Tensor | None], Tensor | None] = lambda x: x  # this rank's rows of a global batch
    scratch: dict[str, Any] = field(default_factory=dict)  # what one phase hands the next within a step
    class_weights: Tensor | None = None  # fakes' classes are drawn in these proportions (train.fake_classes: data)

    def sample_inputs(self, n: int) -> tuple[Tensor, Tensor | None]:
        """Noise and labels for a global batch of n, sliced to this rank: (B_local, latent), (B_local,) or None."""
        G = self.nets.eager["G"]
        if self.class_weights is None:
            labels = G.sample_labels(n, device=self.device)
        else:
            labels = torch.multinomial(self.class_weights, n, replacement=True)
        z = G.sample_latent(n, device=self.device)
        return self.shard(z), self.shard(labels)


def grad_norm_of(params: list[Tensor]) -> Tensor:
    """The 2-norm of all the gradients these parameters hold (0 when none has one)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def regularize(regs: list[nn.Module], step: int, reg_ctx: RegContext, stats: StatsCollector, prefix: str) -> Tensor:
    """The sum of the penalties due at `step` (lazy ones every `interval` steps, scaled inside), each reported."""
    total = torch.zeros((), device=reg_ctx.real.device)
    for reg in regs:
        if step % reg.interval:
            continue
        penalty = reg(reg_ctx)
        stats.report(f"{prefix}/{type(reg).__name__}", penalty)
        total = total + penalty
    return total


def report_d_outputs(stats: StatsCollector, real_logits: Tensor, fake_logits: Tensor) -> None:
    """D(x), D(G(z)) and D's accuracies: what the health monitor reads. Logits of any shape (PatchGAN too)."""
    real_logits, fake_logits = real_logits.detach().float(), fake_logits.detach().float()
    stats.report("d_real", torch.sigmoid(real_logits))
    stats.report("d_fake", torch.sigmoid(fake_logits))
    stats.report("d_acc_real", (real_logits > 0).float())
    stats.report("d_acc_fake", (fake_logits < 0).float())


# ------------------------------------------------------------------------------------------ D then G


def d_phase_inputs(ctx: PhaseContext, reuse: bool) -> tuple[Tensor, Tensor | None, Tensor, Tensor, Tensor | None]:
    """A D step's inputs (real, labels, fake, z, fake_labels): the next real batch and G(z) without its graph.

    The reals stay in scratch["real"] for G's phase; with `reuse` (one G forward a step) the fakes keep their
    graph in scratch["fake"] for `g_phase_fakes`.
    """
    batch = next(ctx.batches)
    ctx.scratch["real"] = batch
    z, fake_labels = ctx.sample_inputs(ctx.batch_size)
    with torch.set_grad_enabled(reuse), ctx.autocast():
        fake = ctx.nets.train["G"](z, fake_labels)
    if reuse:
        ctx.scratch["fake"] = (fake, z, fake_labels)  # still attached to G's graph, for G's phase
        fake = fake.detach()
    return batch["x"], batch.get("y"), fake, z, fake_labels


def g_phase_fakes(ctx: PhaseContext) -> tuple[Tensor, Tensor, Tensor | None]:
    """A G step's fakes, (fake, z, fake_labels): the D phase's, still attached to G's graph, or a fresh G(z).

    Call inside the phase's autocast.
    """
    pending = ctx.scratch.pop("fake", None)
    if pending is not None:
        return pending
    z, fake_labels = ctx.sample_inputs(ctx.batch_size)
    return ctx.nets.train["G"](z, fake_labels), z, fake_labels


def adversarial_phases(cfg: Any) -> list[PhaseSpec]:
    """The standard pair: D on real vs G(z) (n_critic times), then G against D (n_gen times).

    Networks "G" (z, labels) -> samples and "D" (x, labels) -> logits; optimizers "G" and "D". With n_critic 1
    and train.g_reuse_fakes, G's phase reuses the D phase's fakes with their graph (one G forward per step).
    """
    t = cfg.train
    reuse = t.g_reuse_fakes and t.n_critic == 1

    def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        real, labels, fake, _, fake_labels = d_phase_inputs(ctx, reuse)
        D = ctx.nets.train["D"]
        with ctx.autocast():
            real_in, fake_in = ctx.augment(real, step), ctx.augment(fake, step)
            real_logits = D(real_in, labels)
            fake_logits = D(fake_in, fake_labels)
            loss = ctx.loss.d(real_logits.float(), fake_logits.float())
        reg_ctx = RegContext(D=ctx.nets.eager["D"], real=real_in, fake=fake_in, labels=labels,
                             fake_labels=fake_labels, features=getattr(ctx.nets.call["D"], "features", None))
        loss = loss + regularize(ctx.regularizers["d"], step, reg_ctx, ctx.stats, "reg_d")
        ctx.augment.observe(real_logits)  # ADA steers its probability by sign(D(real))
        if measure:
            report_d_outputs(ctx.stats, real_logits, fake_logits)
            ctx.augment.report(ctx.stats)
        return loss

    def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        batch = ctx.scratch.get("real") or next(ctx.batches)
        real, labels = batch["x"], batch.get("y")
        D = ctx.nets.call["D"]  # frozen in this phase: gradients flow through D, not into its weights
        with ctx.autocast():
            fake, _, fake_labels = g_phase_fakes(ctx)
            fake_in = ctx.augment(fake, step)
            fake_logits = D(fake_in, fake_labels).float()
            # Relativistic losses compare with D(real); others ignore it, so it is only computed when needed.
            g_regs = ctx.regularizers["g"]
            real_in = ctx.augment(real, step) if ctx.loss.g_needs_real or g_regs else real
            real_logits = D(real_in, labels).float() if ctx.loss.g_needs_real else fake_logits.detach()
            loss = ctx.loss.g(real_logits, fake_logits)
        reg_ctx = RegContext(D=D, real=real_in, fake=fake_in, labels=labels, fake_labels=fake_labels,
                             features=getattr(D, "features", None))
        return loss + regularize(g_regs, step, reg_ctx, ctx.stats, "reg_g")

    return [
        PhaseSpec("D", optimizer="D", loss=d_loss, repeats=t.n_critic, after=after_d),
        PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D",), repeats=t.n_gen),
    ]


def after_d(ctx: PhaseContext) -> None:
    """After each D step: the D regularizers' own hooks (e.g. WGAN weight clipping). Every family's D phase."""
    for reg in ctx.regularizers["d"]:
        reg.after_d_step(ctx.nets.train["D"])


def adversarial_optimizers(cfg: Any) -> dict[str, OptimizerSpec]:
    """Optimizers "G" and "D" from train.lr_g / lr_d, betas_g / betas_d and weight_decay."""
    t = cfg.train
    return {
        "G": OptimizerSpec(("G",), lr=t.lr_g, betas=tuple(t.betas_g), weight_decay=t.weight_decay),
        "D": OptimizerSpec(("D",), lr=t.lr_d, betas=tuple(t.betas_d), weight_decay=t.weight_decay),
    }
