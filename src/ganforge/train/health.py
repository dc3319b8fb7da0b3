"""Training-health monitor: name a GAN failure while it happens, from stats the step already has.

GANs fail silently: the losses keep printing while G collapses onto one mode, D wins outright and G's
gradients vanish, the two players oscillate without converging, or the numbers blow up. Once per tick the
trainer hands `HealthMonitor.observe` the tick's mean stats; the monitor keeps a few short histories and
returns the diagnoses that newly fired, each with its evidence, the literature's remedies and the action the
config asks for.

A condition must hold for `patience_ticks` measured ticks before it fires (one noisy tick is not a failure),
and an active diagnosis fires again only after it has been clear for `recovery_ticks` (a log is not flooded
with the same warning). Divergence and oscillation fire at once: non-finite numbers are never noise, and
oscillation is already judged over a window of ticks.

Stats the monitor reads (means over the tick; any may be missing, which counts as no evidence either way):
    loss_d, loss_g            the adversarial losses
    d_real, d_fake            D's mean probability (sigmoid of its logit) that real / fake samples are real
    d_acc_real, d_acc_fake    fraction of real samples with logit > 0 / of generated samples with logit < 0
    grad_norm_g, grad_norm_d  global L2 norm of each network's gradients before its optimizer step
    diversity                 `diversity_ratio(fake, real)`: ~1 healthy, near 0 collapsed
Any non-finite value, under any key, is divergence. The probability and accuracy thresholds read D's output
as a logit, as the BCE losses (nonsaturating, minimax) train it; for a WGAN critic or LSGAN's raw outputs
they have no calibrated meaning, so such runs should list the overpowering diagnoses in `health.disabled`.

On a "rollback" diagnosis the trainer restores its last good checkpoint but keeps this monitor's state (so
the rollback count and the record survive) and calls `after_rollback()`.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ganforge.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DIAGNOSES", "REMEDIES", "Diagnosis", "HealthConfig", "HealthMonitor", "diversity_ratio"]

# In the order they are checked and reported: divergence first, because it makes every other signal moot.
DIAGNOSES = (
    "divergence",
    "vanishing_gradients",
    "d_overpowering",
    "g_overpowering",
    "mode_collapse",
    "oscillation",
)

# The remedies the GAN literature gives for each failure, naming ganforge's config keys where one exists.
REMEDIES: dict[str, tuple[str, ...]] = {
    "divergence": (
        "lower the learning rates (train.lr_g, train.lr_d)",
        "add a gradient penalty (loss.regularizers: WGAN-GP or R1) or spectral normalisation in D",
        "train in full precision (train.amp=none) if mixed precision is on",
        "check the data for NaN/Inf and that it is scaled to [-1, 1] like G's output",
    ),
    "vanishing_gradients": (
        "use the non-saturating G loss (loss.name=nonsaturating) rather than the minimax log(1 - D(G(z)))",
        "use a loss whose gradient does not saturate: WGAN-GP, hinge or least squares",
        "weaken D: lower train.lr_d (TTUR), one-sided label smoothing (loss.real_label=0.9), instance noise",
        "avoid saturating units: LeakyReLU in D, batch norm in G",
    ),
    "d_overpowering": (
        "one-sided label smoothing (loss.real_label=0.9)",
        "lower D's learning rate relative to G's (TTUR: train.lr_d, train.lr_g)",
        "instance noise or DiffAugment on D's inputs (loss.augment)",
        "fewer D steps per step (train.n_critic=1) or more G steps (train.n_gen=2)",
        "feature matching for G",
        "spectral normalisation or dropout in D",
    ),
    "g_overpowering": (
        "raise D's learning rate relative to G's (TTUR: train.lr_d, train.lr_g)",
        "more D steps per step (train.n_critic)",
        "give D more capacity, or less regularisation, label smoothing and input noise",
    ),
    "mode_collapse": (
        "minibatch discrimination or a minibatch-stddev layer in D",
        "PacGAN: D judges packs of several samples at once",
        "WGAN-GP or another loss with a gradient penalty (loss.name, loss.regularizers)",
        "unrolled GAN: G's update looks ahead several D steps",
        "lower learning rates / TTUR, instance noise or DiffAugment (loss.augment), feature matching",
    ),
    "oscillation": (
        "lower both learning rates; Adam beta1 0.5 or 0 (train.betas_g, train.betas_d)",
        "TTUR: D's learning rate above G's (Heusel et al. 2017)",
        "a gradient penalty (R1 or WGAN-GP) or spectral normalisation to damp the dynamics",
        "judge results on the EMA of G's weights (train.ema_kimg), which averages the cycles out",
    ),
}

LOSS_KEYS = ("loss_d", "loss_g")
# Series judged for oscillation. Tick means of the losses average fast swings out; the diversity of a fixed
# batch of samples is a snapshot, so it also shows G hopping from mode to mode while the losses look calm.
OSCILLATION_KEYS = (*LOSS_KEYS, "diversity")
DIVERSITY_LEVEL = 1.0  # diversity's healthy level by construction: its swings are judged against >= this
MIN_REFERENCE_TICKS = 3  # a running median over fewer ticks is too noisy to compare against
STATE_VERSION = 1


@dataclass
class HealthConfig:
    enabled: bool = True  # check training health once per tick (train.log_every steps); costs a few float ops
    on_divergence: str = "warn"  # "warn", "stop", or "rollback": restore the last good checkpoint, lower LRs
    on_collapse: str = "warn"  # "warn" or "stop" when mode collapse is diagnosed
    max_rollbacks: int = 3  # rollbacks allowed per run; a divergence after the last one stops the run
    rollback_lr_factor: float = 0.5  # each rollback multiplies both learning rates by this
    warmup_ticks: int = 2  # first ticks checked only for divergence: at init D wins and G's output clumps
    patience_ticks: int = 3  # measured ticks in a row a balance/gradient/collapse condition must hold to fire
    recovery_ticks: int = 3  # clear ticks in a row before an active diagnosis is over and may fire again
    history_ticks: int = 20  # ticks kept for the running medians of the losses and of G's grad norm
    d_overpowering_accuracy: float = 0.95  # D's accuracy (mean of real and fake) at or above which D wins
    d_overpowering_margin: float = 0.85  # ... and D(x) - D(G(z)) at least this: D's loss is near 0. DCGAN's
    # usual D(x) ~0.85 / D(G(z)) ~0.1 (a strong D that G keeps up with) stays below it
    g_overpowering_d_fake: float = 0.8  # D's mean probability that fakes are real at or above which G fools D
    vanishing_grad_norm: float = 1e-3  # G's gradient norm below this has vanished, whatever its history
    vanishing_grad_ratio: float = 0.01  # ... or below this fraction of its healthy level (a 100x drop): the
    # highest running median it has had, since saturation usually sets in gradually
    collapse_diversity: float = 0.2  # diversity ratio below which G's samples have collapsed (one near-point)
    oscillation_window: int = 12  # ticks of history (losses, diversity) judged for oscillation
    oscillation_amplitude: float = 0.75  # a swing counts if a series moves this fraction of its median level.
    # Calibrated on the presets' real runs (benchmarks/preset_health.py): a healthy DCGAN's tick-mean D loss
    # swings by up to ~0.4-0.5 of its level late in training (0.5 warned on the default run), while the
    # provoked oscillation (lr 5e-2, beta1 0.9) swings by up to ~1.9x its level
    oscillation_min_swings: int = 4  # up or down legs in the window that make an oscillation: two cycles
    divergence_loss_factor: float = 50.0  # a loss above this many times its running median |loss| diverged
    divergence_loss_limit: float = 1e4  # |loss| above this has diverged whatever its history: a run that
    # blows up in its first ticks leaves no sane history to compare with
    loss_floor: float = 0.5  # loss scales are at least this, so near-zero losses (WGAN, hinge) don't turn
    # small wiggles into big relative swings or explosions
    disabled: list[str] = field(default_factory=list)  # diagnoses not to check, e.g. both overpowering ones
    # for a WGAN critic, whose outputs are scores rather than logits of a probability

    def validate(self) -> None:
        if self.on_divergence not in ("warn", "stop", "rollback"):
            raise ConfigError(f"health.on_divergence must be warn, stop or rollback, "
                              f"got {self.on_divergence!r}")
        if self.on_collapse not in ("warn", "stop"):
            raise ConfigError(f"health.on_collapse must be warn or stop, got {self.on_collapse!r}")
        ranges = (  # field, test, what the message says it must be
            ("max_rollbacks", lambda v: v >= 0, ">= 0"),
            ("rollback_lr_factor", lambda v: 0 < v <= 1, "in (0, 1]"),
            ("warmup_ticks", lambda v: v >= 0, ">= 0"),
            ("patience_ticks", lambda v: v >= 1, ">= 1"),
            ("recovery_ticks", lambda v: v >= 1, ">= 1"),
            ("history_ticks", lambda v: v >= MIN_REFERENCE_TICKS, f">= {MIN_REFERENCE_TICKS}"),
            ("d_overpowering_accuracy", lambda v: 0.5 < v <= 1, "in (0.5, 1]"),
            ("d_overpowering_margin", lambda v: 0 <= v <= 1, "in [0, 1]"),
            ("g_overpowering_d_fake", lambda v: 0.5 < v <= 1, "in (0.5, 1]"),
            ("vanishing_grad_norm", lambda v: v >= 0, ">= 0"),
            ("vanishing_grad_ratio", lambda v: 0 <= v < 1, "in [0, 1)"),
            ("collapse_diversity", lambda v: 0 <= v < 1, "in [0, 1)"),
            ("oscillation_min_swings", lambda v: v >= 2, ">= 2"),
            ("oscillation_window", lambda v: v > self.oscillation_min_swings,
             f"> oscillation_min_swings ({self.oscillation_min_swings}) to hold that many swings"),
            ("oscillation_amplitude", lambda v: v > 0, "> 0"),
            ("divergence_loss_factor", lambda v: v > 1, "> 1"),
            ("divergence_loss_limit", lambda v: v > 0, "> 0"),
            ("loss_floor", lambda v: v > 0, "> 0"),
        )
        for name, ok, wanted in ranges:
            value = getattr(self, name)
            if not ok(value):
                raise ConfigError(f"health.{name} must be {wanted}, got {value!r}")
        unknown = sorted(set(self.disabled) - set(DIAGNOSES))
        if unknown:
            raise ConfigError(f"health.disabled has an unknown diagnosis {unknown[0]!r}; "
                              f"valid: {', '.join(DIAGNOSES)}")


@dataclass(frozen=True)
class Diagnosis:
    name: str  # one of DIAGNOSES
    step: int  # the training step of the tick on which it fired
    message: str  # one line with the evidence, e.g. "D accuracy 0.99 (real) / 0.98 (fake) for 3 ticks; ..."
    remedies: tuple[str, ...]  # what the literature suggests, most usual first
    action: str  # what the trainer should do: "warn", "stop" or "rollback"

    def __str__(self) -> str:
        return f"step {self.step}: {self.name}: {self.message} [{self.action}]"


@dataclass
class _Track:
    """Per-diagnosis state: how long its condition has held or been clear, and what it has fired so far."""

    streak: int = 0  # measured ticks in a row with the condition true
    clear: int = 0  # ticks in a row with the condition false while active
    active: bool = False  # fired and not yet recovered
    count: int = 0  # times fired in the run
    first_step: int | None = None  # step it first fired
    last_step: int | None = None  # step it last fired
    last_message: str = ""  # evidence the last time it fired


class HealthMonitor:
    """Turn per-tick mean stats into named diagnoses; see the module docstring for the keys it reads."""

    def __init__(self, cfg: HealthConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self._ticks = 0
        self._first_step: int | None = None
        self._last_step: int | None = None
        self._rollbacks = 0
        self._tracks = {name: _Track() for name in DIAGNOSES}
        # Healthy history only: values that fired their own check stay out, so a reference scale is never
        # dragged towards the failure it is there to detect.
        self._loss_reference = {key: deque(maxlen=cfg.history_ticks) for key in LOSS_KEYS}
        self._grad_reference: deque[float] = deque(maxlen=cfg.history_ticks)
        self._grad_peak: float | None = None  # highest running median of G's grad norm: its healthy level
        self._windows = {key: deque(maxlen=cfg.oscillation_window) for key in OSCILLATION_KEYS}

    # ------------------------------------------------------------------------------------------ per tick

    @property
    def rollbacks(self) -> int:
        """Rollbacks asked for so far in this run."""
        return self._rollbacks

    @property
    def active(self) -> tuple[str, ...]:
        """Diagnoses that have fired and not yet recovered."""
        return tuple(name for name in DIAGNOSES if self._tracks[name].active)

    def observe(self, step: int, stats: dict[str, Any]) -> list[Diagnosis]:
        """Check one tick's mean stats; return the diagnoses that fired on this tick (usually none)."""
        if not self.cfg.enabled:
            return []
        self._ticks += 1
        self._first_step = step if self._first_step is None else self._first_step
        self._last_step = step
        raw = {key: float(value) for key, value in stats.items() if value is not None}
        nonfinite = {key: value for key, value in raw.items() if not math.isfinite(value)}
        values = {key: value for key, value in raw.items() if key not in nonfinite}
        warming_up = self._ticks <= self.cfg.warmup_ticks

        conditions: dict[str, tuple[bool | None, str]] = {"divergence": self._divergence(values, nonfinite)}
        if not warming_up:
            conditions["vanishing_gradients"] = self._vanishing_gradients(values)
            conditions["d_overpowering"] = self._d_overpowering(values)
            conditions["g_overpowering"] = self._g_overpowering(values)
            conditions["mode_collapse"] = self._mode_collapse(values)
            conditions["oscillation"] = self._oscillation(values)

        fired = []
        for name, (condition, evidence) in conditions.items():
            if name in self.cfg.disabled or condition is None:
                continue
            diagnosis = self._update(name, condition, evidence, step)
            if diagnosis is not None:
                fired.append(diagnosis)
        self._remember(values, conditions, warming_up)
        return fired

    def after_rollback(self) -> None:
        """Call after restoring a checkpoint on a "rollback" diagnosis, instead of loading the checkpoint's
        monitor state: the rollback count and the run's record must survive the restore (else max_rollbacks
        could never be reached), while streaks and oscillation windows describe the abandoned trajectory."""
        for track in self._tracks.values():
            track.streak = track.clear = 0
            track.active = False
        for window in self._windows.values():
            window.clear()

    def _update(self, name: str, condition: bool, evidence: str, step: int) -> Diagnosis | None:
        track = self._tracks[name]
        if not condition:
            track.streak = 0
            if track.active:
                track.clear += 1
                if track.clear >= self.cfg.recovery_ticks:
                    track.active = False
            return None
        track.streak += 1
        track.clear = 0
        needed = 1 if name in ("divergence", "oscillation") else self.cfg.patience_ticks
        if track.active or track.streak < needed:
            return None
        track.active = True
        track.count += 1
        track.first_step = step if track.first_step is None else track.first_step
        track.last_step = step
        track.last_message = evidence
        return Diagnosis(name=name, step=step, message=evidence, remedies=REMEDIES[name],
                         action=self._action(name))

    def _action(self, name: str) -> str:
        if name == "mode_collapse":
            return self.cfg.on_collapse
        if name != "divergence":
            return "warn"
        if self.cfg.on_divergence != "rollback":
            return self.cfg.on_divergence
        if self._rollbacks >= self.cfg.max_rollbacks:
            return "stop"  # out of rollbacks: diverging again after max_rollbacks LR cuts is not transient
        self._rollbacks += 1
        return "rollback"

    def _remember(self, values: dict[str, float], conditions: dict[str, tuple[bool | None, str]],
                  warming_up: bool) -> None:
        if not conditions["divergence"][0]:
            for key in LOSS_KEYS:
                if key in values:
                    self._loss_reference[key].append(values[key])
        vanishing = conditions.get("vanishing_gradients", (None, ""))[0]
        if "grad_norm_g" in values and not vanishing:
            self._grad_reference.append(values["grad_norm_g"])
            if len(self._grad_reference) >= MIN_REFERENCE_TICKS:
                level = statistics.median(self._grad_reference)
                self._grad_peak = level if self._grad_peak is None else max(self._grad_peak, level)
        if not warming_up:  # the first ticks' large transients are not oscillation
            for key in OSCILLATION_KEYS:
                if key in values:
                    self._windows[key].append(values[key])

    # ------------------------------------------------------------------------------------------ the checks
    # Each returns (condition, evidence): condition None means no evidence this tick (a stat is missing or
    # the history is too short), which neither extends nor breaks a streak.

    def _tick_evidence(self, name: str) -> str:
        ticks = self._tracks[name].streak + 1  # counting this tick, if the condition holds
        return f"for {ticks} tick{'s' if ticks != 1 else ''}"

    def _divergence(self, values: dict[str, float], nonfinite: dict[str, float]) -> tuple[bool | None, str]:
        if nonfinite:
            listed = ", ".join(f"{key}={value}" for key, value in nonfinite.items())
            return True, f"non-finite stats: {listed}"
        exploded = []
        for key in LOSS_KEYS:
            if key not in values:
                continue
            limit = self.cfg.divergence_loss_limit
            if abs(values[key]) > limit:
                exploded.append(f"{key} {values[key]:.4g} is above the limit {limit:g}")
                continue
            reference = self._loss_reference[key]
            if len(reference) < MIN_REFERENCE_TICKS:
                continue
            scale = max(statistics.median(abs(v) for v in reference), self.cfg.loss_floor)
            if abs(values[key]) > self.cfg.divergence_loss_factor * scale:
                exploded.append(f"{key} {values[key]:.4g} is {abs(values[key]) / scale:.0f}x its running "
                                f"scale {scale:.3g}")
        if exploded:
            return True, "; ".join(exploded)
        return False, ""

    def _vanishing_gradients(self, values: dict[str, float]) -> tuple[bool | None, str]:
        if "grad_norm_g" not in values:
            return None, ""
        norm = values["grad_norm_g"]
        peak = self._grad_peak
        if norm < self.cfg.vanishing_grad_norm:
            why = f"below the floor {self.cfg.vanishing_grad_norm:.3g}"
        elif peak is not None and norm < self.cfg.vanishing_grad_ratio * peak:
            why = f"{peak / max(norm, 1e-30):.0f}x below its healthy level {peak:.3g}"
        else:
            return False, ""
        evidence = f"G grad norm {norm:.3g} {self._tick_evidence('vanishing_gradients')} ({why})"
        if "d_fake" in values:
            evidence += f"; D(G(z)) {values['d_fake']:.3g}"
        if "grad_norm_d" in values:
            evidence += f"; D grad norm {values['grad_norm_d']:.3g}"
        return True, evidence

    def _d_overpowering(self, values: dict[str, float]) -> tuple[bool | None, str]:
        if "d_acc_real" not in values or "d_acc_fake" not in values:
            return None, ""
        accuracy = (values["d_acc_real"] + values["d_acc_fake"]) / 2
        if accuracy < self.cfg.d_overpowering_accuracy:
            return False, ""
        evidence = (f"D accuracy {values['d_acc_real']:.3g} (real) / {values['d_acc_fake']:.3g} (fake) "
                    f"{self._tick_evidence('d_overpowering')}")
        if "d_real" in values and "d_fake" in values:
            if values["d_real"] - values["d_fake"] < self.cfg.d_overpowering_margin:
                return False, ""  # it separates them, but barely: G still gets useful gradients
            evidence += f"; D(x) {values['d_real']:.3g}, D(G(z)) {values['d_fake']:.3g}"
        if "grad_norm_g" in values:
            evidence += f"; G grad norm {values['grad_norm_g']:.3g}"
        return True, evidence

    def _g_overpowering(self, values: dict[str, float]) -> tuple[bool | None, str]:
        if "d_fake" not in values:
            return None, ""
        if values["d_fake"] < self.cfg.g_overpowering_d_fake:
            return False, ""
        evidence = (f"D(G(z)) {values['d_fake']:.3g} {self._tick_evidence('g_overpowering')}: "
                    "D takes fakes for real")
        if "d_real" in values:
            evidence += f"; D(x) {values['d_real']:.3g}"
        if "d_acc_fake" in values:
            evidence += f"; D accuracy on fakes {values['d_acc_fake']:.3g}"
        return True, evidence

    def _mode_collapse(self, values: dict[str, float]) -> tuple[bool | None, str]:
        if "diversity" not in values:
            return None, ""
        if values["diversity"] >= self.cfg.collapse_diversity:
            return False, ""
        return True, (f"sample diversity {values['diversity']:.3g} of real's "
                      f"{self._tick_evidence('mode_collapse')} (below {self.cfg.collapse_diversity:.3g})")

    def _oscillation(self, values: dict[str, float]) -> tuple[bool | None, str]:
        measured = False
        for key in OSCILLATION_KEYS:
            if key not in values:
                continue
            window = [*self._windows[key], values[key]][-self.cfg.oscillation_window:]
            if len(window) <= self.cfg.oscillation_min_swings:
                continue
            measured = True
            floor = DIVERSITY_LEVEL if key == "diversity" else self.cfg.loss_floor
            level = max(statistics.median(abs(v) for v in window), floor)
            swings = _count_swings(window, self.cfg.oscillation_amplitude * level)
            if swings >= self.cfg.oscillation_min_swings:
                return True, (f"{key} swung {swings} times by >= {self.cfg.oscillation_amplitude:.0%} of its "
                              f"level {level:.3g} (range {min(window):.3g}..{max(window):.3g}) in the last "
                              f"{len(window)} ticks")
        return (False, "") if measured else (None, "")

    # ------------------------------------------------------------------------------------------ reporting

    def summary(self) -> str:
        """A multi-line end-of-run report: each diagnosis, how often, when first, and what to try."""
        if not self.cfg.enabled:
            return "Training health: monitor disabled (health.enabled=false)."
        if self._ticks == 0:
            return "Training health: no ticks observed."
        span = f"{self._ticks} ticks (steps {self._first_step}..{self._last_step})"
        fired = [name for name in DIAGNOSES if self._tracks[name].count]
        if not fired:
            return f"Training health: no problems detected in {span}."
        lines = [f"Training health: {len(fired)} kind(s) of problem in {span}:"]
        for name in fired:
            track = self._tracks[name]
            times = f"{track.count} time{'s' if track.count != 1 else ''}"
            still = ", still active at the end" if track.active else ""
            lines.append(f"  {name}: {times}, first at step {track.first_step}, "
                         f"last at step {track.last_step}{still}")
            lines.append(f"    last evidence: {track.last_message}")
            lines.append("    remedies:")
            lines.extend(f"      - {remedy}" for remedy in REMEDIES[name])
        if self.cfg.on_divergence == "rollback":
            lines.append(f"  rollbacks: {self._rollbacks} of {self.cfg.max_rollbacks} allowed")
        return "\n".join(lines)

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able state (ints, floats, strings, lists, dicts) so a resumed run keeps its history."""
        return {
            "version": STATE_VERSION,
            "ticks": self._ticks,
            "first_step": self._first_step,
            "last_step": self._last_step,
            "rollbacks": self._rollbacks,
            "tracks": {name: vars(track).copy() for name, track in self._tracks.items()},
            "loss_reference": {key: list(values) for key, values in self._loss_reference.items()},
            "grad_reference": list(self._grad_reference),
            "grad_peak": self._grad_peak,
            "windows": {key: list(values) for key, values in self._windows.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            found = state.get("version") if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(f"health monitor state has version {found!r}; "
                                  f"this ganforge reads version {STATE_VERSION}")
        try:
            tracks = {name: _Track(**state["tracks"][name]) for name in DIAGNOSES}
            loss_reference = {key: [float(v) for v in state["loss_reference"][key]] for key in LOSS_KEYS}
            grad_reference = [float(v) for v in state["grad_reference"]]
            grad_peak = None if state["grad_peak"] is None else float(state["grad_peak"])
            windows = {key: [float(v) for v in state["windows"][key]] for key in OSCILLATION_KEYS}
            ticks, rollbacks = int(state["ticks"]), int(state["rollbacks"])
            first_step, last_step = state["first_step"], state["last_step"]
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"health monitor state is malformed: {type(err).__name__}: {err}") from None
        self._ticks, self._rollbacks = ticks, rollbacks
        self._first_step, self._last_step = first_step, last_step
        self._tracks = tracks
        # Re-made with this config's lengths, in case a resumed run changed history_ticks or the window.
        self._loss_reference = {k: deque(v, maxlen=self.cfg.history_ticks) for k, v in loss_reference.items()}
        self._grad_reference = deque(grad_reference, maxlen=self.cfg.history_ticks)
        self._grad_peak = grad_peak
        self._windows = {k: deque(v, maxlen=self.cfg.oscillation_window) for k, v in windows.items()}


def _count_swings(series: list[float], min_move: float) -> int:
    """Legs of a zigzag through `series` that move at least `min_move`: a monotone trend is 1 leg, noise
    smaller than `min_move` is 0, and each half-cycle of an oscillation bigger than `min_move` is 1."""
    swings = 0
    direction = 0  # +1 rising, -1 falling, 0 before the first leg
    low = high = extreme = series[0]
    for value in series[1:]:
        if direction == 0:
            low, high = min(low, value), max(high, value)
            if high - low >= min_move:
                direction, extreme, swings = (1 if value == high else -1), value, 1
        elif direction > 0:
            if value > extreme:
                extreme = value
            elif extreme - value >= min_move:
                direction, extreme, swings = -1, value, swings + 1
        else:
            if value < extreme:
                extreme = value
            elif value - extreme >= min_move:
                direction, extreme, swings = 1, value, swings + 1
    return swings


def diversity_ratio(fake: Tensor, real: Tensor) -> float:
    """Mean pairwise L2 distance of the flattened generated samples over the same for real samples.

    fake: (N, ...), real: (M, ...), N and M >= 2. ~1 when G spreads like the data; 0 when every sample is the
    same point. A real batch of identical samples gives 1.0 if the fakes are identical too (no sign of
    collapse relative to the data), else the ratio against a tiny floor instead of a division by zero.
    """
    import torch  # here, not at the top: `ganforge.config` imports this module and should stay light

    with torch.no_grad():
        # float32 whatever the input: cdist has no half-precision CPU kernel, and MPS has no float64.
        fake_spread = _mean_pairwise_distance(fake.detach().flatten(1).float())
        real_spread = _mean_pairwise_distance(real.detach().flatten(1).float())
    tiny = 1e-12
    if real_spread <= tiny:
        return 1.0 if fake_spread <= tiny else fake_spread / tiny
    return fake_spread / real_spread


def _mean_pairwise_distance(samples: Tensor) -> float:
    import torch

    count = samples.shape[0]  # samples: (N, D)
    if count < 2:
        raise ValueError(f"diversity needs at least 2 samples per set, got {count}")
    # Exact differences rather than the |a|^2 + |b|^2 - 2ab matrix-product form, whose rounding leaves
    # identical samples a small non-zero distance apart.
    distances = torch.cdist(samples, samples, compute_mode="donot_use_mm_for_euclid_dist")  # (N, N)
    return float(distances.sum() / (count * (count - 1)))  # the zero diagonal is left out of the mean
