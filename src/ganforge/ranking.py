"""Best-of-n sampling: draw n times the samples asked for and keep those the run's discriminator scores most real.

A trained D still knows things about G's failures that G has not learnt away; Azadi et al. 2019 ("Discriminator
Rejection Sampling") use its logit to accept or reject samples. This is the simplest form of that idea: rank a pool
of `best_of * num` samples by D's logit and keep the top `num` (per class for a conditional model, so the
requested classes keep their counts). On MNIST, with and without labels, keeping the best quarter cut the domain
FID by a quarter or more and beat DRS's acceptance rule at the same pool size; on Fashion-MNIST it did not help
(benchmarks/RESULTS.md, "2h"): measure it on your data (`ganforge evaluate RUN --best-of N`).

It needs the run's D, so it works from a run directory or checkpoint (`saved.load_critic`), not from a
`save_pretrained` folder, which holds only the sampler.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganforge.errors import GanforgeError
from ganforge.sampling import default_classes, generate, to_output

__all__ = ["generate_best_of", "scored_pool"]


@torch.no_grad()
def generate_best_of(sampler, critic: nn.Module, num: int, *, best_of: int, seed: int = 0,
                     labels: Tensor | None = None, batch_size: int = 256,
                     device: str | torch.device | None = None) -> Tensor:
    """`num` uint8 images, the best `num` of `best_of * num` by `critic`'s logit; `best_of=1` is plain generate.

    Reproducible from `seed` (its own RNG). Conditional samplers get `labels` (N,) or generate()'s default_classes;
    each requested class keeps its count, filled with that class's best candidates. The kept samples come back in
    the order they were drawn, not sorted by score.
    """
    if best_of < 1:
        raise GanforgeError(f"best-of must be >= 1, got {best_of}")
    if not sampler.spec.is_image:
        raise GanforgeError("best-of sampling ranks images; this model generates points")
    if sampler.codes:
        raise GanforgeError("best-of sampling takes noise and class only; this model has latent codes (InfoGAN)")
    if getattr(critic.config, "d_pack", 1) > 1:
        raise GanforgeError("best-of sampling needs one D score per sample; this D scores packed groups "
                            "(model.d_pack > 1)")
    if best_of == 1:
        return generate(sampler, num, seed=seed, labels=labels, batch_size=batch_size, device=device)
    labels = default_classes(sampler, num, seed=seed) if labels is None else labels
    pool_labels = None if labels is None else labels.repeat(best_of)  # every requested label best_of times
    pool, score = scored_pool(sampler, critic, num * best_of, seed=seed, labels=pool_labels, batch_size=batch_size,
                              device=device)
    if labels is None:
        return pool[_best(score, torch.arange(len(pool)), num)]
    out = torch.empty((num, *pool.shape[1:]), dtype=pool.dtype)
    for k in labels.unique():
        wanted = (labels == k).nonzero().squeeze(1)
        out[wanted] = pool[_best(score, (pool_labels == k).nonzero().squeeze(1), len(wanted))]
    return out


@torch.no_grad()
def scored_pool(sampler, critic: nn.Module, num: int, *, seed: int = 0, labels: Tensor | None = None,
                batch_size: int = 256, device: str | torch.device | None = None) -> tuple[Tensor, Tensor]:
    """`num` samples (uint8 images, in drawing order, reproducible from `seed`) and `critic`'s logit for each."""
    device = device or sampler.device
    rng = torch.Generator().manual_seed(seed)
    images, scores = [], []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        z = sampler.sample_latent(n, generator=rng).to(device)
        y = None if labels is None else labels[start : start + n].to(device)
        x = sampler(z, y)
        logit = critic(x, y)
        if not isinstance(logit, Tensor) or logit.numel() != n:
            raise GanforgeError("best-of sampling needs one D logit per sample; this family's D gives "
                                f"{type(logit).__name__} {tuple(getattr(logit, 'shape', ()))} for {n} samples")
        scores.append(logit.float().reshape(n).cpu())
        images.append(to_output(x.float().cpu(), True))
    return torch.cat(images), torch.cat(scores)


def _best(score: Tensor, candidates: Tensor, k: int) -> Tensor:
    """The k of `candidates` (pool indices) with the highest scores, in pool order."""
    return candidates[score[candidates].topk(k).indices].sort().values
