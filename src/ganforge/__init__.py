"""ganforge: train, diagnose, evaluate and use Generative Adversarial Networks."""

from ganforge.api import evaluate, export, generate, interpolate, resolve_config, train
from ganforge.config import Config, config_from_dict, load_preset
from ganforge.reporting import report
from ganforge.saved import evaluate_checkpoint, load_generator, load_sampler
from ganforge.train.checkpoint import load_checkpoint
from ganforge.train.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "Config",
    "Trainer",
    "__version__",
    "config_from_dict",
    "generate",
    "load_checkpoint",
    "evaluate",
    "evaluate_checkpoint",
    "export",
    "interpolate",
    "load_generator",
    "load_sampler",
    "load_preset",
    "report",
    "resolve_config",
    "train",
]
