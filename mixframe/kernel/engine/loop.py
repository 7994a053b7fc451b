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
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from mixframe.errors import MixframeError
from mixframe.kernel.engine import distributed
from mixframe.kernel.interfaces import LEVEL_SUFFIX, VALIDATION_LOSS, Callback, DataBundle, Regularizer, RunFolderView, Step, ordered
from mixframe.kernel.model import CheckpointMismatch, Model, build_data, load_states, nonfinite
from mixframe.kernel.randomness import kept_random_state
from mixframe.kernel.recipe import Recipe

THREADS_ENV = "MIXFRAME_THREADS"


def set_threads(requested: int | None) -> tuple[int, str]:
    """Give torch ``requested`` CPU threads (else ``$MIXFRAME_THREADS``, else leave torch's choice); (threads, where the
    number came from). Two threads fighting for a busy two-core machine can be many times slower than one."""
    source = "train.threads"
    if requested is None:
        text = os.environ.get(THREADS_ENV, "").strip()
        if not text:
            return torch.get_num_threads(), "torch's default"
        if not text.isdigit() or int(text) < 1:
            raise MixframeError(f"{THREADS_ENV}={text!r} is not a positive whole number; set it to the CPU threads a run may use "
                                f"(for example {THREADS_ENV}=1), or unset it")
        requested, source = int(text), THREADS_ENV
    torch.set_num_threads(requested)
    return requested, source

