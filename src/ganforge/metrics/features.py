"""Batched feature extraction, apart from the metric math.

An extractor is an nn.Module mapping one batch of samples (uint8 images (B, C, H, W) or float points (B, D))
to a dict with "features" (B, D) and, when it can classify, "logits" (B, K). Its `name` identifies the network
and its weights in reference-statistics cache keys.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from tqdm import tqdm

PROGRESS_MIN_BATCHES = 4  # show a progress bar only for runs longer than this many batches


class PointsExtractor(nn.Module):
    """Identity features for 2D toy data: FID, KID, precision, ... computed on the points themselves."""

    name = "points"
    has_logits = False
    default_batch_size = 65536

    def forward(self, points: Tensor) -> dict[str, Tensor]:
        return {"features": points.float()}


def extract(
    extractor: nn.Module,
    data: Tensor,  # uint8 images (N, C, H, W) or float points (N, D)
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "features",
) -> dict[str, Tensor]:
    """Run extractor over data in batches under inference_mode; return each output concatenated on the CPU."""
    if len(data) == 0:
        raise ValueError("cannot extract features of an empty set")
    extractor = extractor.to(device).eval()
    batches = data.split(batch_size)
    outputs: dict[str, list[Tensor]] = {}
    show = progress and len(batches) > PROGRESS_MIN_BATCHES
    with (
        torch.inference_mode(),
        tqdm(total=len(data), desc=desc, unit="img", disable=not show, leave=False) as bar,
    ):
        for batch in batches:
            for key, value in extractor(batch.to(device)).items():
                outputs.setdefault(key, []).append(value.float().cpu())
            bar.update(len(batch))
    return {key: torch.cat(values) for key, values in outputs.items()}
