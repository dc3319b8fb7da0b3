"""GMAN: one generator against k discriminators (Durugkar, Gemp & Mahadevan 2017, "Generative Multi-Adversarial
Networks").

Networks "G" and "D0" .. "D{k-1}" (DCGAN architecture; the k discriminators differ by their initialisation),
each discriminator with its own Adam optimizer of the same name and its own phase, all judging the same real
batch and the same fakes. G's loss is the k per-discriminator G losses V_i (loss.name, e.g. nonsaturating)
combined by `model.combine`:

    mean     (1/k) sum_i V_i                          the plain average
    max      max_i V_i                                the harshest discriminator only (GMAN-max)
    softmax  sum_i w_i V_i, w = softmax(lambda * V)   GMAN's soft weighting: lambda 0 is the mean, large lambda
                                                      the max; the weights are treated as constants (no
                                                      gradient through them)
    random   V_j, j drawn uniformly per step          a seeded pick that depends only on (seed, step), so a
                                                      resumed run picks what the uninterrupted run picked
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.models.base import FAMILIES, DataSpec, Discriminator, Family
from ganforge.models.dcgan import DCGANConfig, DCGANGenerator, dcgan_trunk
from ganforge.models.sampler import NoiseSampler
from ganforge.registry import Registry
from ganforge.regularizers import RegContext
from ganforge.train.phases import OptimizerSpec, PhaseContext, PhaseSpec, regularize, report_d_outputs


@dataclass
class GMANConfig(DCGANConfig):
    family: str = "gman"  # GMAN: one DCGAN generator against k DCGAN discriminators
    num_discriminators: int = 2  # k: networks and optimizers D0 .. D{k-1}
    combine: str = "mean"  # how G's loss combines the k discriminators: mean, max, softmax or random
    softmax_lambda: float = 1.0  # combine=softmax: w = softmax(lambda * V); 0 is the mean, large values the max

    def validate(self) -> None:
        super().validate()
        if self.num_discriminators < 1:
            raise ConfigError(f"model.num_discriminators must be >= 1, got {self.num_discriminators}")
        if self.combine not in COMBINATIONS:
            raise ConfigError(f"model.combine must be one of {', '.join(COMBINATIONS.names())}, got {self.combine!r}")
        if self.softmax_lambda < 0:
            raise ConfigError(f"model.softmax_lambda must be >= 0, got {self.softmax_lambda}")


# ----------------------------------------------------------------------------------- combining G's losses
# Each takes the k per-discriminator G losses (k,) and returns G's loss. `pick` is the random combination's
# index for this step; `lam` the softmax's lambda.

Combination = Callable[..., Tensor]
COMBINATIONS: Registry[Combination] = Registry("GMAN combination")


@COMBINATIONS.register("mean")
def combine_mean(losses: Tensor, *, lam: float = 1.0, pick: int = 0) -> Tensor:
    return losses.mean()


@COMBINATIONS.register("max")
def combine_max(losses: Tensor, *, lam: float = 1.0, pick: int = 0) -> Tensor:
    return losses.max()


@COMBINATIONS.register("softmax")
def combine_softmax(losses: Tensor, *, lam: float = 1.0, pick: int = 0) -> Tensor:
    weights = torch.softmax(lam * losses.detach(), dim=0)  # (k,): the harsher a discriminator, the more weight
    return (weights * losses).sum()


@COMBINATIONS.register("random")
def combine_random(losses: Tensor, *, lam: float = 1.0, pick: int = 0) -> Tensor:
    return losses[pick]


def random_pick(seed: int, step: int, k: int) -> int:
    """The discriminator G answers to at `step` under combine=random: a pure function of (seed, step)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return int(torch.randint(k, (1,), generator=g))


def discriminator_names(k: int) -> list[str]:
    return [f"D{i}" for i in range(k)]


