"""D with an auxiliary head: the D-then-G phases that ACGAN and InfoGAN share.

The same pair as `ganforge.train.phases.adversarial_phases` (augmentation, regularizers, reused fakes, the
D outputs the health monitor reads), with one more term on each side: D's forward with `aux=True` returns
(logits, aux outputs) in one pass, and the family scores those outputs against what the samples were made
from (the requested class, the codes). The family supplies two methods:

    d_aux_loss(model, real_aux, real_labels, fake_aux, z, fake_labels, report) -> scalar
    g_aux_loss(model, fake_aux, z, fake_labels, report) -> scalar

`report(name, tensor)` logs a statistic (aux_* keys in metrics.jsonl).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ganforge.models.base import AdversarialFamily
from ganforge.regularizers import RegContext
from ganforge.train.phases import (
    PhaseContext,
    PhaseSpec,
    after_d,
    d_phase_inputs,
    g_phase_fakes,
    regularize,
    report_d_outputs,
)


class AuxiliaryFamily(AdversarialFamily):
    """An AdversarialFamily whose D has an auxiliary head trained, with G, on an extra loss."""

    def d_aux_loss(self, model: Any, real_aux: Tensor, real_labels: Tensor | None, fake_aux: Tensor, z: Tensor,
                   fake_labels: Tensor | None, report) -> Tensor:
        raise NotImplementedError

    def g_aux_loss(self, model: Any, fake_aux: Tensor, z: Tensor, fake_labels: Tensor | None, report) -> Tensor:
        raise NotImplementedError

    def phases(self, cfg) -> list[PhaseSpec]:
        return auxiliary_phases(cfg, self)


def auxiliary_phases(cfg: Any, family: AuxiliaryFamily) -> list[PhaseSpec]:
    """D on real vs G(z) plus the family's auxiliary loss (n_critic times), then G, also with its own."""
    t = cfg.train
    reuse = t.g_reuse_fakes and t.n_critic == 1
    model = cfg.model

    def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        real, labels, fake, z, fake_labels = d_phase_inputs(ctx, reuse)
        D = ctx.nets.train["D"]
        with ctx.autocast():
            real_in, fake_in = ctx.augment(real, step), ctx.augment(fake, step)
            real_logits, real_aux = D(real_in, labels, aux=True)
            fake_logits, fake_aux = D(fake_in, fake_labels, aux=True)
            loss = ctx.loss.d(real_logits.float(), fake_logits.float())
        aux = family.d_aux_loss(model, real_aux.float(), labels, fake_aux.float(), z, fake_labels, ctx.stats.report)
        ctx.stats.report("aux_d", aux)
        reg_ctx = RegContext(D=ctx.nets.eager["D"], real=real_in, fake=fake_in, labels=labels,
                             fake_labels=fake_labels, features=ctx.nets.call["D"].features)
        loss = loss + aux + regularize(ctx.regularizers["d"], step, reg_ctx, ctx.stats, "reg_d")
        if measure:
            report_d_outputs(ctx.stats, real_logits, fake_logits)
        return loss

    def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        batch = ctx.scratch.get("real") or next(ctx.batches)
        real, labels = batch["x"], batch.get("y")
        D = ctx.nets.call["D"]  # frozen in this phase: gradients flow through D, not into its weights
        with ctx.autocast():
            fake, z, fake_labels = g_phase_fakes(ctx)
            fake_in = ctx.augment(fake, step)
            fake_logits, fake_aux = D(fake_in, fake_labels, aux=True)
            fake_logits = fake_logits.float()
            g_regs = ctx.regularizers["g"]
            real_in = ctx.augment(real, step) if ctx.loss.g_needs_real or g_regs else real
            real_logits = D(real_in, labels).float() if ctx.loss.g_needs_real else fake_logits.detach()
            loss = ctx.loss.g(real_logits, fake_logits)
        aux = family.g_aux_loss(model, fake_aux.float(), z, fake_labels, ctx.stats.report)
        ctx.stats.report("aux_g", aux)
        reg_ctx = RegContext(D=D, real=real_in, fake=fake_in, labels=labels, fake_labels=fake_labels,
                             features=D.features)
        return loss + aux + regularize(g_regs, step, reg_ctx, ctx.stats, "reg_g")

    return [
        PhaseSpec("D", optimizer="D", loss=d_loss, repeats=t.n_critic, after=after_d),
        PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D",), repeats=t.n_gen),
    ]