logger = logging.getLogger("mixframe.engine")


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
    """Trains a :class:`Model` built from a recipe and tells its callbacks what happens: what they see of it
    is :class:`~mixframe.kernel.interfaces.TrainerView`.

    ``run`` is the :class:`~mixframe.RunFolder` being written (None in memory, and on ranks above 0).
    ``callbacks`` hear events in their ``order`` (ties in the order given), however they are set.
    """

    def __init__(self, recipe: Recipe, *, data: DataBundle | None = None, callbacks: Sequence[Callback] = (),
                 run: RunFolderView | None = None, rank: int = 0, world: int = 1) -> None:
        self.recipe, self.cfg = recipe, recipe.train
        self.rank, self.world, self.run = rank, world, run
        self.callbacks = list(callbacks)
        self.threads, self.threads_source = set_threads(self.cfg.threads)
        self.device = distributed.pick_device(self.cfg.device)
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
            logger.info(distributed.describe(world, self.cfg.batch_size, self.device))
        if rank == 0 and self.parallel.eager:
            logger.info(f"train.compile: left eager: {', '.join(self.parallel.eager)}")
        self.sampler = epoch_sampler(self.data.train, recipe.seed, rank, world)
        if len(self.sampler) < self.cfg.batch_size:
            raise MixframeError(f"train.batch_size {self.cfg.batch_size} is larger than the training split per process ({len(self.sampler)} examples)")
        self.loader = DataLoader(self.data.train, batch_size=self.cfg.batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda")
        self.epoch, self.step = 0, 0
        self.means: dict[str, float] = {}
        self.logged: dict[str, float] = {}  # values callbacks logged during the epoch (trainer.log), joining its means
        self.panels: dict[str, str] = {}  # a logged value's loss_curves.png panel, where its callback named one
        self.ending_epoch = False  # True while on_epoch_end is heard
        self.validation_loss: float | None = None  # this epoch's, when a callback logged one (log_validation)
        self.keep_best = True
        self.callback_state: dict[str, Any] = {}  # from the checkpoint resumed, handed to the callbacks at the start
        self.warnings: list[str] = []
        self.should_stop = False  # a callback sets it (an early stop); the loop ends after this minibatch
        self.ranks_identical = True
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.cfg.amp and self.device.type == "cuda"
                         else contextlib.nullcontext())

    @property
    def callbacks(self) -> list[Callback]:
        return self._callbacks

    @callbacks.setter
    def callbacks(self, callbacks: Sequence[Callback]) -> None:
        self._callbacks = ordered(callbacks)

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
        with self.scoped():
            return self._fit()

    @contextlib.contextmanager
    def scoped(self) -> Iterator[None]:
        """The run's process-wide settings for its duration only: deterministic algorithms on the CPU, and the
        random streams it reseeds (the caller's random state is as it was afterwards)."""
        was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        with kept_random_state():
            if self.device.type == "cpu":
                torch.use_deterministic_algorithms(True, warn_only=True)
            try:
                yield
            finally:
                torch.use_deterministic_algorithms(was, warn_only=warn_only)

    def _fit(self) -> dict[str, float]:
        try:
            self.restore_callbacks()
            self.emit("on_start")  # inside: a callback failing to start (unreadable data, say) still marks the run failed
            self.model.train()
            while not self.done:
                # Mixing and pairing draws: a stream per (seed, rank, epoch), so a resumed run draws the same.
                torch.manual_seed(self.recipe.seed * 7919 + self.rank + 1_000_003 * self.epoch)
                self.sampler.set_epoch(self.epoch)
                epoch, self.logged, self.validation_loss, self.ending_epoch = EpochMeans(), {}, None, False
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
                self.means, self.ending_epoch = {**epoch.means(), **self.logged}, True
                self.emit("on_epoch_end", self.means)
            self.check_model()
            self.ranks_identical = distributed.ranks_identical(self.model, self.world)
        except BaseException as err:
            lost = distributed.rank_failure(err, "training", rank=self.rank, step=self.step) if self.world > 1 else None
            self.emit_failure(lost or err)
            if lost is not None:
                raise lost from None
            raise
        finally:
            self.parallel.close()
        summary = dict(self.means)  # the last epoch's means, under the names callbacks, metrics.csv and TensorBoard use
        try:  # the end's own work (final pictures, the record) can fail too (a full disk): the run then says so
            self.emit("on_end", summary)
        except BaseException as err:
            self.emit_failure(err)
            raise
        return summary

    def emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    def emit_failure(self, error: BaseException) -> None:
        """``on_failure`` to every callback, even when one of them fails too: the run's record must hear of it."""
        for callback in self.callbacks:
            try:
                callback.on_failure(self, error)
            except Exception:  # noqa: BLE001 - the error that stopped the run is the one to report
                pass

    def check_model(self) -> None:
        """A run whose weights, or whose outputs on a few examples, are not finite never ends complete."""
        split = self.data.val if len(self.data.val) else self.data.train  # type: ignore[arg-type]
        x = torch.stack([split[i][0] for i in range(min(64, len(split)))]).to(self.device) if len(split) else torch.zeros(0)  # type: ignore[arg-type]
        problem = nonfinite(self.model, x)
        if problem:
            raise TrainingDiverged(f"training ended at epoch {self.epoch}, minibatch {self.step}, but {problem}; the run is not usable. "
                                   "Lower train.lr (or a loss weight) and train it again")

    def log(self, name: str, value: float, *, panel: str | None = None) -> None:
        """A value a callback measured, logged with this epoch's means as ``epoch/NAME`` (see TrainerView)."""
        key = f"epoch/{name}"
        self.logged[key] = float(value)
        if self.ending_epoch:
            self.means[key] = float(value)  # the callbacks after this one see it
        if panel is not None:
            self.panels[name] = panel

    def log_level(self, name: str, level: float) -> None:
        """NAME's reference level (what a model that learns nothing scores), drawn dashed beside it."""
        self.log(name + LEVEL_SUFFIX, level)

    def log_validation(self, loss: float, *, keep_best: bool = True) -> None:
        """The validation loss of this epoch: logged as :data:`VALIDATION_LOSS`; the run folder keeps the best
        checkpoint by it unless ``keep_best`` is False."""
        self.validation_loss, self.keep_best = float(loss), keep_best
        self.log(VALIDATION_LOSS, loss)

    def restore_callbacks(self) -> None:
        """Hand each callback the state it had in the checkpoint resumed (before ``on_start``)."""
        for key, callback in self.callback_keys().items():
            if key in self.callback_state:
                callback.load_state_dict(self.callback_state[key])

    def callback_keys(self) -> dict[str, Callback]:
        """Each callback by its class's full name (``#2`` for the second of a class): the key of its state in a checkpoint."""
        keys: dict[str, Callback] = {}
        for callback in self.callbacks:
            name = f"{type(callback).__module__}.{type(callback).__qualname__}"
            key, n = name, 1
            while key in keys:
                n += 1
                key = f"{name}#{n}"
            keys[key] = callback
        return keys

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
            "components": self.model.training_state(),
            "callbacks": {k: state for k, c in self.callback_keys().items() if (state := c.state_dict())},
        }

    def load_state(self, state: Mapping[str, Any], source: str = "being loaded") -> None:
        """Continue from a checkpoint (``source`` names it in messages); the recipe's learning rates win over the ones
        saved with the optimizers. Keys this method does not know are left for others (callbacks' state, say)."""
        critic_states = state.get("critic_opts", {})
        if set(critic_states) != set(self.critic_opts):
            raise CheckpointMismatch(source, ValueError(f"its critics are {sorted(critic_states)}, the recipe's are {sorted(self.critic_opts)}"))
        load_states(source, [(self.model, state["model"]), (self.ae_opt, state.get("ae_opt")),
                             *((o, critic_states[k]) for k, o in self.critic_opts.items())])
        for opt, lr in [(self.ae_opt, self.cfg.lr), *((o, self._critic_lr(k)) for k, o in self.critic_opts.items())]:
            for group in opt.param_groups:
                group["lr"] = lr
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.model.load_training_state(state.get("components") or {})  # absent in checkpoints of before they were kept
        self.callback_state = dict(state.get("callbacks") or {})
