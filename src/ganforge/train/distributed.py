"""Data-parallel training through PyTorch's own engine: torchrun + DistributedDataParallel.

`torchrun --nproc-per-node N -m ganforge train ...` starts N processes with RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT in their environment; `session()` turns that into a process group (NCCL on CUDA,
gloo on CPU). Outside torchrun everything here is a no-op and a run is a plain single process.

How a DDP run stays equal to the single-process run with the same global batch (up to float reduction order):
every rank is seeded identically, draws the same *global* batch indices and the same *global* noise, and keeps
its own slice (`shard`); DDP averages the gradients, so every rank applies the same update. The RNG streams stay
identical on every rank and identical to a single process's, and checkpoints hold the unwrapped modules, so a
run written by any world size resumes on any other. Rank 0 alone writes logs, samples and checkpoints.

Exactness has limits, said here once: batch norm computes its statistics per rank unless `train.sync_batchnorm`
is on, and per-sample random draws inside the step (DiffAugment, dropout, instance noise) are drawn at the
local batch size, so such runs are equal in distribution, not bit for bit.
"""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ganforge.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job; a single process is rank 0 of 1."""

    rank: int = 0  # global rank (0 .. world_size - 1)
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this node: picks the GPU (cuda:LOCAL_RANK)
    backend: str | None = None  # "nccl" or "gloo"; None when not distributed

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def info() -> DistInfo:
    """This process's DistInfo from the live process group (rank 0 of 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(),
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")), backend=dist.get_backend())


def is_main() -> bool:
    return info().is_main


def choose_backend(device: str) -> str:
    """NCCL when the run trains on CUDA, gloo otherwise (CPU)."""
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if wants_cuda and dist.is_nccl_available() else "gloo"


@contextmanager
def session(device: str, *, timeout_s: float = 1800.0) -> Iterator[DistInfo]:
    """Join the torchrun job described by the environment for the duration of the block.

    Nested use (the CLI opens a session, `train()` opens another) joins once and leaves once. Outside torchrun
    (WORLD_SIZE unset or 1) it yields a single-process DistInfo and does nothing.
    """
    if env_world_size() <= 1 or dist.is_initialized():
        yield info()
        return
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    backend = choose_backend(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)  # before init: NCCL binds each process to its own GPU
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    try:
        yield info()
    finally:
        # What still holds the group (a finished Trainer's DDP reducers sit in reference cycles) is freed now, while
        # the interpreter is whole: left to the collector at exit, gloo's threads can abort the process (SIGABRT,
        # "terminate called without an active exception", once in a CI run of the two-process resume test).
        gc.collect()
        dist.destroy_process_group()


def device_for(name: str, dist_info: DistInfo) -> str:
    """Under DDP on CUDA each process trains on its own GPU (cuda:LOCAL_RANK); other devices are unchanged."""
    if dist_info.distributed and dist_info.backend == "nccl" and name in ("auto", "cuda"):
        return f"cuda:{dist_info.local_rank}"
    return name


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(obj: T) -> T:
    """Rank 0's `obj` on every rank (e.g. a run directory named after the clock); identity when not distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average a tick's stats over ranks (one all-reduce); every rank then sees the same numbers and so takes
    the same health decisions. Keys must be the same on every rank (they are: every rank runs the same code)."""
    if not values or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    names = sorted(values)
    device = _comm_device()
    t = torch.tensor([values[n] for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(names, (t / dist.get_world_size()).tolist()))


def _comm_device() -> torch.device:
    """Where collective tensors must live: this process's GPU under NCCL, the CPU under gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def shard(x: T, dist_info: DistInfo) -> T:
    """This rank's rows of a global batch (B, ...) -> (B / world_size, ...); None passes through."""
    if x is None or not dist_info.distributed:
        return x
    n = x.shape[0] // dist_info.world_size
    return x[dist_info.rank * n : (dist_info.rank + 1) * n]


def local_batch_size(global_batch: int, dist_info: DistInfo) -> int:
    if global_batch % dist_info.world_size:
        raise ConfigError(f"train.batch_size {global_batch} (the global batch) must be divisible by the number "
                          f"of processes {dist_info.world_size}")
    return global_batch // dist_info.world_size


# ------------------------------------------------------------------------------------ wrapping the networks


class GlobalBatchNorm(nn.BatchNorm2d):
    """Batch norm with statistics over the global batch, on any device and backend (gloo included).

    torch's SyncBatchNorm only runs on GPUs; this one all-reduces (sum, sum of squares, count) with the
    differentiable `torch.distributed.nn` all-reduce, so gradients flow through the global statistics exactly
    as they do through SyncBatchNorm's. It works for 2D (B, C) and 4D (B, C, H, W) inputs alike. Its parameters
    and buffers are BatchNorm's, so checkpoints load into a plain BatchNorm.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected (B, C, ...) input, got {input.dim()}D input")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0] + list(range(2, x.dim()))  # every axis but channels
        xf = x.float()
        count = torch.full((1,), xf.numel() // xf.shape[1], dtype=xf.dtype, device=xf.device)
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), count])  # (2C + 1,)
        total = all_reduce(local)  # sum over ranks; its backward all-reduces the gradients
        c = x.shape[1]
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean * mean).clamp_min(0.0)  # biased: what normalizes the batch
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                unbiased = var * n / (n - 1).clamp_min(1.0)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm over the global batch: torch's SyncBatchNorm on CUDA, GlobalBatchNorm elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_global(module)


def _convert_global(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, eps=module.eps, momentum=module.momentum,
                              affine=module.affine, track_running_stats=module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
        out.to(next(iter(module.state_dict().values())).device)
    for name, child in module.named_children():
        out.add_module(name, _convert_global(child))
    return out


def wrap_ddp(module: nn.Module, device: torch.device, dist_info: DistInfo) -> nn.Module:
    """DistributedDataParallel around `module` (itself when not distributed).

    No buffer broadcast before each forward: D runs several forwards per step (real, fake, G's step), and a
    broadcast before each would overwrite batch-norm state mid-step and cost a collective per call. Every rank
    starts from the same seed and so the same buffers; with sync batch norm they stay equal, without it each
    rank's running statistics follow its own slice (rank 0's are the ones checkpointed).
    """
    if not dist_info.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else dist_info.local_rank] if device.type == "cuda" else None
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:  # newer torch
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP and/or torch.compile wrapper (what checkpoints store)."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(module, DistributedDataParallel):
            module = module.module
        elif isinstance(getattr(module, "_orig_mod", None), nn.Module):  # torch.compile's OptimizedModule
            module = module._orig_mod
        else:
            return module


def state_equal_across_ranks(module: nn.Module) -> bool:
    """Whether every rank holds the same weights (a cheap checksum per rank; a debugging aid and a test)."""
    if not (dist.is_available() and dist.is_initialized()):
        return True
    checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1)
    device = _comm_device()
    gathered = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum.to(device))
    return all(torch.equal(g, gathered[0]) for g in gathered)


def describe(dist_info: DistInfo) -> dict[str, Any]:
    return {"rank": dist_info.rank, "world_size": dist_info.world_size, "backend": dist_info.backend}
