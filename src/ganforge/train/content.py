"""Content-loss feature networks from above the models layer, for SRGAN (see ganforge.models.srgan).

The domain classifiers (ganforge.metrics.domain) depend on the metrics package, which imports the models; the
srgan family cannot import them without a cycle, so this module registers them in its CONTENT_PROVIDERS. The
trainer imports this module, so every training run has them.
"""

from __future__ import annotations

from torch import nn

from ganforge.metrics.domain import DOMAINS, load_domain_extractor
from ganforge.models.srgan import CONTENT_PROVIDERS, DomainFeatures, _domain_sr_dataset


def domain_content(cfg) -> tuple[str, nn.Module] | None:
    """The data's domain classifier (trained once and cached when missing), if the data are MNIST or Fashion."""
    dataset = _domain_sr_dataset(cfg)
    if dataset not in DOMAINS:
        return None
    extractor = load_domain_extractor(dataset, data_root=cfg.data.root, progress=cfg.train.progress)
    return f"domain-{dataset}", DomainFeatures(extractor.classifier)


CONTENT_PROVIDERS.setdefault("domain", domain_content)
