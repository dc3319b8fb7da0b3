"""What progressive growing (Karras et al. 2018) adds to a family: a config section, the stage hook, stage-aware
networks and sampler, and the D-then-G phases at the current stage. Not a family itself: `progan` and
`stylegan2` use it.

How a growing run works:
- `ProgressiveConfig` (the family config's `progressive` section) becomes a `ProgressiveSchedule` over the
  resolutions a family's networks double through (`stage_sizes`): (stage, alpha, batch size) are pure functions
  of the step, so a resumed run continues on exactly the stage, fade-in and batch size it left.
- `on_step` sets (stage, alpha) on every network that is a `StageModule` (buffers, so checkpoints, EMAs and
  saved samplers carry the stage too).
- G renders at the stage's resolution for D (`stage_output=True`); everywhere else (sample grids, `generate`,
  evaluation) G's output is upsampled (nearest) to the data's size, so shapes never change.
- Real images are averaged down to the stage's resolution before D sees them.
- The sampler reports `detail_size()`, the stage's resolution while it is below the data's: the health monitor
  and periodic evaluation compare the samples with real images reduced to the same detail, so a 7x7 stage is
  not mistaken for a collapsed generator.
- Per-stage batch sizes draw from `BatchStream.draw(n)`, whose order depends only on the examples drawn so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.errors import ConfigError
from ganforge.models.base import DataSpec, num_upsamplings
from ganforge.models.sampler import NoiseSampler
from ganforge.nn.progressive import ProgressiveSchedule, downsample_to
from ganforge.regularizers import RegContext
from ganforge.train.phases import Batch, PhaseContext, PhaseSpec, after_d, regularize, report_d_outputs


@dataclass
class ProgressiveConfig:
    enabled: bool = False  # grow from the lowest resolution up, fading each new stage in (Karras et al. 2018)
    fade_steps: int = 500  # steps over which each new stage's weight alpha rises from 0 to 1
    stable_steps: int = 500  # steps each stage trains at alpha 1 (after its fade-in); the last stage then goes on
    # Per-stage batch sizes, lowest resolution first (one per stage); empty: train.batch_size throughout.
    batch_sizes: list[int] = field(default_factory=list)

    def validate(self) -> None:
        if self.fade_steps < 0 or self.stable_steps < 0:
            raise ConfigError("model.progressive.fade_steps and stable_steps must be >= 0")
        if self.fade_steps + self.stable_steps < 1:
            raise ConfigError("model.progressive: every stage needs a step (fade_steps + stable_steps >= 1)")
        if any(b < 1 for b in self.batch_sizes):
            raise ConfigError(f"model.progressive.batch_sizes must be >= 1, got {self.batch_sizes}")


def stage_sizes(spec: DataSpec) -> list[tuple[int, int]]:
    """The resolutions a growing family doubles through, lowest first: from a >= 4-pixel side to the data's."""
    _, height, width = spec.shape
    k = num_upsamplings((height, width))
    return [(height >> (k - i), width >> (k - i)) for i in range(k + 1)]


def stage_widths(channels: int, max_channels: int, num: int) -> list[int]:
    """Channel widths of `num` stages, lowest resolution first: `channels` at full resolution, doubling per
    halving, capped at `max_channels`."""
    return [min(channels * 2 ** (num - 1 - i), max_channels) for i in range(num)]


def validate_growing_model(config: Any, family: str) -> None:
    """The growing families build their own D (minibatch stddev, equalized LR) and stage schedule: reject the
    generic D options and check the schedule."""
    if config.d_pack != 1 or config.d_minibatch_discrimination or config.d_spectral_norm or config.g_spectral_norm:
        raise ConfigError(f"{family} has its own D (minibatch stddev, equalized LR): d_pack, "
                          "d_minibatch_discrimination and spectral norm are for the other families")
    config.progressive.validate()


def schedule_for(progressive: ProgressiveConfig, spec: DataSpec, batch_size: int) -> ProgressiveSchedule:
    """The run's stage schedule; a run that does not grow is one stage (the data's size) at alpha 1."""
    sizes = stage_sizes(spec)
    if not progressive.enabled:
        return ProgressiveSchedule(stages=[sizes[-1]], fade_steps=0, stable_steps=1, batch_sizes=batch_size)
    batches: Any = batch_size
    if progressive.batch_sizes:
        if len(progressive.batch_sizes) != len(sizes):
            raise ConfigError(f"model.progressive.batch_sizes needs one batch size per stage ({len(sizes)}: "
                              f"{', '.join(f'{h}x{w}' for h, w in sizes)}), got {len(progressive.batch_sizes)}")
        batches = list(progressive.batch_sizes)
    return ProgressiveSchedule(stages=sizes, fade_steps=progressive.fade_steps,
                               stable_steps=progressive.stable_steps, batch_sizes=batches)


