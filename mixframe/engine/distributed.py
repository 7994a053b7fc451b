"""Several processes under ``torchrun``: joining the group, sharing values from rank 0, averaging gradients.

Each process trains on its own shard of every epoch; gradients are averaged with one all-reduce
before every optimizer step (the synchronisation DistributedDataParallel performs), so all ranks
keep identical weights. DDP's wrapper itself is not used: a GAN step calls the critic in both
losses and re-encodes decoded mixes outside one wrapped forward, which DDP's one-forward,
one-backward bookkeeping does not allow. Rank 0 alone writes files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mixframe.errors import MixframeError


def pick_device(choice: str, local_rank: int | None = None) -> torch.device:
    """The device ``train.device`` asks for: cuda (this process's GPU under torchrun) when present, else the CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise MixframeError("train.device is 'cuda' but no CUDA device is available; use device: auto or cpu")
    if choice in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if local_rank is None else local_rank)
    return torch.device("cpu")


def setup(device_choice: str) -> tuple[int, int]:
    """(rank, world size); under torchrun, joins the process group (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        device = pick_device(device_choice)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def share(value: Any, world: int) -> Any:
    """Rank 0's ``value`` on every rank (a run folder's path, say)."""
    if world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_parameters(module: nn.Module, world: int) -> None:
    """Every rank starts from rank 0's weights."""
    if world > 1:
        for p in module.state_dict().values():
            dist.broadcast(p, 0)


def average_gradients(params: Iterable[nn.Parameter], world: int) -> None:
    """One all-reduce of all gradients, divided by the world size."""
    if world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def ranks_identical(module: nn.Module, world: int) -> bool:
    """True when every rank holds the same weights (two checksums per rank, gathered)."""
    if world == 1:
        return True
    flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in module.state_dict().values()])
    sums: list[Any] = [None] * world
    dist.all_gather_object(sums, (float(flat.sum()), float((flat * torch.arange(len(flat), dtype=torch.float64)).sum())))
    return all(s == sums[0] for s in sums)
