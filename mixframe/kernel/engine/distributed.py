"""Several processes under ``torchrun``: joining the group, sharing values from rank 0, data parallelism.

**Batch size is per process.** ``train.batch_size`` examples go through each process per step, so
with N processes an optimizer step averages the gradients of N x batch_size examples (printed at
start). Each process draws its batches from its own shard of every epoch (PyTorch's
``DistributedSampler``, seeded by the recipe's seed and the epoch); mixing pairs are drawn within
each process's share of the batch.

**Gradient averaging overlaps the backward pass**, through PyTorch's DistributedDataParallel. A
step of this engine is not one forward and one backward of one module (the critic judges real,
reconstructed and mixed batches and takes its own optimizer step; the autoencoder's loss calls the
critic again with its weights frozen, and a consistency term re-encodes decoded mixes), so one DDP
around the whole model does not fit. Instead each network of the step is its own DDP unit: the
encoder, the decoder, a mixer with weights, and every sub-module of a regularizer that holds
weights (a critic's body and head). Measured (torch 2.14, 2 gloo processes): per-unit DDP gives
the same gradients as averaging them by hand, bit for bit, with a module called several times
before one backward. Each unit's buckets are all-reduced as soon as their gradients are ready,
while the backward pass goes on through the other units. The units stay in the model as they were
(state_dict keys and checkpoints do not change): DDP wraps a small stand-in that calls the unit's
own forward, and the unit's ``forward`` is routed through it during :meth:`DataParallel.step` only
(pictures and probes that callbacks draw on one rank call the plain module). Critic units are not
synchronised while the autoencoder's loss calls them with frozen weights (``no_sync``).
The units are ``static_graph``: a unit's weights that take part in its first synchronised step take
part in every one (true of the built-in networks). Measured on a unit with a weight it never uses,
a module called twice before one backward, critic-only steps under ``no_grad`` and a frozen critic:
gradients equal to averaging by hand. (Without ``static_graph`` or ``find_unused_parameters``, an
unused weight holds back its whole bucket and the ranks drift apart; ``find_unused_parameters``
works too but walks the autograd graph at every forward and warns on every rank.) A component
whose set of used weights changes from step to step is not supported under torchrun.
Buffers are not broadcast: the built-in networks' buffers (spectral norm's power iteration) are
computed identically on every rank; the weights are checked to be identical at the end.
Parameters held directly by a regularizer (not by a sub-module) are averaged after the backward pass.
Rank 0 alone writes files.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:
    from mixframe.kernel.model import Model

from mixframe.errors import MixframeError


def pick_device(choice: str, local_rank: int | None = None) -> torch.device:
    """The device ``train.device`` asks for: cuda (this process's GPU under torchrun) when present, else the CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise MixframeError("train.device is 'cuda' but no CUDA device is available; use device: auto or cpu")
    if choice in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if local_rank is None else local_rank)
    return torch.device("cpu")


TIMEOUT_VARIABLE = "MIXFRAME_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
_TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def world_size() -> int:
    """The number of processes the environment announces: 1 outside torchrun. A stray or malformed
    ``WORLD_SIZE`` is a message, not a traceback or a silent wait for ranks that never come."""
    raw = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    try:
        world = int(raw)
    except ValueError:
        raise MixframeError(f"WORLD_SIZE is {raw!r}, not a number of processes; unset it (one process) "
                            "or start the run with torchrun, which sets it") from None
    if world < 1:
        raise MixframeError(f"WORLD_SIZE is {world}; it counts processes, so it must be 1 or more (or unset it)")
    missing = [name for name in _TORCHRUN_VARIABLES if world > 1 and not os.environ.get(name)]
    if missing:
        raise MixframeError(f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not: this process was not started by torchrun "
                            f"and would wait for ranks that never come. Unset WORLD_SIZE, or launch with "
                            f"torchrun --nproc_per_node {world} ...")
    return world


def timeout_s() -> float:
    """How long a rank waits for the others at a collective (``MIXFRAME_DIST_TIMEOUT`` seconds, default 600)."""
    raw = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_TIMEOUT_S
    except ValueError:
        raise MixframeError(f"{TIMEOUT_VARIABLE} is {raw!r}; give it a number of seconds (default {DEFAULT_TIMEOUT_S:g})") from None
    if not value > 0:
        raise MixframeError(f"{TIMEOUT_VARIABLE} is {raw!r}; it must be a positive number of seconds")
    return value


