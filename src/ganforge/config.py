"""The run configuration: dataclasses are the schema, YAML presets are only presets.

A config has six sections (`data`, `model`, `loss`, `train`, `eval`, `sample`) plus `health`. The `model` section is
the chosen family's own config dataclass (each family file defines it), so every family validates its own
keys. Values come from a preset, then dotted overrides (`train.lr_g=2e-4`); every value is type-checked and
range-checked before training starts, and an unknown key is an error that names it.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ganforge.errors import ConfigError
from ganforge.schema import coerce, keyed, positive
from ganforge.train.health import HealthConfig
from ganforge.train.loggers import LOGGERS


@dataclass
class ImageTaskConfig:
    """Options of the image-to-image datasets (paired, unpaired, sr, mnist-edges, mnist-m, sr-photos)."""

    source: str | None = None  # sr / unpaired: the dataset whose images are used (domain A for unpaired)
    domain_b: str | None = None  # unpaired: the second dataset (domain B); None: folders root/A and root/B
    scale: int = 4  # sr: downsampling factor of the low-res inputs (2 or 4)
    downsample: str = "bicubic"  # sr: "bicubic" (antialiased) or "area" (block means)
    crop: int | None = None  # sr: side of the random high-res crops (a multiple of scale); None: whole images
    crops_per_image: int = 1  # sr with crop: how many random crops each image gives (sr-photos: many)
    seed: int = 0  # photo patches (mnist-m), crop positions and unpaired shuffles: the same seed, the same data

    def validate(self) -> None:
        if self.scale not in (2, 4, 8):
            raise ConfigError(f"data.task.scale must be 2, 4 or 8, got {self.scale}")
        if self.downsample not in ("bicubic", "area"):
            raise ConfigError(f"data.task.downsample must be 'bicubic' or 'area', got {self.downsample!r}")
        positive("data.task.crop", self.crop, allow_none=True)
        positive("data.task.crops_per_image", self.crops_per_image)
        if self.crop is not None and self.crop % self.scale:
            raise ConfigError(f"data.task.crop ({self.crop}) must be a multiple of data.task.scale ({self.scale})")


@dataclass
class DataConfig:
    name: str = "digits"  # dataset: see `ganforge.data.DATASETS` (ring, grid, spiral, digits, mnist, ...)
    root: str | None = None  # folder with the files (the image folder itself for `folder`); None: cache dir
    download: bool = True  # fetch missing files from the published mirrors (checksummed); off: files must exist
    split: str = "train"  # "train" or "test" for datasets that have both
    image_size: list[int] | None = None  # [H, W] (or [S]) to resize to; None: the dataset's own size
    channels: int | None = None  # 1, 3 or 4; None: the dataset's own (folders: inferred)
    resize: str = "resize"  # how a folder's images reach image_size: "resize" (stretch) or "center-crop"
    limit: int | None = None  # use only the first N examples (quick experiments, tests)
    num_points: int = 100_000  # toy 2D sets: how many points to draw once (a fixed, seeded sample)
    seed: int = 0  # seed of datasets built by sampling (stacked-mnist's digit triples) and of labels: clusters
    # The class labels a conditional model trains on: "dataset" (the set's own) or "clusters" (k-means clusters of
    # the images, no labels used: a self-conditioned GAN, Liu et al. 2020; see ganforge.data.clusters).
    labels: str = "dataset"
    clusters: int = 50  # with labels: clusters, how many clusters (the conditional model's number of classes)
    task: ImageTaskConfig = field(default_factory=ImageTaskConfig)  # image-to-image / SR datasets' options

    def validate(self) -> None:
        from ganforge.data import DATASETS

        keyed("data.name", lambda: DATASETS[self.name])  # an unknown name: an error listing the valid ones
        if self.image_size is not None:
            if len(self.image_size) not in (1, 2) or any(s <= 0 for s in self.image_size):
                raise ConfigError(f"data.image_size must be [S] or [H, W] of positive ints, got {self.image_size}")
        if self.channels is not None and self.channels not in (1, 3, 4):
            raise ConfigError(f"data.channels must be 1, 3 or 4, got {self.channels}")
        if self.resize not in ("resize", "center-crop"):
            raise ConfigError(f"data.resize must be 'resize' or 'center-crop', got {self.resize!r}")
        if self.split not in ("train", "test"):
            raise ConfigError(f"data.split must be 'train' or 'test', got {self.split!r}")
        positive("data.limit", self.limit, allow_none=True)
        positive("data.num_points", self.num_points)
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"data.seed must be in [0, 2**32), got {self.seed}")
        if self.labels not in ("dataset", "clusters"):
            raise ConfigError(f"data.labels must be 'dataset' or 'clusters', got {self.labels!r}")
        if self.labels == "clusters" and self.clusters < 2:
            raise ConfigError(f"data.clusters must be >= 2, got {self.clusters}")
        self.task.validate()


@dataclass
class LossConfig:
    name: str = "nonsaturating"  # adversarial loss: see `ganforge.losses.LOSSES`
    real_label: float = 1.0  # D's target for real data; 0.9 is one-sided label smoothing (Salimans 2016)
    fake_label: float = 0.0  # D's target for fakes; 0.1 with real_label 0.9 is two-sided smoothing
    regularizers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> params, e.g. gp: {weight: 10}
    augment: dict[str, dict[str, Any]] = field(default_factory=dict)  # D-input transforms, e.g. diffaugment: {}

    def validate(self) -> None:
        from ganforge.augment import build_augment
        from ganforge.losses import get_loss
        from ganforge.regularizers import build_regularizers

        for name, value in (("real_label", self.real_label), ("fake_label", self.fake_label)):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"loss.{name} must be in [0, 1], got {value}")
        # Building them checks names and parameters now, before any data is loaded.
        keyed("loss.name", lambda: get_loss(self.name, real_label=self.real_label, fake_label=self.fake_label))
        keyed("loss.regularizers", lambda: build_regularizers(self.regularizers))
        keyed("loss.augment", lambda: build_augment(self.augment))


@dataclass
class TrainConfig:
    batch_size: int = 64  # images per D and per G step
    steps: int = 2000  # training steps; one step = n_critic D updates then n_gen G updates
    epochs: float | None = None  # if set, overrides steps: epochs x (dataset size / batch size) D batches
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate (TTUR: set apart from lr_g)
    betas_g: list[float] = field(default_factory=lambda: [0.5, 0.999])  # Adam betas for G (DCGAN: beta1 0.5)
    betas_d: list[float] = field(default_factory=lambda: [0.5, 0.999])  # Adam betas for D
    weight_decay: float = 0.0  # AdamW-style decoupled weight decay for both networks
    n_critic: int = 1  # D updates per step (5 for WGAN), each on a fresh real batch
    n_gen: int = 1  # G updates per step
    lr_schedule: str = "constant"  # "constant", "linear" (decay to 0), "cosine", "step" or "constant-linear"
    lr_decay_start: float = 0.5  # "constant-linear" (CycleGAN): fraction of steps at full rate, then linear to 0
    lr_step_every: int = 1000  # for "step": multiply the LRs by lr_step_gamma every this many steps
    lr_step_gamma: float = 0.5  # for "step": the factor
    ema_kimg: float = 0.0  # EMA of G weights, half-life in thousands of images; 0 disables the EMA
    ema_rampup: float = 0.0  # cap the half-life at this fraction of the images seen so far (StyleGAN2-ADA: 0.05), so
    #                          early samples do not average in the untrained start; 0: the fixed half-life from step 0
    seed: int = 0  # one seed controls weights, data order, noise and sampling
    device: str = "auto"  # "auto" (cuda, then mps, then cpu), or a torch device string
    amp: str = "none"  # mixed precision: "none", "bf16" (CUDA or CPU) or "fp16" (CUDA only, with a GradScaler)
    compile: bool = False  # torch.compile G and D (worth it for long runs; slow to start)
    compile_mode: str = "default"  # torch.compile mode: "default", "reduce-overhead" (CUDA graphs), "max-autotune"
    channels_last: bool = False  # NHWC memory layout for conv nets (faster on some GPUs and CPUs)
    cpu_threads: int = 0  # torch intra-op threads on CPU; 0: torch's default. 1 helps when other jobs share the cores
    # The classes a conditional G's fakes are drawn with in training: "uniform", or "data": in the training set's
    # class proportions. With imbalanced classes (k-means clusters: sizes 474-2,463 on Fashion-MNIST) uniform fakes
    # give D a class prior to exploit, log(K p_y), that G cannot match by any image.
    fake_classes: str = "uniform"
    g_reuse_fakes: bool = True  # with n_critic 1, G's step reuses D's fakes (one G forward per step, as Keras)
    sync_batchnorm: bool = False  # under torchrun/DDP: batch-norm statistics over the global batch, not per rank
    log_every: int = 50  # steps per tick: stats are gathered, logged and checked for health once per tick
    sample_every: int = 500  # steps between fixed-noise sample grids (also written at the end)
    checkpoint_every: int = 1000  # steps between checkpoints (also written at the end)
    keep_checkpoints: int = 3  # how many step checkpoints to keep besides `last` and `best`
    num_samples: int = 64  # images in each sample grid (fixed noise, so grids are comparable)
    logger: str = "jsonl"  # besides metrics.jsonl (always written): "tensorboard" (RUN_DIR/tb), "jsonl" or "none"
    tensorboard: bool = False  # older spelling of logger=tensorboard, kept so configs written before it still load
    progress: bool = True  # show a progress bar with losses and images/s

    def validate(self) -> None:
        for name in ("batch_size", "steps", "n_critic", "n_gen", "log_every", "sample_every",
                     "checkpoint_every", "num_samples", "lr_step_every"):
            positive(f"train.{name}", getattr(self, name))
        if not 0 <= self.seed < 2**32:  # torch seeds are 64-bit; the data order multiplies the seed by ~1e6
            raise ConfigError(f"train.seed must be in [0, 2**32), got {self.seed}")
        if self.keep_checkpoints < 0:
            raise ConfigError(f"train.keep_checkpoints must be >= 0, got {self.keep_checkpoints}")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"train.epochs must be > 0, got {self.epochs}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"train.{name} must be > 0, got {getattr(self, name)}")
        for name in ("betas_g", "betas_d"):
            betas = getattr(self, name)
            if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
                raise ConfigError(f"train.{name} must be two numbers in [0, 1), got {betas}")
        if self.lr_schedule not in ("constant", "linear", "cosine", "step", "constant-linear"):
            raise ConfigError(f"train.lr_schedule must be constant, linear, cosine, step or constant-linear, "
                              f"got {self.lr_schedule!r}")
        if not 0.0 <= self.lr_decay_start < 1.0:
            raise ConfigError(f"train.lr_decay_start must be in [0, 1), got {self.lr_decay_start}")
        if self.fake_classes not in ("uniform", "data"):
            raise ConfigError(f"train.fake_classes must be uniform or data, got {self.fake_classes!r}")
        if self.amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"train.amp must be none, bf16 or fp16, got {self.amp!r}")
        if self.compile_mode not in ("default", "reduce-overhead", "max-autotune"):
            raise ConfigError(f"train.compile_mode must be default, reduce-overhead or max-autotune, "
                              f"got {self.compile_mode!r}")
        if self.cpu_threads < 0:
            raise ConfigError(f"train.cpu_threads must be >= 0 (0: torch's default), got {self.cpu_threads}")
        if self.ema_kimg < 0 or self.weight_decay < 0 or self.ema_rampup < 0:
            raise ConfigError("train.ema_kimg, train.ema_rampup and train.weight_decay must be >= 0")
        if self.logger not in LOGGERS:
            raise ConfigError(f"train.logger must be one of {', '.join(LOGGERS)}, got {self.logger!r}")

    @property
    def logger_name(self) -> str:
        """The logger to use: `logger`, or tensorboard where an older config set `tensorboard: true`."""
        return "tensorboard" if self.tensorboard and self.logger == "jsonl" else self.logger


@dataclass
class EvalConfig:
    every: int = 0  # steps between evaluations during training; 0 disables periodic evaluation
    metrics: list[str] = field(default_factory=list)  # metric names, e.g. [fid, kid, pr] or [modes] for toy data
    num: int = 2000  # generated samples per evaluation (from the EMA of G when the run keeps one)
    num_real: int | None = 10_000  # real training samples compared with (a seeded subset); None: all of them
    features: str = "domain"  # image metrics' features: "domain" (fast CPU classifier), "inception" or "inception-bf16"
    resize: str = "clean"  # Inception resize protocol: "clean" (antialiased bicubic) or "legacy" (bilinear)
    best_metric: str | None = None  # a result key (fid, kid, modes, high_quality, ...): kept as checkpoints/best.pt
    patience: int = 0  # stop after this many evaluations without improving best_metric; 0: never stop early

    def validate(self) -> None:
        from ganforge.metrics.base import FEATURES, NO_DIRECTION, RESULT_KEYS, expand_metric_names

        if self.every < 0 or self.patience < 0:
            raise ConfigError("eval.every and eval.patience must be >= 0")
        positive("eval.num", self.num)
        positive("eval.num_real", self.num_real, allow_none=True)
        if self.features not in FEATURES:
            raise ConfigError(f"eval.features must be one of {', '.join(FEATURES)}, got {self.features!r}")
        if self.resize not in ("clean", "legacy"):
            raise ConfigError(f"eval.resize must be 'clean' or 'legacy', got {self.resize!r}")
        metrics = keyed("eval.metrics", lambda: expand_metric_names(self.metrics))
        if self.every and not metrics:
            raise ConfigError("eval.every is set but eval.metrics is empty: name the metrics to compute")
        keys = [key for name in metrics for key in RESULT_KEYS[name]]
        if self.best_metric is not None and self.best_metric not in keys:
            raise ConfigError(f"eval.best_metric {self.best_metric!r} is not a result of eval.metrics "
                              f"{self.metrics}; valid: {', '.join(keys) or '(none: list metrics first)'}")
        if self.best_metric in NO_DIRECTION:
            raise ConfigError(f"eval.best_metric {self.best_metric!r} has no better direction (the data's own value is "
                              "best); pick another key")
        if self.patience and self.best_metric is None:
            raise ConfigError("eval.patience needs eval.best_metric: the key whose lack of progress stops the run")


@dataclass
class SampleConfig:
    """How `ganforge generate` and `ganforge evaluate` draw a trained run's samples unless told otherwise (their
    --refine-steps / --refine-step-size flags win), and what periodic evaluation during training (eval.every)
    scores, so that best.pt is chosen on those samples."""

    refine_steps: int = 0  # > 0: each sample's noise moved this many steps uphill on the run's D (ganforge.refine)
    refine_step_size: float = 0.03  # the latent step size of those steps

    def validate(self) -> None:
        if self.refine_steps < 0:
            raise ConfigError(f"sample.refine_steps must be >= 0, got {self.refine_steps}")
        positive("sample.refine_step_size", self.refine_step_size)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)  # what to train on
    model: Any = None  # the family's own config dataclass (see ganforge.models); built from `model.family`
    loss: LossConfig = field(default_factory=LossConfig)  # adversarial loss, regularizers, D augmentation
    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation, logging, checkpoints
    eval: EvalConfig = field(default_factory=EvalConfig)  # periodic evaluation during training
    sample: SampleConfig = field(default_factory=SampleConfig)  # how generate / evaluate draw the trained run's samples
    health: HealthConfig = field(default_factory=HealthConfig)  # training-health monitor thresholds/actions

    def validate(self) -> None:
        from ganforge.metrics.base import dataset_class_metrics

        for section in (self.data, self.model, self.loss, self.train, self.eval, self.sample, self.health):
            section.validate()
        if self.sample.refine_steps and getattr(self.model, "d_pack", 1) > 1:
            raise ConfigError("sample.refine_steps needs one D score per sample, and model.d_pack > 1 scores groups")
        by_class = dataset_class_metrics(self.eval.metrics)
        if self.data.labels == "clusters" and by_class:
            raise ConfigError(f"eval.metrics {', '.join(by_class)} compare samples with the dataset's classes, but "
                              "data.labels: clusters trains on k-means clusters; drop them or use data.labels: dataset")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --------------------------------------------------------------------------------------------- building


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from plain data (a YAML document), rejecting unknown keys and bad types."""
    from ganforge.models import FAMILIES  # families register their config classes on import

    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    raw = dict(raw)
    model_raw = raw.pop("model", None)
    model_raw = {} if model_raw is None else model_raw  # `model:` left empty: the defaults
    if not isinstance(model_raw, dict):
        raise ConfigError(f"config section 'model' must be a mapping, got {type(model_raw).__name__}")
    family_name = model_raw.get("family", "dcgan")
    if not isinstance(family_name, str):
        raise ConfigError(f"config key 'model.family' must be a string, got {family_name!r}")
    family = keyed("model.family", lambda: FAMILIES[family_name])
    cfg = build_section(Config, raw, "")
    cfg.model = build_section(family.config_class, model_raw, "model")
    cfg.validate()
    return cfg


