"""Periodic evaluation during training (`eval.every`): score the generator, keep `best`, stop early.

Every `eval.every` steps the trainer samples `eval.num` points or images from its sampling generator (the EMA
of G when the run keeps one), scores them with `ganforge.metrics.evaluate` against a seeded subset of the
training data, and logs the results as an `eval` event in metrics.jsonl. With `eval.best_metric` the step that
scores best so far is kept as checkpoints/best.pt; with `eval.patience` the run stops after that many
evaluations without improvement. A run whose `sample` section refines its samples (`sample.refine_steps`,
ganforge.refine) is scored on refined samples, with its D as it is at that step: what `ganforge evaluate` and
`generate` give from the saved checkpoint, so best.pt is chosen on the samples a user will draw.

Evaluation draws no number from the training RNG streams (its own seeds, and the global state is restored
afterwards), so a run with evaluation trains exactly as the same run without it, and resume stays bitwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganforge.config import EvalConfig
from ganforge.data.base import TensorData
from ganforge.errors import ConfigError
from ganforge.metrics.base import expand_metric_names, is_improvement
from ganforge.metrics.sources import subset, training_samples
from ganforge.nn.progressive import match_detail_samples
from ganforge.refine import Refinement

# Metrics of a classifier (task "classify", e.g. a semi-supervised GAN's D) rather than of generated samples.
CLASSIFIER_METRICS = ("accuracy",)
EVAL_SEED_OFFSET = 2  # noise seed of the evaluation samples = train.seed + this (fixed noise uses + 1)


@dataclass
class EvalOutcome:
    improved: bool  # best_metric improved on every earlier evaluation (always False without best_metric)
    stop: bool  # patience is spent: the run should stop


class PeriodicEvaluator:
    """Scores a generator against the training data; keeps the best value of `cfg.best_metric`."""

    def __init__(self, cfg: EvalConfig, data: TensorData, *, seed: int, data_root: str | None,
                 device: torch.device, task: str = "generate", data_config=None,
                 refine: Refinement | None = None) -> None:
        from ganforge.metrics.domain import DOMAINS

        self.cfg = cfg
        self.metrics = expand_metric_names(cfg.metrics)
        self.seed = seed
        self.data_root = data_root
        self.device = device
        self.task = task  # the sampler's task: "generate" (scored by its samples) or "classify" (by accuracy)
        self.data_config = data_config  # the run's DataConfig: a classifier is scored on its test split
        self.refine = refine  # the run's D and sample section: set, samples are scored refined on that D
        self._test: TensorData | None = None
        classifier_metrics = [m for m in self.metrics if m in CLASSIFIER_METRICS]
        if task == "classify" and len(classifier_metrics) != len(self.metrics):
            raise ConfigError(f"eval.metrics of a classifier can be {', '.join(CLASSIFIER_METRICS)} only, got "
                              f"{', '.join(self.metrics)}")
        if task != "classify" and classifier_metrics:
            raise ConfigError(f"eval.metrics {', '.join(classifier_metrics)} scores a classifier (model.family "
                              f"ssgan); this run trains a {task} model")
        if task == "classify":
            return
        if data.is_image and cfg.features == "domain" and data.name not in DOMAINS:
            raise ConfigError(f"eval.features=domain needs a domain classifier, and dataset {data.name!r} has none "
                              f"(those with one: {', '.join(sorted(DOMAINS))}); use eval.features=inception")
        self.real = subset(training_samples(data), cfg.num_real, seed=seed)

    def due(self, step: int) -> bool:
        return self.cfg.every > 0 and step % self.cfg.every == 0

    def evaluate(self, sampler: nn.Module) -> dict[str, float]:
        """The metrics of `cfg.num` fresh samples of a generate sampler (its modes are left as they were), or a
        classifier's accuracy on the test split. With `refine` the samples are refined on the run's D as it is now
        (only the noise's gradient is taken: D's weights and gradients are untouched)."""
        if self.task == "classify":
            return self._classifier_metrics(sampler)
        from ganforge.metrics.evaluate import evaluate
        from ganforge.models.sampler import eval_mode
        from ganforge.sampling import default_classes, generate

        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with eval_mode(sampler), torch.random.fork_rng(devices=devices):  # the training RNG streams stay untouched
            if self.refine is not None:
                with eval_mode(self.refine.critic):
                    fake = self.refine.generate(sampler, self.cfg.num, seed=self.seed + EVAL_SEED_OFFSET)
            else:
                fake = generate(sampler, self.cfg.num, seed=self.seed + EVAL_SEED_OFFSET)
            labels = default_classes(sampler, self.cfg.num, seed=self.seed + EVAL_SEED_OFFSET)  # generate()'s
            # A growing model's low-resolution stage is scored against reals at the same detail.
            real = match_detail_samples(self.real, sampler.detail_size())
            return evaluate(fake, real, self.metrics, features=self.cfg.features, fake_labels=labels,
                            resize=self.cfg.resize, data_root=self.data_root, device=self.device,
                            progress=False, seed=self.seed)

    def _classifier_metrics(self, sampler: nn.Module) -> dict[str, float]:
        """test_accuracy: the classifier on the dataset's test split (datasets without one: its own images)."""
        from dataclasses import replace

        from ganforge.data import load_dataset
        from ganforge.models.sampler import eval_mode

        if self._test is None:
            self._test = load_dataset(replace(self.data_config, split="test", limit=None))
        with eval_mode(sampler):
            predicted = sampler.predict(self._test.data)
        return {"test_accuracy": (predicted == self._test.labels).double().mean().item()}

    def judge(self, results: dict[str, float], best: float | None, evals_without_improvement: int
              ) -> tuple[EvalOutcome, float | None, int]:
        """(outcome, new best, new count of evaluations without improvement) after one evaluation."""
        key = self.cfg.best_metric
        if key is None:
            return EvalOutcome(improved=False, stop=False), best, evals_without_improvement
        improved = is_improvement(key, results[key], best)
        if improved:
            best, evals_without_improvement = results[key], 0
        else:
            evals_without_improvement += 1
        stop = bool(self.cfg.patience) and evals_without_improvement >= self.cfg.patience
        return EvalOutcome(improved=improved, stop=stop), best, evals_without_improvement