def join(device_choice: str) -> tuple[int, int]:
    """(rank, world size); under torchrun, joins the process group once per process and keeps it until exit.

    Leaving the group after each run and joining again re-creates the default group through
    torchrun's store, where a rank could read the previous group's keys and wait for ever (seen as a
    hang of the second ``train()`` in one process). So the group outlives a run; mixframe leaves a
    group it joined itself at interpreter exit (a group left to the interpreter's teardown can abort a
    finished process: "terminate called without an active exception"). A group the caller joined is
    the caller's to leave. Collectives time out after :func:`timeout_s`.
    """
    world = world_size()
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        device = pick_device(device_choice)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        with waiting_for_ranks("joining the process group", rank=int(os.environ.get("RANK", "0"))):
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(seconds=timeout_s()))
        atexit.register(_leave)
    if dist.get_world_size() != world:
        raise MixframeError(f"WORLD_SIZE={world} but the process group already joined has {dist.get_world_size()} processes")
    return dist.get_rank(), world


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_failure(err: BaseException, what: str, *, rank: int, step: int | None = None) -> MixframeError | None:
    """The message for a collective that timed out or whose peer went away, naming this rank and the step
    (None for any other error)."""
    text = str(err)
    lost = ("Timed out", "timed out", "Connection closed", "Connection reset", "Broken pipe")
    if not isinstance(err, dist.DistError) and not (isinstance(err, RuntimeError) and any(k in text for k in lost)):
        return None
    at = f" at step {step}" if step is not None else ""
    first = text.strip().splitlines()[0][:300] if text.strip() else type(err).__name__
    return MixframeError(f"rank {rank} stopped waiting for the other processes while {what}{at}: {first}. Another rank "
                         f"probably failed or stopped (see its output above); collectives wait {timeout_s():g} s "
                         f"({TIMEOUT_VARIABLE} changes it)")


@contextlib.contextmanager
def waiting_for_ranks(what: str, *, rank: int, step: int | None = None) -> Iterator[None]:
    """A block of collectives whose timeout or lost peer becomes :func:`rank_failure`'s message."""
    try:
        yield
    except Exception as err:
        message = rank_failure(err, what, rank=rank, step=step)
        if message is None:
            raise
        raise message from None


def describe(world: int, batch_size: int, device: torch.device) -> str:
    """The line printed at start under torchrun: processes, backend, the batch per process and per optimizer step."""
    backend = dist.get_backend() if dist.is_initialized() else ("nccl" if device.type == "cuda" else "gloo")
    nodes = os.environ.get("GROUP_WORLD_SIZE") or os.environ.get("NNODES")
    where = f" on {nodes} nodes" if nodes and nodes != "1" else ""
    return (f"data parallel: {world} processes{where} ({backend}, {device.type}); train.batch_size {batch_size} per process, "
            f"{world * batch_size} per optimizer step in all (gradients averaged over the processes)")


def share(value: Any, world: int) -> Any:
    """Rank 0's ``value`` on every rank (a run folder's path, say)."""
    if world == 1:
        return value
    box = [value]
    with waiting_for_ranks("receiving rank 0's run folder", rank=dist.get_rank()):
        dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_parameters(module: nn.Module, world: int) -> None:
    """Every rank starts from rank 0's weights (and buffers)."""
    if world > 1:
        with waiting_for_ranks("receiving rank 0's weights", rank=dist.get_rank()):
            for p in module.state_dict().values():
                dist.broadcast(p, 0)


def average_gradients(params: Iterable[nn.Parameter], world: int) -> None:
    """One all-reduce of the given gradients, divided by the world size (for parameters outside any DDP unit)."""
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


# -- units: the networks of a step, each compiled and/or wrapped by DDP ----------------------------------
class _Stand(nn.Module):
    """What DDP wraps for a unit: holds the unit (so DDP sees its parameters) and calls its own forward,
    so that the unit itself stays where it is in the model."""

    def __init__(self, unit: nn.Module, forward: Any) -> None:
        super().__init__()
        self.unit = unit
        self.call = forward

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)