def build_section(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"config section {where or 'root'!r} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields, key=str)  # YAML keys may be ints, None, ...: sort them as text
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown config key {key!r}; valid keys here: {', '.join(sorted(fields))}")
    values = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = build_section(hint, value if value is not None else {}, key)
        elif name == "model" and cls is Config:
            continue  # built separately from the family's own config class
        else:
            values[name] = coerce(value, hint, key)
    return cls(**values)


# ---------------------------------------------------------------------------------------- presets, overrides


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("ganforge.presets").iterdir() if p.name.endswith(".yaml"))


def _preset_text(name: str) -> str:
    """The preset file's text, as shipped in the package."""
    return resources.files("ganforge.presets").joinpath(f"{name}.yaml").read_text()


def load_preset(name: str) -> dict[str, Any]:
    """A preset's sections, with `extends: <preset>` resolved: the named preset's sections deep-merged under this
    file's (so a variant such as `mnist-fast` states only what differs from `mnist`)."""
    return _resolve_preset(name, ())


def _resolve_preset(name: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """`load_preset`, with the presets already on this `extends` chain (`seen`) to catch a cycle."""
    names = preset_names()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(names)}")
    raw = parse_yaml(_preset_text(name), f"preset {name}")
    parent = pop_extends(raw, f"preset {name}")
    if parent is None:
        return raw
    chain = (*seen, name)
    if parent in chain:
        raise ConfigError(f"preset {name}: extends forms a cycle: {' -> '.join((*chain, parent))}")
    return merge(_resolve_preset(parent, chain), raw)


