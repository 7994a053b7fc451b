"""The training engine: composes the losses a recipe names, on the schedule it gives, and raises events.

One minibatch: the encoder, decoder and mixer produce a :class:`~mixframe.Step`; every critic takes
one optimizer step on it (or its own number per autoencoder update: ``Regularizer.critic_settings``);
on one minibatch in ``update_g_every`` the autoencoder takes one too.
On a critic-only minibatch the step's tensors are computed under ``torch.no_grad``: nothing of the
autoencoder's loss is built there (the authors' code builds that graph and throws it away).

The loop itself only loops: checkpoints, logs, the progress bar, pictures and stall watches are
:class:`~mixframe.Callback` objects reacting to its events. Losses stay on the device as tensors;
they become Python floats once per epoch (and every ``log_every`` steps, when they are logged and
checked for NaN), not on every step: an ordinary step makes no device-to-host synchronisation.

Under torchrun each process trains on its shard of every epoch (PyTorch's ``DistributedSampler``)
and the networks are DistributedDataParallel units whose gradient all-reduces overlap the backward
pass (:mod:`mixframe.kernel.engine.distributed`); ``train.batch_size`` is per process. ``train.compile``
runs the networks of the step under ``torch.compile``; ``train.channels_last`` (default: on for
images on CUDA) stores images and conv weights channels-last; batches are loaded into pinned memory
and copied without blocking on CUDA; ``train.amp`` is bfloat16 autocast on CUDA.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from mixframe.errors import MixframeError
from mixframe.kernel.engine import distributed
from mixframe.kernel.interfaces import Callback, DataBundle, Regularizer, Step
from mixframe.kernel.model import Model, build_data
from mixframe.kernel.recipe import Recipe


def total(terms: dict[str, Tensor]) -> Tensor:
    """The sum of named loss terms (a tensor; ``sum`` alone types as ``Tensor | int``)."""
    return cast(Tensor, sum(terms.values()))


class TrainingDiverged(MixframeError):
    """A loss became NaN or infinite; training stopped before the next checkpoint."""


def epoch_sampler(dataset: Any, seed: int, rank: int = 0, world: int = 1) -> DistributedSampler[Any]:
    """PyTorch's DistributedSampler: each epoch a permutation seeded by (seed, epoch) (``set_epoch``), cut to a
    multiple of the world size, of which this rank takes every world-th example. The order depends only on the
    seed and the epoch (a resumed run sees the same batches), and one process sees what N processes see together."""
    return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=(seed * 100_003) % 2**63, drop_last=True)


class EpochMeans:
    """Running sums of the step logs, kept on the device; read back (one transfer) at the epoch's end."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.started = time.perf_counter()

    def add(self, logs: dict[str, Tensor]) -> None:
        for k, v in logs.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.float().clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def nonfinite(self) -> list[str]:
        """Names whose sum is NaN or infinite (a loss went bad somewhere in the epoch)."""
        if not self.sums:
            return []
        finite = torch.isfinite(torch.stack(list(self.sums.values()))).tolist()
        return [k for k, ok in zip(self.sums, finite) if not ok]

    def means(self) -> dict[str, float]:
        values = torch.stack(list(self.sums.values())).tolist() if self.sums else []
        out = {f"epoch/{k}": v / self.counts[k] for k, v in zip(self.sums, values)}
        out["epoch/seconds"] = time.perf_counter() - self.started
        return out


