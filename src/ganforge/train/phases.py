"""The training step as a list of phases (StyleGAN3 style), not a function full of config branches.

A phase updates one network: it draws what it needs, computes its loss (adversarial loss + that phase's
regularizers), steps its optimizer and reports stats. `adversarial_phases` builds the standard D-then-G pair
that every family uses; a family with other needs (image-to-image, InfoGAN's Q head) supplies its own list.

Under DDP (see `ganforge.train.distributed`) `G` and `D` are the DDP-wrapped networks; noise and labels are
drawn for the *global* batch and sliced with `ctx.shard`, so every rank's RNG stream stays that of a single
process. G's step calls D through `D_frozen` (not wrapped): it needs gradients through D, not for D's weights,
and a DDP module whose parameters take no gradient would wait for a reduction that never comes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganforge.losses import AdversarialLoss
from ganforge.regularizers import RegContext
from ganforge.train.stats import StatsCollector


@dataclass
class Phase:
    name: str  # "D" or "G", for logs
    repeats: int  # updates per training step (n_critic / n_gen)
    run: Callable[[int, bool], None]  # (step, measure): measure=True on the step that closes a tick


@dataclass
class StepContext:
    """What the phases share: the networks, their optimizers and the batch source."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: AdversarialLoss
    d_regularizers: list[nn.Module]  # penalties added to D's loss (each has .interval)
    g_regularizers: list[nn.Module]  # penalties added to G's loss
    augment: nn.Module  # applied to every D input, real and fake (DiffAugment, instance noise)
    batches: Iterator[tuple[Tensor, Tensor | None]]  # real (x, labels) on the device, x in model space
    batch_size: int
    device: torch.device
    stats: StatsCollector
    autocast: Callable[[], AbstractContextManager]  # mixed-precision context (a no-op without AMP)
    scaler: torch.amp.GradScaler | None  # fp16 loss scaling, else None
    after_g_step: Callable[[], None]  # e.g. the EMA update
    last_real: tuple[Tensor, Tensor | None] | None = None  # the newest real batch, for G's relativistic loss
    G_module: nn.Module | None = None  # the plain G (sample_latent / sample_labels); None: G itself
    D_frozen: nn.Module | None = None  # D as G's step calls it (not DDP-wrapped); None: D itself
    # D for the input-gradient penalties (R1, R2, GP): eager, never compiled (AOTAutograd has no double backward),
    # and not DDP-wrapped (its parameters are DDP's, so their gradients are still reduced); None: D itself
    D_eager: nn.Module | None = None
    shard: Callable[[Tensor | None], Tensor | None] = lambda x: x  # this rank's rows of a global batch
    reuse_fakes: bool = False  # with n_critic 1, G's step reuses the D step's fakes (kept with their graph)
    pending_fake: tuple[Tensor, Tensor | None] | None = None  # (fakes attached to G, labels) for G's step

    def sample_inputs(self, n: int) -> tuple[Tensor, Tensor | None]:
        """Noise and labels for a global batch of n, sliced to this rank: (B_local, latent), (B_local,) or None."""
        g = self.G_module if self.G_module is not None else self.G
        labels = g.sample_labels(n, device=self.device)
        z = g.sample_latent(n, device=self.device)
        return self.shard(z), self.shard(labels)


def grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _step(ctx: StepContext, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        ctx.scaler.step(optimizer)
        ctx.scaler.update()
    else:
        loss.backward()
        optimizer.step()


def _regularize(regs: list[nn.Module], step: int, reg_ctx: RegContext, stats: StatsCollector, prefix: str) -> Tensor:
    total = torch.zeros((), device=reg_ctx.real.device)
    for reg in regs:
        if step % reg.interval:  # lazy regularization: only every `interval` steps (scaled inside)
            continue
        penalty = reg(reg_ctx)
        stats.report(f"{prefix}/{type(reg).__name__}", penalty)
        total = total + penalty
    return total


def adversarial_phases(ctx: StepContext, *, n_critic: int, n_gen: int) -> list[Phase]:
    D_g = ctx.D_frozen if ctx.D_frozen is not None else ctx.D  # D for G's step: no DDP gradient sync
    D_reg = ctx.D_eager if ctx.D_eager is not None else ctx.D  # D for penalties that differentiate twice
    features = getattr(D_g, "features", None)
    reuse = ctx.reuse_fakes and n_critic == 1  # one G forward per step, its graph kept for G's step

    def d_phase(step: int, measure: bool) -> None:
        real, labels = next(ctx.batches)
        ctx.last_real = (real, labels)
        z, fake_labels = ctx.sample_inputs(ctx.batch_size)
        with torch.set_grad_enabled(reuse), ctx.autocast():
            fake = ctx.G(z, fake_labels)
        if reuse:
            ctx.pending_fake = (fake, fake_labels)
            fake = fake.detach()
        with ctx.autocast():
            real_in, fake_in = ctx.augment(real, step), ctx.augment(fake, step)
            real_logits = ctx.D(real_in, labels)
            fake_logits = ctx.D(fake_in, fake_labels)
            loss = ctx.loss.d(real_logits.float(), fake_logits.float())
        reg_ctx = RegContext(D=D_reg, real=real_in, fake=fake_in, labels=labels, features=features)
        loss = loss + _regularize(ctx.d_regularizers, step, reg_ctx, ctx.stats, "reg_d")
        _step(ctx, loss, ctx.opt_d)
        for reg in ctx.d_regularizers:
            reg.after_d_step(ctx.D)  # e.g. WGAN weight clipping
        ctx.stats.report("loss_d", loss)
        if measure:
            real_logits, fake_logits = real_logits.detach().float(), fake_logits.detach().float()
            ctx.stats.report("d_real", torch.sigmoid(real_logits))
            ctx.stats.report("d_fake", torch.sigmoid(fake_logits))
            ctx.stats.report("d_acc_real", (real_logits > 0).float())
            ctx.stats.report("d_acc_fake", (fake_logits < 0).float())
            ctx.stats.report("grad_norm_d", grad_norm(ctx.D))

    def g_phase(step: int, measure: bool) -> None:
        real, labels = ctx.last_real if ctx.last_real is not None else next(ctx.batches)
        D_g.requires_grad_(False)  # G's step needs gradients through D, not for D's weights
        with ctx.autocast():
            if ctx.pending_fake is not None:  # the D step's fakes, still attached to G's graph
                fake, fake_labels = ctx.pending_fake
                ctx.pending_fake = None
            else:
                z, fake_labels = ctx.sample_inputs(ctx.batch_size)
                fake = ctx.G(z, fake_labels)
            fake_in = ctx.augment(fake, step)
            fake_logits = D_g(fake_in, fake_labels).float()
            # Relativistic losses compare with D(real); others ignore it, so it is only computed when needed.
            real_in = ctx.augment(real, step) if ctx.loss.g_needs_real or ctx.g_regularizers else real
            real_logits = D_g(real_in, labels).float() if ctx.loss.g_needs_real else fake_logits.detach()
            loss = ctx.loss.g(real_logits, fake_logits)
        reg_ctx = RegContext(D=D_g, real=real_in, fake=fake_in, labels=labels, features=features)
        loss = loss + _regularize(ctx.g_regularizers, step, reg_ctx, ctx.stats, "reg_g")
        _step(ctx, loss, ctx.opt_g)
        D_g.requires_grad_(True)
        ctx.after_g_step()
        ctx.stats.report("loss_g", loss)
        if measure:
            ctx.stats.report("grad_norm_g", grad_norm(ctx.G))

    return [Phase("D", n_critic, d_phase), Phase("G", n_gen, g_phase)]
