"""The trainer: builds everything from a Config, runs the phases, logs once per tick, never loses work.

Run directory layout:
    config.yaml          the resolved config (what `--resume` reads back)
    metrics.jsonl        one line per tick (losses, D(x), D(G(z)), grad norms, images/s) and one per event
    samples/step-*.png   fixed-noise sample grids
    checkpoints/         step-*.pt (bounded history), last.pt and best.pt (links to the newest / best)
"""

from __future__ import annotations

import math
import re
import shutil
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor, nn

from ganforge.augment import build_augment
from ganforge.config import Config
from ganforge.data import TensorData, load_dataset
from ganforge.devices import select_device
from ganforge.errors import CheckpointError, ConfigError, GanforgeError
from ganforge.losses import get_loss
from ganforge.models import FAMILIES, DataSpec
from ganforge.models.sampler import eval_mode
from ganforge.nn.progressive import match_detail
from ganforge.refine import Refinement
from ganforge.regularizers import build_regularizers
from ganforge.sampling import save_samples
from ganforge.train import checkpoint as ckpt
from ganforge.train import (
    content,  # noqa: F401  (registers SRGAN's domain-classifier content loss)
    distributed,
)
from ganforge.train.ema import EMA
from ganforge.train.evaluation import PeriodicEvaluator
from ganforge.train.health import Diagnosis, HealthMonitor, diversity_ratio
from ganforge.train.loggers import build_logger
from ganforge.train.phases import NetworkViews, OptimizerSpec, PhaseContext, PhaseSpec, grad_norm_of
from ganforge.train.stats import MetricsLog, StatsCollector


class BatchStream:
    """Endless batches from an in-memory dataset, in an order fixed by (seed, epoch), as dicts by batch key.

    A batch holds "x" (model space), "y" (labels) when the data has them, and the dataset's extras the family
    asked for. The order depends only on how many batches were drawn, so a resumed run draws exactly the
    batches the uninterrupted run would have, with no sampler state to save.
    """

    def __init__(self, data: TensorData, *, batch_size: int, seed: int, device: torch.device,
                 keys: tuple[str, ...] = ("x", "y"), position: int = 0, examples_drawn: int = 0,
                 dist_info: distributed.DistInfo | None = None) -> None:
        if len(data) < batch_size:
            raise ConfigError(f"dataset {data.name!r} has {len(data)} examples, fewer than train.batch_size "
                              f"{batch_size}; lower the batch size")
        self.tensors: dict[str, Tensor] = {"x": data.data.to(device)}
        if data.labels is not None:
            self.tensors["y"] = data.labels.to(device)
        for key in keys:
            if key in data.extras:
                self.tensors[key] = data.extras[key].to(device)
        self.to_model_space = data.to_model_space
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.num_examples = len(data)
        self.per_epoch = len(data) // batch_size  # the last partial batch of an epoch is dropped
        self.position = position  # batches drawn so far
        self.examples_drawn = examples_drawn  # examples drawn so far by `draw` (batches of varying size)
        self._epoch = -1
        self._perm: Tensor | None = None
        # Under DDP every rank draws the same global batch and keeps its own rows (batch_size is global).
        self.dist_info = dist_info or distributed.DistInfo()

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, Tensor]:
        epoch, index = divmod(self.position, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.num_examples, generator=g).to(self.device)
            self._epoch = epoch
        idx = distributed.shard(self._perm[index * self.batch_size : (index + 1) * self.batch_size], self.dist_info)
        self.position += 1
        return {key: self.to_model_space(value[idx]) for key, value in self.tensors.items()}

    def draw(self, size: int) -> dict[str, Tensor]:
        """A batch of `size` examples (global), for families whose batch size changes (progressive stages).

        The order depends only on `examples_drawn`: each epoch is the same seeded permutation as `__next__`'s,
        read `size` examples at a time; a batch that would cross the epoch's end starts the next epoch instead.
        A family uses either this or `next()`, not both.
        """
        if not 0 < size <= self.num_examples:
            raise ConfigError(f"a batch of {size} from dataset of {self.num_examples} examples")
        epoch, offset = divmod(self.examples_drawn, self.num_examples)
        if offset + size > self.num_examples:
            epoch, offset = epoch + 1, 0
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.num_examples, generator=g).to(self.device)
            self._epoch = epoch
        idx = distributed.shard(self._perm[offset : offset + size], self.dist_info)
        self.examples_drawn = epoch * self.num_examples + offset + size
        self.position += 1
        return {key: self.to_model_space(value[idx]) for key, value in self.tensors.items()}