def pop_extends(raw: dict[str, Any], where: str) -> str | None:
    """Pop a preset or config file's `extends:` and check that it names a preset; None when it has none (or empty)."""
    parent = raw.pop("extends", None)
    if parent is None:
        return None
    names = preset_names()
    if not isinstance(parent, str) or parent not in names:
        raise ConfigError(f"{where}: extends must name a preset, got {parent!r}; valid: {', '.join(names)}")
    return parent


def preset_description(name: str) -> str:
    """The preset file's first comment line: what `ganforge presets` prints beside the name."""
    text = _preset_text(name)
    first = text.splitlines()[0] if text else ""
    return first.lstrip("# ").strip() if first.startswith("#") else ""


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = str(getattr(err, "problem", None) or err).splitlines()[0]  # a ReaderError has no .problem
        raise ConfigError(f"{source} is not valid YAML{where}: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections, got {type(raw).__name__}")
    return raw


def load_config_file(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"config {path} is not UTF-8 text (byte {err.start}: {err.reason})") from None
    return parse_yaml(text, f"config {path}")


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one `section.key=value` override in place; the value is parsed as YAML (2e-4, true, [1, 2])."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like section.key=value")
    dotted, text = assignment.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"override key {dotted!r} must be section.key (e.g. train.lr_g)")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `update` into a copy of `base` (sections merge key by key; other values replace)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