class Trainer:
    """Trains a :class:`Model` built from a recipe and tells its callbacks what happens.

    ``run`` is the :class:`~mixframe.RunFolder` being written (None in memory, and on ranks above 0).
    """

    def __init__(self, recipe: Recipe, *, data: DataBundle | None = None, callbacks: Sequence[Callback] = (),
                 run: Any = None, rank: int = 0, world: int = 1) -> None:
        self.recipe, self.cfg = recipe, recipe.train
        self.rank, self.world, self.run = rank, world, run
        self.callbacks = list(callbacks)
        self.device = distributed.pick_device(self.cfg.device)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.data = data or build_data(recipe)
        self.model = Model(recipe, self.data.spec).to(self.device)
        image = self.data.spec.is_image
        self.channels_last = image and (self.cfg.channels_last if self.cfg.channels_last is not None else self.device.type == "cuda")
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        distributed.broadcast_parameters(self.model, world)
        betas: tuple[float, float] = (self.cfg.betas[0], self.cfg.betas[1])
        self.ae_params = self.model.autoencoder_parameters()
        self.ae_opt = torch.optim.Adam(self.ae_params, lr=self.cfg.lr, betas=betas, weight_decay=self.cfg.weight_decay)
        self.critics = self.model.critics()
        self.critic_settings = {name: reg.critic_settings() for name, reg in self.critics}
        self.critic_opts = {name: self._critic_optimizer(name, reg, betas) for name, reg in self.critics}
        self.parallel = distributed.DataParallel(self.model, [p for _, reg in self.critics for p in reg.critic_parameters()], world=world,
                                                 device=self.device, compile=self.cfg.compile, compile_backend=self.cfg.compile_backend)
        if rank == 0 and world > 1:
            print(distributed.describe(world, self.cfg.batch_size, self.device), flush=True)
        if rank == 0 and self.parallel.eager:
            print(f"train.compile: left eager: {', '.join(self.parallel.eager)}", flush=True)
        self.sampler = epoch_sampler(self.data.train, recipe.seed, rank, world)
        if len(self.sampler) < self.cfg.batch_size:
            raise MixframeError(f"train.batch_size {self.cfg.batch_size} is larger than the training split per process ({len(self.sampler)} examples)")
        self.loader = DataLoader(self.data.train, batch_size=self.cfg.batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda")
        self.epoch, self.step = 0, 0
        self.means: dict[str, float] = {}
        self.warnings: list[str] = []
        self.should_stop = False  # a callback sets it (an early stop); the loop ends after this minibatch
        self.ranks_identical = True
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.cfg.amp and self.device.type == "cuda"
                         else contextlib.nullcontext())

    @property
    def critic_lr(self) -> float:
        return self.cfg.critic_lr or self.cfg.lr

    def _critic_optimizer(self, name: str, reg: Regularizer, betas: tuple[float, float]) -> torch.optim.Adam:
        """A critic's Adam: its own settings (``Regularizer.critic_settings``) where it gives them, else the recipe's."""
        own = self.critic_settings[name]
        decay = self.cfg.weight_decay if own.weight_decay is None else own.weight_decay
        return torch.optim.Adam(list(reg.critic_parameters()), lr=self._critic_lr(name), betas=own.betas or betas, weight_decay=decay)

    def _critic_lr(self, name: str) -> float:
        """A critic's learning rate: its own (``Regularizer.critic_settings``), else the recipe's."""
        return self.critic_settings[name].lr or self.critic_lr

    def critic_steps(self, name: str, step: int) -> int:
        """The optimizer steps critic ``name`` takes on minibatch ``step``: its ``CriticSettings.steps`` per autoencoder
        update spread evenly over the ``update_g_every`` minibatches of an update; one per minibatch by default."""
        wanted, every = self.critic_settings[name].steps, self.cfg.update_g_every
        if wanted is None:
            return 1
        j = step % every
        return (j + 1) * wanted // every - j * wanted // every

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    @property
    def total_steps(self) -> int:
        full = self.cfg.epochs * self.steps_per_epoch
        return min(full, self.cfg.max_steps) if self.cfg.max_steps else full

    @property
    def done(self) -> bool:
        return self.should_stop or self.epoch >= self.cfg.epochs or self.step >= self.total_steps

    # -- the loop --------------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Train until the recipe's epochs (or max_steps) are done; returns the last epoch's means."""
        try:
            self.emit("on_start")  # inside: a callback failing to start (unreadable data, say) still marks the run failed
            self.model.train()
            while not self.done:
                # Mixing and pairing draws: a stream per (seed, rank, epoch), so a resumed run draws the same.
                torch.manual_seed(self.recipe.seed * 7919 + self.rank + 1_000_003 * self.epoch)
                self.sampler.set_epoch(self.epoch)
                epoch = EpochMeans()
                for x, y in self.loader:
                    if self.step >= self.total_steps or self.should_stop:
                        break
                    logs = self.train_step(*self.to_device(x, y))
                    epoch.add(logs)
                    if self.step % self.cfg.log_every == 0:
                        self.check_finite(epoch)
                    self.emit("on_step_end", logs)
                self.check_finite(epoch)
                self.epoch += 1
                self.means = epoch.means()
                self.emit("on_epoch_end", self.means)
            self.ranks_identical = distributed.ranks_identical(self.model, self.world)
        except BaseException as err:
            lost = distributed.rank_failure(err, "training", rank=self.rank, step=self.step) if self.world > 1 else None
            self.emit("on_failure", lost or err)
            if lost is not None:
                raise lost from None
            raise
        finally:
            self.parallel.close()
        summary = {k.removeprefix("epoch/"): v for k, v in self.means.items()}
        self.emit("on_end", summary)
        return summary

    def emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def warn(self, message: str) -> None:
        """A warning for the user: kept in ``warnings`` and handed to the callbacks (printed, written to warnings.log)."""
        if self.rank == 0:
            self.warnings.append(message)
            self.emit("on_warning", message)

    def check_finite(self, epoch: EpochMeans) -> None:
        bad = epoch.nonfinite()
        if bad:
            kept = "the last good checkpoint was kept" if self.run is not None and self.run.has_checkpoint else "no checkpoint had been written yet"
            raise TrainingDiverged(f"the loss term(s) {', '.join(bad)} became nan or infinite at epoch {self.epoch + 1}, "
                                   f"by minibatch {self.step}; training stopped and {kept}. "
                                   "Lower train.lr or a loss weight, then resume (mixframe resume RUN_DIR --set train.lr=...) or retrain")

    # -- one minibatch ---------------------------------------------------------------------------------
    def to_device(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """A batch on the training device without blocking (from pinned memory on CUDA), images channels-last when asked."""
        fmt = torch.channels_last if self.channels_last and x.dim() == 4 else torch.preserve_format
        return x.to(self.device, non_blocking=True, memory_format=fmt), y.to(self.device, non_blocking=True)

    def train_step(self, x: Tensor, y: Tensor | None) -> dict[str, Tensor]:
        """One minibatch: critic updates, then (on schedule) the autoencoder update; returns detached losses."""
        with self.parallel.step():  # the networks' compiled / DDP-wrapped forwards, for this step only
            return self._train_step(x, y)

    def _train_step(self, x: Tensor, y: Tensor | None) -> dict[str, Tensor]:
        update_ae = (self.step + 1) % self.cfg.update_g_every == 0
        with torch.set_grad_enabled(update_ae), self.autocast:
            step, out = self.model.forward_step(x, y, with_mix=self.model.needs_mix)
        logs: dict[str, Tensor] = {}
        if step.mix is not None:
            logs.update({f"mix/{k}": v.detach().float().mean() for k, v in step.mix.extras.items()})
        # train.order: the critics judge this minibatch's fakes (detached) either before or after the autoencoder steps
        if update_ae and self.cfg.order == "autoencoder_first":
            self._autoencoder_update(step, out, x, logs)
            self._critic_updates(step, logs)
        else:
            self._critic_updates(step, logs)
            if update_ae:
                self._autoencoder_update(step, out, x, logs)
        self.step += 1
        return logs

    def _critic_updates(self, step: Step, logs: dict[str, Tensor]) -> None:
        for name, reg in self.critics:
            for _ in range(self.critic_steps(name, self.step)):
                with self.autocast:
                    terms = reg.critic_loss(step)
                opt = self.critic_opts[name]
                opt.zero_grad(set_to_none=True)
                total(terms).backward()  # type: ignore[no-untyped-call]  # DDP all-reduces the critic's gradients as the backward pass produces them
                self.parallel.finish(reg.critic_parameters())
                opt.step()
                logs.update({f"critic/{name}/{k}": v.detach() for k, v in terms.items()})

    def _autoencoder_update(self, step: Step, out: Tensor, x: Tensor, logs: dict[str, Tensor]) -> None:
        model = self.model
        critic_params = [p for _, reg in self.critics for p in reg.critic_parameters()]
        for p in critic_params:
            p.requires_grad_(False)  # the autoencoder's loss needs no critic weight gradients
        try:
            with self.autocast, self.parallel.critics_frozen():
                terms = {"reconstruction": model.reconstruction_loss(out, x)}
                if step.mix is not None and step.mix.loss is not None:
                    terms["mixer"] = step.mix.loss
                for i, (name, reg) in enumerate(zip(model.regularizer_names, model.typed_regularizers())):
                    terms.update({f"{i}_{name}/{k}": v for k, v in reg.autoencoder_loss(step).items()})
            loss = total(terms)
            self.ae_opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # Tensor.backward is untyped in torch
        finally:
            for p in critic_params:
                p.requires_grad_(True)
        self.parallel.finish(self.ae_params)
        self.ae_opt.step()
        logs.update({f"ae/{k}": v.detach() for k, v in terms.items()})
        logs["ae/total"] = loss.detach()

    # -- state -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ae_opt": self.ae_opt.state_dict(),
            "critic_opts": {k: o.state_dict() for k, o in self.critic_opts.items()},
            "epoch": self.epoch,
            "step": self.step,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint; the recipe's learning rates win over the ones saved with the optimizers."""
        try:
            self.model.load_state_dict(state["model"])
            self.ae_opt.load_state_dict(state["ae_opt"])
            for k, o in self.critic_opts.items():
                o.load_state_dict(state["critic_opts"][k])
        except (RuntimeError, KeyError, ValueError) as err:
            lines = str(err).strip().splitlines()
            detail = lines[1].strip() if len(lines) > 1 else (lines[0] if lines else type(err).__name__)
            raise MixframeError(f"the checkpoint does not fit the model this recipe builds ({detail}); "
                                "it was written by another recipe or an older version of the networks") from None
        for opt, lr in [(self.ae_opt, self.cfg.lr), *((o, self._critic_lr(k)) for k, o in self.critic_opts.items())]:
            for group in opt.param_groups:
                group["lr"] = lr
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    @torch.no_grad()
    def mean_image_loss(self, limit: int = 4096) -> float:
        """Reconstruction loss of drawing the mean training image for every input (over the first ``limit``
        training examples): the plateau a decoder that ignores its input sits on."""
        first = Subset(self.data.train, range(min(limit, len(self.data.train))))  # type: ignore[arg-type]  # map-style datasets are Sized
        x = torch.cat([x for x, _ in DataLoader(first, batch_size=512)]).float()
        mean = x.mean(dim=0, keepdim=True)
        if self.model.decoder.outputs_logits:
            mean = torch.logit(mean.clamp(1e-4, 1 - 1e-4))
        return float(self.model.reconstruction_loss(mean.expand_as(x), x))