class StageModule(nn.Module):
    """A network that runs at a stage of a growing schedule: (stage, alpha) live in buffers.

    Starts at its last stage with alpha 1 (the full network), which is also what a network that does not grow
    always runs.
    """

    def _init_stage(self, num_stages: int) -> None:
        self.num_stages = num_stages
        self.register_buffer("stage", torch.tensor(num_stages - 1, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(1.0))
        self.stage: Tensor
        self.alpha: Tensor

    def set_stage(self, stage: int, alpha: float) -> None:
        if not 0 <= stage < self.num_stages:
            raise ValueError(f"stage must be in [0, {self.num_stages - 1}], got {stage}")
        self.stage.fill_(stage)
        self.alpha.fill_(float(alpha))

    def current(self) -> tuple[int, float]:
        """(stage, alpha) as Python numbers."""
        return int(self.stage), float(self.alpha)


def set_stage_on_step(ctx: PhaseContext, step: int) -> None:
    """The `on_step` of a growing family: every StageModule network to the schedule's (stage, alpha)."""
    schedule = _schedule(ctx)
    stage, alpha = schedule.stage_at(step)
    for net in ctx.nets.eager.values():
        if isinstance(net, StageModule):  # a run that does not grow has one stage: the network's last
            net.set_stage(net.num_stages - schedule.num_stages + stage, alpha)


def _schedule(ctx: PhaseContext) -> ProgressiveSchedule:
    schedule = ctx.scratch.get("_schedule")  # built once per run (scratch lives as long as the context)
    if schedule is None:
        spec = ctx.nets.eager["G"].spec
        schedule = ctx.scratch["_schedule"] = schedule_for(ctx.config.model.progressive, spec, ctx.batch_size)
    return schedule


def stage_batch_size(ctx: PhaseContext, step: int) -> int:
    return _schedule(ctx).batch_size_at(step)


def real_batch(ctx: PhaseContext, step: int) -> Batch:
    """A real batch of this stage's batch size with "x" averaged down to this stage's resolution."""
    if ctx.config.model.progressive.batch_sizes:
        batch = ctx.batches.draw(stage_batch_size(ctx, step))
    else:
        batch = next(ctx.batches)
    size = _schedule(ctx).resolution_at(step)
    return {**batch, "x": downsample_to(batch["x"], size)}


def upsample_to(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour upsampling by integer factors (a stage's image shown at the data's size)."""
    h, w = images.shape[-2:]
    if (h, w) == tuple(size):
        return images
    return images.repeat_interleave(size[0] // h, dim=2).repeat_interleave(size[1] // w, dim=3)


class GrowingSampler(NoiseSampler):
    """The noise sampler of a growing family: its G's outputs hold only the current stage's detail."""

    def detail_size(self) -> tuple[int, int] | None:
        stage, _ = self.G.current()
        size = self.G.sizes[stage]
        return None if size == tuple(self.spec.shape[1:]) else size


def stage_d_loss(ctx: PhaseContext, step: int, measure: bool, real: Tensor, labels: Tensor | None, fake: Tensor,
                 fake_labels: Tensor | None) -> Tensor:
    """D's loss on reals and (detached) fakes at the current stage, both augmented, plus D's due regularizers.

    Also feeds ADA its sign(D(real)) and, on measured steps, reports D's outputs and the augmentation strength.
    """
    D = ctx.nets.train["D"]
    with ctx.autocast():
        real_in, fake_in = ctx.augment(real, step), ctx.augment(fake, step)
        real_logits, fake_logits = D(real_in, labels), D(fake_in, fake_labels)
        loss = ctx.loss.d(real_logits.float(), fake_logits.float())
    reg_ctx = RegContext(D=ctx.nets.eager["D"], real=real_in, fake=fake_in, labels=labels,
                         fake_labels=fake_labels, features=None)
    loss = loss + regularize(ctx.regularizers["d"], step, reg_ctx, ctx.stats, "reg_d")
    ctx.augment.observe(real_logits)  # ADA steers by sign(D(real))
    if measure:
        report_d_outputs(ctx.stats, real_logits, fake_logits)
        ctx.augment.report(ctx.stats)
    return loss


def growing_adversarial_phases(cfg: Any) -> list[PhaseSpec]:
    """D then G at the current stage: reals averaged down to it, G rendering at it (`stage_output=True`)."""
    t = cfg.train

    def d_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        batch = real_batch(ctx, step)
        real, labels = batch["x"], batch.get("y")
        ctx.scratch["real"] = batch
        z, fake_labels = ctx.sample_inputs(stage_batch_size(ctx, step))
        with torch.no_grad(), ctx.autocast():
            fake = ctx.nets.train["G"](z, fake_labels, stage_output=True)
        return stage_d_loss(ctx, step, measure, real, labels, fake, fake_labels)

    def g_loss(ctx: PhaseContext, step: int, measure: bool) -> Tensor:
        batch = ctx.scratch.get("real") or real_batch(ctx, step)
        real, labels = batch["x"], batch.get("y")
        D = ctx.nets.call["D"]
        with ctx.autocast():
            z, fake_labels = ctx.sample_inputs(stage_batch_size(ctx, step))
            fake_in = ctx.augment(ctx.nets.train["G"](z, fake_labels, stage_output=True), step)
            fake_logits = D(fake_in, fake_labels).float()
            real_logits = D(ctx.augment(real, step), labels).float() if ctx.loss.g_needs_real else \
                fake_logits.detach()
            loss = ctx.loss.g(real_logits, fake_logits)
        reg_ctx = RegContext(D=D, real=real, fake=fake_in, labels=labels, fake_labels=fake_labels, features=None)
        return loss + regularize(ctx.regularizers["g"], step, reg_ctx, ctx.stats, "reg_g")

    return [
        PhaseSpec("D", optimizer="D", loss=d_loss, repeats=t.n_critic, after=after_d),
        PhaseSpec("G", optimizer="G", loss=g_loss, frozen=("D",), repeats=t.n_gen),
    ]