def total_steps(cfg: Config, num_examples: int) -> int:
    if cfg.train.epochs is None:
        return cfg.train.steps
    batches = cfg.train.epochs * num_examples / cfg.train.batch_size
    return max(1, math.ceil(batches / cfg.train.n_critic))


def lr_lambda(cfg: Config, total: int):
    schedule, every, gamma = cfg.train.lr_schedule, cfg.train.lr_step_every, cfg.train.lr_step_gamma
    if schedule == "linear":
        return lambda s: max(0.0, 1.0 - s / total)
    if schedule == "cosine":
        return lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
    if schedule == "step":
        return lambda s: gamma ** (s // every)
    if schedule == "constant-linear":  # CycleGAN: full rate, then linear to 0 over the remaining steps
        start = int(cfg.train.lr_decay_start * total)
        return lambda s: 1.0 if s < start else max(0.0, 1.0 - (s - start) / max(1, total - start))
    return lambda s: 1.0


def prepare_run_dir(path: Path, *, overwrite: bool) -> None:
    """Create an empty run directory; an existing non-empty one is an error unless `overwrite`."""
    if path.exists() and not path.is_dir():
        raise GanforgeError(f"output path {path} exists and is not a directory")
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise GanforgeError(f"output directory {path} is not empty; pass --overwrite to replace it, "
                                f"or --resume {path} to continue it")
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise GanforgeError(f"cannot write to output directory {path}: {err.strerror or err}") from None


@dataclass
class TrainResult:
    run_dir: Path
    step: int  # steps completed
    stopped_by: str | None  # None, or why training ended early ("mode_collapse", "divergence", "early_stopping")
    diagnoses: list[Diagnosis] = field(default_factory=list)


class Trainer:
    """One generic loop over a family's names: its networks, optimizers, phases, EMAs, state and sampler."""

    def __init__(self, cfg: Config, run_dir: Path, *, resume: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / ckpt.CHECKPOINT_DIR
        t = cfg.train
        if t.cpu_threads:
            torch.set_num_threads(t.cpu_threads)  # process-wide: tiny models crawl with OpenMP spin-waits
        torch.manual_seed(t.seed)  # the same on every rank: identical weights, data order and noise
        self.dist = distributed.info()
        distributed.local_batch_size(t.batch_size, self.dist)  # checks that the global batch divides
        self.is_main = self.dist.is_main  # rank 0 alone writes logs, samples and checkpoints
        self.device = select_device(distributed.device_for(t.device, self.dist))
        self.data = load_dataset(cfg.data)
        self.family = family = FAMILIES[cfg.model.family]
        clusters = cfg.data.labels == "clusters" and self.data.labels is not None
        self.spec = DataSpec(shape=self.data.sample_shape, num_classes=self.data.num_classes,
                             class_counts=tuple(self.data.labels.bincount(minlength=self.data.num_classes).tolist())
                             if clusters else (),
                             extra_shapes=tuple((k, tuple(v.shape[1:])) for k, v in self.data.extras.items()))
        family.check(cfg, self.spec)
        keys = family.batch_keys(cfg.model)
        available = {"x", *self.data.extras} | ({"y"} if self.data.labels is not None else set())
        missing = [key for key in keys if key not in available]
        if missing:
            raise ConfigError(f"model family {family.name!r} needs batch keys {missing}; dataset {self.data.name!r} "
                              f"provides {', '.join(sorted(available))}")
        self.total = total_steps(cfg, len(self.data))

        # Networks in the family's order (their weights initialise from the global RNG in this order).
        self.networks: dict[str, nn.Module] = {
            name: build().to(self.device) for name, build in family.networks(cfg.model, self.spec).items()}
        for name, net in self.networks.items():
            if t.channels_last and self.spec.is_image:
                net.to(memory_format=torch.channels_last)
            if t.sync_batchnorm and self.dist.distributed:  # before the optimizers: conversion makes new modules
                self.networks[name] = distributed.convert_sync_batchnorm(net, self.device)

        self.health = HealthMonitor(cfg.health)
        self.optimizer_specs = family.optimizers(cfg)
        self.optimizers = {name: self._build_optimizer(name, spec) for name, spec in self.optimizer_specs.items()}
        base_schedule = lr_lambda(cfg, self.total)
        # The rollback factor is derived from the health monitor's rollback count, so it needs no state of its own
        # and the schedulers' state stays torch's.
        scaled = lambda s: self.cfg.health.rollback_lr_factor ** self.health.rollbacks * base_schedule(s)  # noqa: E731
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, scaled)
                           for name, opt in self.optimizers.items()}

        self.loss = get_loss(cfg.loss.name, real_label=cfg.loss.real_label, fake_label=cfg.loss.fake_label)
        self.regularizers = build_regularizers(cfg.loss.regularizers).to(self.device)
        self.augment = build_augment(cfg.loss.augment).to(self.device)
        if not self.spec.is_image and any(name == "diffaugment" for name in cfg.loss.augment):
            raise ConfigError("loss.augment.diffaugment needs image data")
        self.family_state = nn.ModuleDict(family.state(cfg, self.spec)).to(self.device)
        family.bind_data(cfg, self.data, dict(self.family_state.items()), self.networks)
        # After bind_data, which may initialise weights from the data: the averages start from those weights.
        self.emas = {name: EMA(self.networks[name], halflife_kimg=t.ema_kimg, rampup=t.ema_rampup)
                     for name in family.ema_networks} if t.ema_kimg > 0 else {}

        # Mixed precision: bf16 or fp16 (+ GradScaler) on CUDA; on CPU only bf16 (fast on CPUs with AVX512-BF16 or
        # AMX), fp16 falls back to fp32 there. Weights, optimizer state and losses stay fp32.
        amp = t.amp if self.device.type == "cuda" or (self.device.type == "cpu" and t.amp == "bf16") else "none"
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        device_type = self.device.type
        self.autocast = (lambda: torch.autocast(device_type, dtype=dtype)) if dtype else nullcontext
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        compiled = {name: torch.compile(net, mode=t.compile_mode) if t.compile else net
                    for name, net in self.networks.items()}
        updated = {name for spec in self.optimizer_specs.values() for name in spec.networks}
        views = NetworkViews(
            train={name: distributed.wrap_ddp(net, self.device, self.dist) if name in updated else net
                   for name, net in compiled.items()},
            call=compiled, eager=self.networks)

        self.stats = StatsCollector()
        self.log: MetricsLog | _NullLog = _NullLog()  # opened by fit()
        self.step = 0
        self.best: float | None = None
        self.evals_without_improvement = 0
        self._best_pending = False  # an evaluation just beat `best`: the next checkpoint also becomes best.pt
        self.diagnoses: list[Diagnosis] = []
        # What samples and evaluations come from (EMA weights where kept), and the raw networks' view for the
        # health monitor's diversity check (it watches what training does now, not the average).
        self.sampler = family.sampler({name: self.emas[name].model if name in self.emas else net
                                       for name, net in self.networks.items()}, config=cfg.model, spec=self.spec)
        self.raw_sampler = family.sampler(self.networks, config=cfg.model, spec=self.spec)
        if cfg.eval.every and self.sampler.task not in ("generate", "classify"):
            raise ConfigError(f"eval.every scores generated samples or a classifier; family {family.name!r} is a "
                              f"{self.sampler.task} model")
        refine = None
        if cfg.eval.every and self.sampler.task == "generate" and cfg.sample.refine_steps:
            # Refined evaluation needs the run's D: refuse now what would otherwise fail at the first evaluation.
            if "D" not in self.networks:
                raise ConfigError(f"sample.refine_steps refines samples on the run's discriminator 'D', and family "
                                  f"{family.name!r} has none (networks: {', '.join(self.networks)}); set "
                                  "sample.refine_steps=0 or eval.every=0")
            refine = Refinement(self.networks["D"], cfg.sample.refine_steps,
                                cfg.sample.refine_step_size).for_sampler(self.sampler)
        self.evaluator = PeriodicEvaluator(cfg.eval, self.data, seed=t.seed, data_root=cfg.data.root,
                                           device=self.device, task=self.sampler.task, data_config=cfg.data,
                                           refine=refine) if cfg.eval.every else None

        # Fixed inputs, drawn from their own generator so they never disturb the training RNG stream.
        g = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_inputs = self.raw_sampler.example_inputs(t.num_samples, generator=g, data=self.data)
        n_div = min(128, len(self.data))
        idx = torch.randperm(len(self.data), generator=g)[:n_div]
        self.diversity_real = self.data.to_model_space(self.data.data[idx]).to(self.device)
        self.diversity_inputs = self.raw_sampler.example_inputs(n_div, generator=g, data=self.data)

        start_position = start_examples = 0
        if resume:
            state = ckpt.load_checkpoint(self.ckpt_dir / "last.pt", map_location=self.device)
            self._load_state(state)
            start_position = state["batches_drawn"]
            start_examples = state.get("examples_drawn", 0)  # absent before per-stage batch sizes existed
        self.batches = BatchStream(self.data, batch_size=t.batch_size, seed=t.seed, device=self.device, keys=keys,
                                   position=start_position, examples_drawn=start_examples, dist_info=self.dist)
        self.ctx = PhaseContext(
            nets=views, batches=self.batches, batch_size=t.batch_size, device=self.device, loss=self.loss,
            regularizers={kind: [r for r in self.regularizers if r.phase == kind] for kind in ("d", "g")},
            augment=self.augment, stats=self.stats, autocast=self.autocast, state=dict(self.family_state.items()),
            config=cfg, shard=lambda x: distributed.shard(x, self.dist), class_weights=self._fake_class_weights(),
        )
        self.phases = family.phases(cfg)
        for phase in self.phases:
            if phase.optimizer not in self.optimizers:
                raise ConfigError(f"phase {phase.name!r} names optimizer {phase.optimizer!r}; the family has "
                                  f"{', '.join(self.optimizers)}")
            unknown = [name for name in phase.frozen if name not in self.networks]
            if unknown:
                raise ConfigError(f"phase {phase.name!r} freezes unknown networks {unknown}")

    def _fake_class_weights(self) -> Tensor | None:
        """The training set's class counts on the device when fakes' classes follow the data, else None (uniform)."""
        G = self.networks.get("G")
        if (self.cfg.train.fake_classes != "data" or self.data.labels is None
                or not getattr(G, "num_classes", 0)):
            return None
        return self.data.labels.bincount(minlength=G.num_classes).float().to(self.device)

    def _build_optimizer(self, name: str, spec: OptimizerSpec) -> torch.optim.Optimizer:
        """Adam over the spec's networks; each lr_mult prefix ("G.mapping") gets its own param group."""
        named = [(f"{net}.{pname}", p) for net in spec.networks for pname, p in self.networks[net].named_parameters()]
        groups: list[dict[str, Any]] = []
        for prefix, mult in spec.lr_mult.items():
            params = [p for pname, p in named if pname == prefix or pname.startswith(prefix + ".")]
            if not params:
                raise ConfigError(f"optimizer {name!r}: lr_mult prefix {prefix!r} matches no parameter")
            groups.append({"params": params, "lr": spec.lr * mult})
        grouped = {id(p) for group in groups for p in group["params"]}
        rest = [p for _, p in named if id(p) not in grouped]
        # Fused Adam (one kernel over all parameters) where torch has it: on CPU its update is ~3x faster than
        # foreach's, a toy-grid step 7% cheaper (benchmarks/toy_step_cost.py); foreach (multi-tensor) elsewhere.
        fused = self.device.type in ("cuda", "cpu")
        params = rest if not groups else [{"params": rest}, *groups] if rest else groups
        return torch.optim.Adam(params, lr=spec.lr, betas=tuple(spec.betas), weight_decay=spec.weight_decay,
                                fused=fused or None, foreach=None if fused else True)

    # ------------------------------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "config": self.cfg.to_yaml(),
            "family": self.family.name,
            "spec": self.spec.to_dict(),
            "step": self.step,
            "batches_drawn": self.batches.position,
            "examples_drawn": self.batches.examples_drawn,  # BatchStream.draw's cursor (per-stage batch sizes)
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "ema": {name: ema.model.state_dict() for name, ema in self.emas.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
            "family_state": {name: module.state_dict() for name, module in self.family_state.items()},
            "regularizers": self.regularizers.state_dict(),
            "augment": self.augment.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "health": yaml.safe_dump(self.health.state_dict()),
            "trainer": {"best": self.best,  # the rollback count lives in the monitor's state
                        "evals_without_improvement": self.evals_without_improvement},
            "rng": rng,
        }

    def _load_state(self, state: dict[str, Any], *, restore_health: bool = True) -> None:
        try:
            for name, net in self.networks.items():
                net.load_state_dict(state["networks"][name])
            for name, ema in self.emas.items():
                if name in state["ema"]:  # a run that starts keeping an EMA on resume starts it from the weights
                    ema.model.load_state_dict(state["ema"][name])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in self.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
            for name, module in self.family_state.items():
                module.load_state_dict(state["family_state"][name])
            self.regularizers.load_state_dict(state["regularizers"])
            self.augment.load_state_dict(state["augment"])
            if self.scaler is not None and state.get("scaler") is not None:
                self.scaler.load_state_dict(state["scaler"])
            if restore_health:
                self.health.load_state_dict(yaml.safe_load(state["health"]))
            trainer = state["trainer"]
            self.best = trainer["best"]
            self.evals_without_improvement = trainer["evals_without_improvement"]
            self.step = int(state["step"])
            torch.set_rng_state(state["rng"]["torch"].cpu())
            if "cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointError(f"checkpoint does not match this run's config: {str(err).splitlines()[0]}") \
                from None

    def _finite(self) -> bool:
        params = [p for net in self.networks.values() for p in net.parameters()]
        return bool(torch.stack([p.isfinite().all() for p in params]).all())

    def save_checkpoint(self) -> None:
        """step-N.pt, then `last.pt` re-pointed at it; never writes non-finite weights over good ones."""
        if not self._finite():
            self._log_event("checkpoint_skipped", "weights are not finite; kept the previous checkpoint")
            return
        if self.is_main:
            path = self.ckpt_dir / f"step-{self.step:08d}.pt"
            ckpt.save_checkpoint(self.state_dict(), path)
            ckpt.link_or_copy(path, self.ckpt_dir / "last.pt")
            if self._best_pending:
                ckpt.link_or_copy(path, self.ckpt_dir / "best.pt")
            ckpt.prune(self.ckpt_dir, self.cfg.train.keep_checkpoints)
        self._best_pending = False
        distributed.barrier()  # other ranks read it back on a rollback

    # ------------------------------------------------------------------------------------------ loop

    def run_step(self, measure: bool) -> None:
        """One training step: the family's hook, then every phase that is due, then the LR schedules."""
        self.family.on_step(self.ctx, self.step)
        for phase in self.phases:
            if self.step < phase.start or self.step % phase.interval:
                continue
            for _ in range(phase.repeats):
                self._run_phase(phase, measure)
        with warnings.catch_warnings():
            # The schedule is a function of the step for every optimizer, also one whose phase is lazy or has not
            # started yet (it has not stepped); torch warns about that order, which is intended here.
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
            for sched in self.schedulers.values():
                sched.step()

    def _run_phase(self, phase: PhaseSpec, measure: bool) -> None:
        frozen = [self.networks[name] for name in phase.frozen]
        for net in frozen:
            net.requires_grad_(False)  # gradients flow through these networks, not into their weights
        loss = phase.loss(self.ctx, self.step, measure)
        optimizer = self.optimizers[phase.optimizer]
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        for net in frozen:
            net.requires_grad_(True)
        if phase.after is not None:
            phase.after(self.ctx)
        for name in self.optimizer_specs[phase.optimizer].networks:
            if name in self.emas:
                batch = self.cfg.train.batch_size
                self.emas[name].update(self.networks[name], batch, images_seen=(self.step + 1) * batch)
        self.stats.report(f"loss_{phase.name.lower()}", loss)
        if measure:
            self.stats.report(f"grad_norm_{phase.optimizer.lower()}",
                              grad_norm_of([p for group in optimizer.param_groups for p in group["params"]]))

    def fit(self) -> TrainResult:
        t = self.cfg.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Atomic: a resumed run rewrites it, and a kill mid-write must not leave `--resume` a torn config.
        if self.is_main:
            ckpt.atomic_write_bytes(self.run_dir / "config.yaml", self.cfg.to_yaml().encode())
        self.log = MetricsLog(self.run_dir / "metrics.jsonl", logger=build_logger(t.logger_name, self.run_dir)) \
            if self.is_main else _NullLog()
        if self.step == 0:
            self.save_checkpoint()  # a known-good starting point (rollback target, resume after an early kill)
        progress = _progress(total=self.total, initial=self.step, enabled=t.progress and self.is_main)
        stopped_by = None
        tick_start, tick_steps = time.perf_counter(), 0
        try:
            while self.step < self.total:
                measure = (self.step + 1) % t.log_every == 0 or self.step + 1 == self.total
                self.run_step(measure)
                self.step += 1
                tick_steps += 1
                progress.update(1)
                if measure:
                    elapsed = time.perf_counter() - tick_start
                    stopped_by = self._tick(tick_steps, elapsed, progress)
                    tick_start, tick_steps = time.perf_counter(), 0
                    if stopped_by == "rollback":
                        progress.reset(total=self.total)
                        progress.update(self.step)
                        stopped_by = None
                        continue
                    if stopped_by:
                        break
                if self.evaluator is not None and self.evaluator.due(self.step):
                    stopped_by = self._evaluate()  # before the checkpoint, which then holds the new `best`
                    if stopped_by:
                        break  # like a health stop: the samples and checkpoint of this step follow the loop
                if self.step % t.sample_every == 0 or self.step == self.total:
                    self.save_samples()
                if self.step % t.checkpoint_every == 0 or self.step == self.total or self._best_pending:
                    self.save_checkpoint()
        finally:
            progress.close()
        if stopped_by and self._finite():
            self.save_samples()
            self.save_checkpoint()
        summary = self.health.summary()
        if summary and self.is_main:
            print(summary, file=sys.stderr)
            (self.run_dir / "health.txt").write_text(summary + "\n")
        self.log.close()
        return TrainResult(self.run_dir, self.step, stopped_by, list(self.diagnoses))

    def _tick(self, steps: int, elapsed: float, progress) -> str | None:
        t = self.cfg.train
        stats = self.stats.flush()
        stats["diversity"] = self._diversity()
        stats = distributed.mean_over_ranks(stats)  # DDP: global means, so every rank takes the same decisions
        images = steps * t.batch_size * t.n_critic
        drawn = self.batches.examples_drawn or self.batches.position * t.batch_size
        record = {"step": self.step, "kimg": drawn / 1000,
                  **stats, "images_per_s": images / max(elapsed, 1e-9),
                  **{f"lr_{name.lower()}": opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}}
        self.log.write(record)
        progress.set_postfix(
            {k: f"{record[k]:.3g}" for k in ("loss_d", "loss_g", "d_real", "d_fake") if k in record}
            | {"img/s": f"{record['images_per_s']:.0f}"}, refresh=False)
        outcome = None
        for diag in self.health.observe(self.step, stats):
            self.diagnoses.append(diag)
            self.log.write({"step": self.step, "event": diag.name, "message": diag.message, "action": diag.action})
            progress.write(f"[health] step {self.step}: {diag.name}: {diag.message}")
            if diag.action == "rollback":
                outcome = self._rollback(diag) or outcome
            elif diag.action == "stop":
                outcome = diag.name
        return outcome

    def _evaluate(self) -> str | None:
        """One periodic evaluation (rank 0 computes, every rank learns the outcome); "early_stopping" or None."""
        start = time.perf_counter()
        results = self.evaluator.evaluate(self.sampler) if self.is_main else None
        results = distributed.broadcast_object(results)
        outcome, self.best, self.evals_without_improvement = self.evaluator.judge(
            results, self.best, self.evals_without_improvement)
        self._best_pending = outcome.improved
        self.log.write({"step": self.step, "event": "eval", **results,
                        "seconds": round(time.perf_counter() - start, 3)})
        if self.is_main and self.cfg.train.progress:
            from tqdm.auto import tqdm

            shown = ", ".join(f"{k} {v:.4g}" for k, v in results.items())
            tqdm.write(f"[eval] step {self.step}: {shown}" + (" (best so far)" if outcome.improved else ""))
        if outcome.stop:
            self._log_event("early_stopping", f"no better {self.cfg.eval.best_metric} in "
                            f"{self.evals_without_improvement} evaluations (best {self.best:.4g})")
            return "early_stopping"
        return None

    @torch.no_grad()
    def _diversity(self) -> float:
        with eval_mode(self.raw_sampler):
            fake = self.raw_sampler.outputs(self.diversity_inputs)
        # A growing model's low-resolution stage is compared with reals at the same detail (no false collapse).
        real = match_detail(self.diversity_real, self.raw_sampler.detail_size())
        return diversity_ratio(fake.float(), real)

    def _rollback(self, diag: Diagnosis) -> str | None:
        """Restore the last good checkpoint and lower every learning rate (the monitor allows max_rollbacks)."""
        state = ckpt.load_checkpoint(self.ckpt_dir / "last.pt", map_location=self.device)
        self._load_state(state, restore_health=False)  # the monitor keeps its record and its rollback count
        self.health.after_rollback()
        # The schedules read the rollback count (see __init__); the optimizers' current rates follow at once.
        for name, optimizer in self.optimizers.items():
            sched = self.schedulers[name]
            for group, fn in zip(optimizer.param_groups, sched.lr_lambdas):
                group["lr"] = group["initial_lr"] * fn(sched.last_epoch)
        factor = self.cfg.health.rollback_lr_factor ** self.health.rollbacks
        self.batches.position = state["batches_drawn"]
        self.batches.examples_drawn = state.get("examples_drawn", 0)
        self.stats.flush()
        self._log_event("rollback", f"restored step {self.step}; learning rates x{factor:g} of the original")
        return "rollback"

    def _log_event(self, name: str, message: str) -> None:
        self.log.write({"step": self.step, "event": name, "message": message})

    @torch.no_grad()
    def save_samples(self) -> Path:
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        if not self.is_main:
            return path
        with eval_mode(self.sampler):
            samples = self.sampler.preview(self.fixed_inputs).float().cpu()
        real = self.data.data[:2000] if not self.spec.is_image else None
        image = save_samples(samples, path, real_points=real)
        self.log.image("samples", self.step, image)
        return path


class _NullLog:
    """What ranks other than 0 log to: nothing."""

    def write(self, record: dict[str, Any]) -> None:
        pass

    def image(self, tag: str, step: int, image: Tensor) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(*, total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                file=sys.stderr, mininterval=0.5)


def train(cfg: Config, run_dir: Path, *, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Train from a resolved config into run_dir (fresh) or continue the run in run_dir (`resume`).

    Under torchrun (WORLD_SIZE > 1) every process calls this; they join one DDP job (see `distributed`).
    """
    with distributed.session(cfg.train.device) as dist_info:
        if not resume:
            failure = None
            if dist_info.is_main:
                try:
                    prepare_run_dir(Path(run_dir), overwrite=overwrite)
                except GanforgeError as err:
                    failure = str(err)
            failure = distributed.broadcast_object(failure)  # every rank stops on rank 0's error
            if failure is not None:
                raise GanforgeError(failure)
        return Trainer(cfg, Path(run_dir), resume=resume).fit()