def _has_parametrizations(module: nn.Module) -> bool:
    from torch.nn.utils import parametrize

    return any(parametrize.is_parametrized(m) for m in module.modules())


def step_units(model: Model, critic_params: Iterable[nn.Parameter]) -> list[tuple[str, nn.Module, bool]]:
    """The networks of a step, as ``(name, module, is_critic)``: encoder, decoder, the mixer when it has weights,
    and each sub-module of a regularizer that holds weights (critic bodies and heads are critic units)."""
    critic = {id(p) for p in critic_params}
    units: list[tuple[str, nn.Module, bool]] = [("encoder", model.encoder, False), ("decoder", model.decoder, False)]
    if model.mixer is not None and any(p.requires_grad for p in model.mixer.parameters()):
        units.append(("mixer", model.mixer, False))
    for i, (name, reg) in enumerate(zip(model.regularizer_names, model.regularizers)):
        for child_name, child in reg.named_children():
            params = [p for p in child.parameters() if p.requires_grad]
            if params:
                units.append((f"{i}_{name}.{child_name}", child, all(id(p) in critic for p in params)))
    return units


class DataParallel:
    """The networks of a training step, compiled (``train.compile``) and, under torchrun, each a DDP unit.

    ``step()`` is a context for one training step: inside it the units' forwards go through their
    compiled and/or DDP-wrapped versions; outside they are the plain modules. ``critics_frozen()``
    turns off gradient synchronisation of the critic units while the autoencoder's loss calls them.
    ``leftover`` holds the trainable parameters no unit covers; ``finish(params)`` averages those among
    ``params`` after a backward pass. ``close()`` gives every unit its own forward back.
    """

    def __init__(self, model: Model, critic_params: Sequence[nn.Parameter], *, world: int, device: torch.device,
                 compile: bool = False, compile_backend: str = "inductor") -> None:
        self.world, self.active = world, False
        self.units: list[tuple[nn.Module, Any]] = []
        self.critic_ddps: list[Any] = []
        self.eager: list[str] = []  # units left uncompiled (and why)
        covered: set[int] = set()
        for name, unit, is_critic in step_units(model, critic_params):
            plain = wrapped = unit.forward
            if compile:
                if _has_parametrizations(unit):
                    # The power iteration of spectral norm updates its buffers in place during the forward, and the
                    # compiled backward refuses a saved tensor changed since (measured: "modified by an inplace operation").
                    self.eager.append(f"{name} (spectral norm)")
                else:
                    wrapped = torch.compile(plain, backend=compile_backend)
            if world > 1:
                ids = [device.index] if device.type == "cuda" else None
                wrapped = nn.parallel.DistributedDataParallel(_Stand(unit, wrapped), device_ids=ids, forward_sync_buffers=False,
                                                              static_graph=True, init_sync=False)
                if is_critic:
                    self.critic_ddps.append(wrapped)
            if wrapped is not plain:  # compiled and/or wrapped: route the unit's calls during a step
                self.units.append((unit, self._route(plain, wrapped)))
                covered.update(id(p) for p in unit.parameters())
        self.leftover = [p for p in model.parameters() if p.requires_grad and id(p) not in covered] if world > 1 else []
        for unit, route in self.units:
            unit.forward = route  # an instance attribute: the class's forward is untouched

    def _route(self, plain: Any, wrapped: Any) -> Any:
        def forward(*args: Any, **kwargs: Any) -> Any:
            return wrapped(*args, **kwargs) if self.active else plain(*args, **kwargs)

        return forward

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def critics_frozen(self) -> contextlib.AbstractContextManager[Any]:
        stack = contextlib.ExitStack()
        for ddp in self.critic_ddps:
            stack.enter_context(ddp.no_sync())
        return stack

    def finish(self, params: Iterable[nn.Parameter]) -> None:
        """Average the gradients of the parameters among ``params`` that no DDP unit covers (after backward)."""
        if self.leftover:
            mine = {id(p) for p in params}
            average_gradients([p for p in self.leftover if id(p) in mine], self.world)

    def close(self) -> None:
        for unit, _ in self.units:
            unit.__dict__.pop("forward", None)
        self.units = []
