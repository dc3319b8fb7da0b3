"""The trainer: builds everything from a Config, runs the phases, logs once per tick, never loses work.

Run directory layout:
    config.yaml          the resolved config (what `--resume` reads back)
    metrics.jsonl        one line per tick (losses, D(x), D(G(z)), grad norms, images/s) and one per event
    samples/step-*.png   fixed-noise sample grids
    checkpoints/         step-*.pt (bounded history), last.pt and best.pt (links to the newest / best)
"""

from __future__ import annotations

import math
import shutil
import sys
import time
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
from ganforge.errors import CheckpointError, ConfigError, GanforgeError
from ganforge.losses import get_loss
from ganforge.models import FAMILIES, DataSpec
from ganforge.regularizers import build_regularizers
from ganforge.sampling import class_cycle, save_samples
from ganforge.train import checkpoint as ckpt
from ganforge.train import distributed
from ganforge.train.ema import EMA
from ganforge.train.evaluation import PeriodicEvaluator
from ganforge.train.health import Diagnosis, HealthMonitor, diversity_ratio
from ganforge.train.phases import StepContext, adversarial_phases
from ganforge.train.stats import MetricsLog, StatsCollector


def select_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class BatchStream:
    """Endless batches from an in-memory dataset, in an order fixed by (seed, epoch).

    The order depends only on how many batches were drawn, so a resumed run draws exactly the batches the
    uninterrupted run would have, with no sampler state to save.
    """

    def __init__(self, data: TensorData, *, batch_size: int, seed: int, device: torch.device,
                 position: int = 0, dist_info: distributed.DistInfo | None = None) -> None:
        if len(data) < batch_size:
            raise ConfigError(f"dataset {data.name!r} has {len(data)} examples, fewer than train.batch_size "
                              f"{batch_size}; lower the batch size")
        self.data = data.data.to(device)
        self.labels = None if data.labels is None else data.labels.to(device)
        self.to_model_space = data.to_model_space
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.per_epoch = len(data) // batch_size  # the last partial batch of an epoch is dropped
        self.position = position  # batches drawn so far
        self._epoch = -1
        self._perm: Tensor | None = None
        # Under DDP every rank draws the same global batch and keeps its own rows (batch_size is global).
        self.dist_info = dist_info or distributed.DistInfo()

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[Tensor, Tensor | None]:
        epoch, index = divmod(self.position, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.data), generator=g).to(self.device)
            self._epoch = epoch
        idx = distributed.shard(self._perm[index * self.batch_size : (index + 1) * self.batch_size], self.dist_info)
        self.position += 1
        x = self.to_model_space(self.data[idx])
        return x, (None if self.labels is None else self.labels[idx])


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
        self.spec = DataSpec(shape=self.data.sample_shape, num_classes=self.data.num_classes)
        if cfg.model.conditional and not self.spec.num_classes:
            raise ConfigError(f"model.conditional needs labelled data; dataset {self.data.name!r} has no labels")
        self.total = total_steps(cfg, len(self.data))

        family = FAMILIES[cfg.model.family]
        self.G = family.build_generator(cfg.model, self.spec).to(self.device)
        self.D = family.build_discriminator(cfg.model, self.spec).to(self.device)
        if t.channels_last and self.spec.is_image:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        if t.sync_batchnorm and self.dist.distributed:  # before the optimizers: conversion makes new modules
            self.G = distributed.convert_sync_batchnorm(self.G, self.device)
            self.D = distributed.convert_sync_batchnorm(self.D, self.device)
        self.ema = EMA(self.G, halflife_kimg=t.ema_kimg) if t.ema_kimg > 0 else None

        fused = self.device.type == "cuda"  # fused Adam on CUDA; foreach (multi-tensor) elsewhere
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=t.lr_g, betas=tuple(t.betas_g),
                                      weight_decay=t.weight_decay, fused=fused or None, foreach=None if fused else True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=t.lr_d, betas=tuple(t.betas_d),
                                      weight_decay=t.weight_decay, fused=fused or None, foreach=None if fused else True)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lr_lambda(cfg, self.total))
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lr_lambda(cfg, self.total))

        self.loss = get_loss(cfg.loss.name, real_label=cfg.loss.real_label, fake_label=cfg.loss.fake_label)
        self.regularizers = build_regularizers(cfg.loss.regularizers).to(self.device)
        self.augment = build_augment(cfg.loss.augment).to(self.device)
        if not self.spec.is_image and any(name == "diffaugment" for name in cfg.loss.augment):
            raise ConfigError("loss.augment.diffaugment needs image data")

        # Mixed precision: bf16 or fp16 (+ GradScaler) on CUDA; on CPU only bf16 (fast on CPUs with AVX512-BF16 or
        # AMX), fp16 falls back to fp32 there. Weights, optimizer state and losses stay fp32.
        amp = t.amp if self.device.type == "cuda" or (self.device.type == "cpu" and t.amp == "bf16") else "none"
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        device_type = self.device.type
        self.autocast = (lambda: torch.autocast(device_type, dtype=dtype)) if dtype else nullcontext
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        if t.compile:
            self.G_step, self.D_step = (torch.compile(m, mode=t.compile_mode) for m in (self.G, self.D))
        else:
            self.G_step, self.D_step = self.G, self.D
        # DDP wraps the (compiled) networks for the steps that update them; G's step calls D unwrapped.
        self.G_ddp = distributed.wrap_ddp(self.G_step, self.device, self.dist)
        self.D_ddp = distributed.wrap_ddp(self.D_step, self.device, self.dist)

        self.health = HealthMonitor(cfg.health)
        self.stats = StatsCollector()
        self.step = 0
        self.best: float | None = None
        self.evals_without_improvement = 0
        self._best_pending = False  # an evaluation just beat `best`: the next checkpoint also becomes best.pt
        self.diagnoses: list[Diagnosis] = []
        self.evaluator = PeriodicEvaluator(cfg.eval, self.data, seed=t.seed, data_root=cfg.data.root,
                                           device=self.device) if cfg.eval.every else None

        # Fixed inputs, drawn from their own generators so they never disturb the training RNG stream.
        g = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_z = self.G.sample_latent(t.num_samples, generator=g).to(self.device)
        labels = class_cycle(t.num_samples, self.G.num_classes)
        self.fixed_labels = None if labels is None else labels.to(self.device)
        n_div = min(128, len(self.data))
        idx = torch.randperm(len(self.data), generator=g)[:n_div]
        self.diversity_real = self.data.to_model_space(self.data.data[idx]).to(self.device)
        self.diversity_z = self.G.sample_latent(n_div, generator=g).to(self.device)
        self.diversity_labels = self.data.labels[idx].to(self.device) \
            if self.G.num_classes and self.data.labels is not None else None

        start_position = 0
        if resume:
            state = ckpt.load_checkpoint(self.ckpt_dir / "last.pt", map_location=self.device)
            self._load_state(state)
            start_position = state["batches_drawn"]
        self.batches = BatchStream(self.data, batch_size=t.batch_size, seed=t.seed, device=self.device,
                                   position=start_position, dist_info=self.dist)
        d_regs = [r for r in self.regularizers if r.phase == "d"]
        g_regs = [r for r in self.regularizers if r.phase == "g"]
        self.ctx = StepContext(
            G=self.G_ddp, D=self.D_ddp, opt_g=self.opt_g, opt_d=self.opt_d, loss=self.loss,
            d_regularizers=d_regs, g_regularizers=g_regs, augment=self.augment, batches=self.batches,
            batch_size=t.batch_size, device=self.device, stats=self.stats, autocast=self.autocast,
            scaler=self.scaler, after_g_step=self._after_g_step,
            G_module=self.G, D_frozen=self.D_step, D_eager=self.D,
            shard=lambda x: distributed.shard(x, self.dist),
            reuse_fakes=t.g_reuse_fakes,
        )
        self.phases = (family.phases or adversarial_phases)(self.ctx, n_critic=t.n_critic, n_gen=t.n_gen)

    # ------------------------------------------------------------------------------------------ state

    def _after_g_step(self) -> None:
        if self.ema is not None:
            self.ema.update(self.G, self.cfg.train.batch_size)

    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "config": self.cfg.to_yaml(),
            "spec": {"shape": list(self.spec.shape), "num_classes": self.spec.num_classes},
            "step": self.step,
            "batches_drawn": self.batches.position,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": None if self.ema is None else self.ema.model.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
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
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            if self.ema is not None and state.get("G_ema") is not None:
                self.ema.model.load_state_dict(state["G_ema"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_g.load_state_dict(state["sched_g"])
            self.sched_d.load_state_dict(state["sched_d"])
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
        params = [p for m in (self.G, self.D) for p in m.parameters()]
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

    def fit(self) -> TrainResult:
        t = self.cfg.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Atomic: a resumed run rewrites it, and a kill mid-write must not leave `--resume` a torn config.
        if self.is_main:
            ckpt.atomic_write_bytes(self.run_dir / "config.yaml", self.cfg.to_yaml().encode())
        self.log = MetricsLog(self.run_dir / "metrics.jsonl",
                              tensorboard_dir=self.run_dir / "tb" if t.tensorboard else None) \
            if self.is_main else _NullLog()
        if self.step == 0:
            self.save_checkpoint()  # a known-good starting point (rollback target, resume after an early kill)
        progress = _progress(total=self.total, initial=self.step, enabled=t.progress and self.is_main)
        stopped_by = None
        tick_start, tick_steps = time.perf_counter(), 0
        try:
            while self.step < self.total:
                measure = (self.step + 1) % t.log_every == 0 or self.step + 1 == self.total
                for phase in self.phases:
                    for _ in range(phase.repeats):
                        phase.run(self.step, measure)
                self.sched_g.step()
                self.sched_d.step()
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
        record = {"step": self.step, "kimg": self.batches.position * t.batch_size / 1000,
                  **stats, "images_per_s": images / max(elapsed, 1e-9),
                  "lr_g": self.opt_g.param_groups[0]["lr"], "lr_d": self.opt_d.param_groups[0]["lr"]}
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
        results = self.evaluator.evaluate(self.sampling_generator) if self.is_main else None
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
        self.G.eval()
        fake = self.G(self.diversity_z, self.diversity_labels)
        self.G.train()
        return diversity_ratio(fake.float(), self.diversity_real)

    def _rollback(self, diag: Diagnosis) -> str | None:
        """Restore the last good checkpoint and lower both learning rates (the monitor allows max_rollbacks)."""
        state = ckpt.load_checkpoint(self.ckpt_dir / "last.pt", map_location=self.device)
        self._load_state(state, restore_health=False)  # the monitor keeps its record and its rollback count
        self.health.after_rollback()
        factor = self.cfg.health.rollback_lr_factor**self.health.rollbacks
        for sched, base in ((self.sched_g, self.cfg.train.lr_g), (self.sched_d, self.cfg.train.lr_d)):
            sched.base_lrs = [base * factor for _ in sched.base_lrs]
            for group, base_lr, fn in zip(sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas):
                group["lr"] = base_lr * fn(sched.last_epoch)
            sched._last_lr = [group["lr"] for group in sched.optimizer.param_groups]
        self.batches.position = state["batches_drawn"]
        self.stats.flush()
        self._log_event("rollback", f"restored step {self.step}; learning rates x{factor:g} of the original")
        return "rollback"

    def _log_event(self, name: str, message: str) -> None:
        self.log.write({"step": self.step, "event": name, "message": message})

    @property
    def sampling_generator(self) -> nn.Module:
        """What samples and evaluations come from: the EMA of G when the run keeps one, else G."""
        return self.ema.model if self.ema is not None else self.G

    @torch.no_grad()
    def save_samples(self) -> Path:
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        if not self.is_main:
            return path
        generator = self.sampling_generator
        was_training = generator.training
        generator.eval()
        samples = generator(self.fixed_z, self.fixed_labels).float().cpu()
        generator.train(was_training)
        real = self.data.data[:2000] if not self.spec.is_image else None
        save_samples(samples, path, real_points=real)
        return path


class _NullLog:
    """What ranks other than 0 log to: nothing."""

    def write(self, record: dict[str, Any]) -> None:
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