class GMAN(Family):
    name = "gman"
    config_class = GMANConfig
    description = "GMAN: one DCGAN G against k discriminators, G's loss their mean, max, softmax or a random pick"
    ema_networks = ("G",)
    sampler = NoiseSampler

    def networks(self, model: GMANConfig, spec: DataSpec):
        nets = {"G": lambda: DCGANGenerator(config=model, spec=spec)}
        for name in discriminator_names(model.num_discriminators):
            nets[name] = lambda: Discriminator(config=model, spec=spec, trunk=dcgan_trunk(model))
        return nets

    def batch_keys(self, model):
        return ("x", "y") if model.conditional else ("x",)

    def check(self, cfg, spec: DataSpec) -> None:
        if cfg.model.conditional and not spec.num_classes:
            raise ConfigError("model.conditional needs labelled data; this dataset has no labels")
        if cfg.train.n_critic != 1 or cfg.train.n_gen != 1:
            raise ConfigError("model.family gman runs one update of each network per step (train.n_critic and "
                              "train.n_gen = 1)")

    def optimizers(self, cfg):
        t = cfg.train
        specs = {"G": OptimizerSpec(("G",), lr=t.lr_g, betas=tuple(t.betas_g), weight_decay=t.weight_decay)}
        for name in discriminator_names(cfg.model.num_discriminators):
            specs[name] = OptimizerSpec((name,), lr=t.lr_d, betas=tuple(t.betas_d), weight_decay=t.weight_decay)
        return specs

    def phases(self, cfg):
        m, t = cfg.model, cfg.train
        names = discriminator_names(m.num_discriminators)
        combine = COMBINATIONS[m.combine]
        reuse = t.g_reuse_fakes

        def d_loss_of(index: int):
            name = names[index]

            def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
                if index == 0:  # the first discriminator's phase draws this step's real batch and fakes
                    batch = next(ctx.batches)
                    z, fake_labels = ctx.sample_inputs(ctx.batch_size)
                    with torch.set_grad_enabled(reuse), ctx.autocast():
                        fake = ctx.nets.train["G"](z, fake_labels)
                    ctx.scratch["real"] = batch
                    ctx.scratch["fake"] = (fake, fake_labels)  # attached to G's graph when reused by G's phase
                batch = ctx.scratch["real"]
                real, labels = batch["x"], batch.get("y")
                fake, fake_labels = ctx.scratch["fake"]
                fake = fake.detach()
                D = ctx.nets.train[name]
                with ctx.autocast():
                    real_in, fake_in = ctx.augment(real, step), ctx.augment(fake, step)
                    real_logits, fake_logits = D(real_in, labels), D(fake_in, fake_labels)
                    loss = ctx.loss.d(real_logits.float(), fake_logits.float())
                reg_ctx = RegContext(D=ctx.nets.eager[name], real=real_in, fake=fake_in, labels=labels,
                                     fake_labels=fake_labels, features=getattr(ctx.nets.call[name], "features", None))
                loss = loss + regularize(ctx.regularizers["d"], step, reg_ctx, ctx.stats, f"reg_{name.lower()}")
                if measure:
                    report_d_outputs(ctx.stats, real_logits, fake_logits)  # averaged over the k: the monitor's view
                return loss

            return d_loss

        def after_d_of(name: str):
            def after(ctx: PhaseContext) -> None:
                for reg in ctx.regularizers["d"]:
                    reg.after_d_step(ctx.nets.train[name])

            return after

        def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
            batch = ctx.scratch.pop("real")
            real, labels = batch["x"], batch.get("y")
            fake, fake_labels = ctx.scratch.pop("fake")
            with ctx.autocast():
                if not reuse:
                    z, fake_labels = ctx.sample_inputs(ctx.batch_size)
                    fake = ctx.nets.train["G"](z, fake_labels)
                fake_in = ctx.augment(fake, step)
                real_in = ctx.augment(real, step) if ctx.loss.g_needs_real else real
                losses = []
                for name in names:
                    D = ctx.nets.call[name]  # frozen in this phase
                    fake_logits = D(fake_in, fake_labels).float()
                    real_logits = D(real_in, labels).float() if ctx.loss.g_needs_real else fake_logits.detach()
                    losses.append(ctx.loss.g(real_logits, fake_logits))
                per_d = torch.stack(losses)  # (k,)
            pick = random_pick(t.seed, step, len(names)) if m.combine == "random" else 0
            if measure:
                for name, value in zip(names, per_d):
                    ctx.stats.report(f"loss_g_{name.lower()}", value)
            loss = combine(per_d, lam=m.softmax_lambda, pick=pick)
            if ctx.regularizers["g"]:
                for name in names:
                    D = ctx.nets.call[name]
                    reg_ctx = RegContext(D=D, real=ctx.augment(real, step), fake=fake_in, labels=labels,
                                         fake_labels=fake_labels, features=getattr(D, "features", None))
                    loss = loss + regularize(ctx.regularizers["g"], step, reg_ctx, ctx.stats, "reg_g") / len(names)
            return loss

        phases = [PhaseSpec(name, optimizer=name, loss=d_loss_of(i), after=after_d_of(name))
                  for i, name in enumerate(names)]
        return [*phases, PhaseSpec("G", optimizer="G", loss=g_loss, frozen=tuple(names))]


FAMILIES.register("gman")(GMAN())
