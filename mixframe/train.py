"""The training engine: composes the losses a recipe names, on the schedule it gives.

One minibatch: the encoder, decoder and mixer produce a :class:`~mixframe.Step`; every critic takes
one optimizer step on it; on one minibatch in ``update_g_every`` the autoencoder takes one too.
On a critic-only minibatch the step's tensors are computed under ``torch.no_grad``: nothing of the
autoencoder's loss is built there (the authors' code builds that graph and throws it away).

Under ``torchrun`` each process trains on its own shard of every epoch; gradients are averaged
across processes with an all-reduce before every optimizer step (the synchronisation
DistributedDataParallel performs), so all ranks keep identical weights. DDP's wrapper itself is not
used because a GAN step calls the critic in both losses and re-encodes decoded mixes outside the
wrapped forward, which DDP's one-forward-one-backward bookkeeping does not allow. Rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, Subset

from mixframe.errors import MixframeError
from mixframe.interfaces import DataBundle
from mixframe.model import Model, build_data
from mixframe.recipe import Recipe
from mixframe.runs import CHECKPOINT, load_checkpoint, save_checkpoint


class TrainingDiverged(MixframeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class EpochSampler(Sampler[int]):
    """Shuffles each epoch with a generator seeded by (seed, epoch), then takes this rank's shard.

    The order depends only on the seed and the epoch, so a resumed run sees the same batches.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.size, self.seed, self.rank, self.world, self.epoch = size, seed, rank, world, 0
        self.per_rank = size // world

    def __iter__(self):  # noqa: ANN204
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=gen)[: self.per_rank * self.world]
        return iter(order[self.rank :: self.world].tolist())

    def __len__(self) -> int:
        return self.per_rank


def pick_device(choice: str, local_rank: int = 0) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise MixframeError("train.device is 'cuda' but no CUDA device is available; use device: auto or cpu")
    if choice in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


class Trainer:
    """Trains a :class:`Model` from a recipe; ``logger`` receives scalars (rank 0 only)."""

    def __init__(self, recipe: Recipe, *, data: DataBundle | None = None, logger: Any = None, rank: int = 0, world: int = 1) -> None:
        self.recipe, self.cfg = recipe, recipe.train
        self.rank, self.world = rank, world
        self.device = pick_device(self.cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.data = data or build_data(recipe)
        self.model = Model(recipe, self.data).to(self.device)
        if world > 1:
            for p in self.model.state_dict().values():
                dist.broadcast(p, 0)
        betas = tuple(self.cfg.betas)
        self.ae_params = self.model.autoencoder_parameters()
        self.ae_opt = torch.optim.Adam(self.ae_params, lr=self.cfg.lr, betas=betas, weight_decay=self.cfg.weight_decay)
        self.critics = self.model.critics()
        self.critic_opts = {
            name: torch.optim.Adam(list(reg.critic_parameters()), lr=self.cfg.critic_lr or self.cfg.lr, betas=betas, weight_decay=self.cfg.weight_decay)
            for name, reg in self.critics
        }
        self.sampler = EpochSampler(len(self.data.train), recipe.seed, rank, world)
        if len(self.sampler) < self.cfg.batch_size:
            raise MixframeError(f"train.batch_size {self.cfg.batch_size} is larger than the training split per process ({len(self.sampler)} examples)")
        self.loader = DataLoader(self.data.train, batch_size=self.cfg.batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda")
        self.epoch, self.step = 0, 0
        self.logger = logger
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if self.cfg.amp and self.device.type == "cuda"
                         else contextlib.nullcontext())

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    @property
    def total_steps(self) -> int:
        full = self.cfg.epochs * self.steps_per_epoch
        return min(full, self.cfg.max_steps) if self.cfg.max_steps else full

    # -- one minibatch -----------------------------------------------------------------------------
    def train_step(self, x: Tensor, y: Tensor | None) -> dict[str, float]:
        """One minibatch: critic updates, then (on schedule) the autoencoder update."""
        update_ae = (self.step + 1) % self.cfg.update_g_every == 0
        model = self.model
        with torch.set_grad_enabled(update_ae), self.autocast:
            step, out = model.forward_step(x, y, with_mix=model.needs_mix)
        logs: dict[str, Tensor] = {}
        for name, reg in self.critics:
            with self.autocast:
                terms = reg.critic_loss(step)
            loss = sum(terms.values())
            self._check_finite(f"critic {name}", loss, terms)
            opt = self.critic_opts[name]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            self._sync(reg.critic_parameters())
            opt.step()
            logs.update({f"critic/{name}/{k}": v.detach() for k, v in terms.items()})
        if update_ae:
            critic_params = [p for _, reg in self.critics for p in reg.critic_parameters()]
            for p in critic_params:
                p.requires_grad_(False)  # the autoencoder's loss needs no critic weight gradients
            try:
                with self.autocast:
                    terms = {"reconstruction": model.reconstruction_loss(out, x)}
                    if step.mix is not None and step.mix.loss is not None:
                        terms["mixer"] = step.mix.loss
                    for i, (name, reg) in enumerate(zip(model.regularizer_names, model.regularizers)):
                        terms.update({f"{i}_{name}/{k}": v for k, v in reg.autoencoder_loss(step).items()})
                loss = sum(terms.values())
                self._check_finite("autoencoder", loss, terms)
                self.ae_opt.zero_grad(set_to_none=True)
                loss.backward()
            finally:
                for p in critic_params:
                    p.requires_grad_(True)
            self._sync(self.ae_params)
            self.ae_opt.step()
            logs.update({f"ae/{k}": v.detach() for k, v in terms.items()})
            logs["ae/total"] = loss.detach()
        self.step += 1
        return {k: float(v) for k, v in logs.items()}

    def _check_finite(self, who: str, loss: Tensor, terms: dict[str, Tensor]) -> None:
        if not torch.isfinite(loss):
            bad = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items())
            raise TrainingDiverged(f"the {who} loss became {float(loss.detach())} at epoch {self.epoch + 1}, minibatch {self.step + 1} ({bad}); "
                                   "training stopped and the last good checkpoint was kept. Lower train.lr or a loss weight, then resume or retrain")

    def _sync(self, params: Any) -> None:
        if self.world == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    # -- state ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ae_opt": self.ae_opt.state_dict(),
            "critic_opts": {k: o.state_dict() for k, o in self.critic_opts.items()},
            "epoch": self.epoch,
            "step": self.step,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ae_opt.load_state_dict(state["ae_opt"])
        for k, o in self.critic_opts.items():
            o.load_state_dict(state["critic_opts"][k])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    @torch.no_grad()
    def mean_image_loss(self, limit: int = 4096) -> float:
        """Reconstruction loss of drawing the mean training image for every input (over the first ``limit``
        training examples): the plateau a decoder that ignores its input sits on."""
        first = Subset(self.data.train, range(min(limit, len(self.data.train))))
        x = torch.cat([x for x, _ in DataLoader(first, batch_size=512)]).float()
        mean = x.mean(dim=0, keepdim=True)
        if self.model.decoder.outputs_logits:
            mean = torch.logit(mean.clamp(1e-4, 1 - 1e-4))
        return float(self.model.reconstruction_loss(mean.expand_as(x), x))

    # -- the loop ------------------------------------------------------------------------------------
    def fit(self, run_dir: Path | None = None, progress: bool = True) -> dict[str, float]:
        """Train until the recipe's epochs (or max_steps) are done; checkpoint and draw on schedule."""
        from tqdm import tqdm

        from mixframe.pictures import save_training_grid

        writer = self.logger
        bar = tqdm(total=self.total_steps, initial=min(self.step, self.total_steps), disable=not progress or self.rank != 0,
                   desc="train", unit="batch", dynamic_ncols=True)
        chance = {f"critic/{name}/{k}": v for name, reg in self.critics for k, v in reg.critic_chance().items()}
        rec_watch = ReconstructionWatch(self.mean_image_loss(), self.cfg.stall_epochs)

        def warn(message: str) -> None:
            if self.rank == 0:
                bar.write(message)
                if writer is not None:
                    writer.warn(message)

        stalled: dict[str, int] = defaultdict(int)
        last: dict[str, float] = {}
        means: dict[str, float] = {}
        self.model.train()
        while self.epoch < self.cfg.epochs and self.step < self.total_steps:
            # Mixing and pairing draws: a stream per (seed, rank, epoch), so a resumed run draws the same.
            torch.manual_seed(self.recipe.seed * 7919 + self.rank + 1_000_003 * self.epoch)
            self.sampler.epoch = self.epoch
            sums: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            started = time.perf_counter()
            for x, y in self.loader:
                if self.step >= self.total_steps:
                    break
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                logs = self.train_step(x, y)
                for k, v in logs.items():
                    sums[k] += v
                    counts[k] += 1
                if writer is not None and self.step % self.cfg.log_every == 0:
                    writer.scalars(self.step, self.epoch + 1, logs)
                last.update(logs)
                bar.update(1)
                if self.step % 10 == 0:
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in last.items() if k.startswith("ae/") and "total" not in k})
            self.epoch += 1
            means = {f"epoch/{k}": sums[k] / counts[k] for k in sums}
            means["epoch/seconds"] = time.perf_counter() - started
            for key, level in chance.items():
                mean = sums.get(key, 0.0) / max(counts.get(key, 0), 1)
                means[f"epoch/{key}_chance"] = level
                # A blind critic sits within a fraction of a percent of its level; a critic in a live game
                # wanders several percent around it from epoch to epoch.
                stalled[key] = stalled[key] + 1 if abs(mean - level) <= 0.01 * max(abs(level), 1e-3) else 0
                if stalled[key] == self.cfg.stall_epochs:
                    warn(f"warning: {key} has stayed at its blind-guess value {level:.4g} for {stalled[key]} epochs: the critic learns "
                         "nothing, so its regularizer adds nothing (AMR becomes a plain autoencoder). Try a larger or un-normalised "
                         "critic (spectral_norm: false), a higher train.critic_lr, or check the critic's inputs.")
            done = self.epoch >= self.cfg.epochs or self.step >= self.total_steps
            means["epoch/ae/reconstruction_chance"] = rec_watch.level
            if "epoch/ae/reconstruction" in means and (message := rec_watch.update(means["epoch/ae/reconstruction"], done)):
                warn(message)
            if writer is not None:
                writer.scalars(self.step, self.epoch, means)
            if run_dir is not None and self.rank == 0:
                if done or self.epoch % self.cfg.checkpoint_every == 0:
                    save_checkpoint(run_dir / CHECKPOINT, self.state())
                if done or self.epoch % self.cfg.grid_every == 0:
                    save_training_grid(self.model, self.data, run_dir / "grids" / f"epoch_{self.epoch:04d}.png", self.device)
                    self.model.train()
        bar.close()
        return {k.removeprefix("epoch/"): v for k, v in means.items()}


class ReconstructionWatch:
    """Warns when the per-epoch reconstruction loss is stuck at ``level``, the loss of outputting the mean
    training example: no better than it (within 5%) and nearly unchanged (within 5% of the previous
    epoch) for ``patience`` epochs, or no better than it when training ends. A loss still falling fast
    from its initial value, above the level for a few epochs, is not stuck."""

    def __init__(self, level: float, patience: int) -> None:
        self.level, self.patience = level, patience
        self.previous: float | None = None
        self.flat_epochs = 0
        self.warned = False

    def update(self, loss: float, last_epoch: bool) -> str | None:
        no_better = loss >= 0.95 * self.level
        flat = no_better and self.previous is not None and abs(loss - self.previous) <= 0.05 * self.previous
        self.flat_epochs = self.flat_epochs + 1 if flat else 0
        self.previous = loss
        advice = "the decoder ignores its input. Train for more steps (more epochs or a smaller train.batch_size) or raise train.lr."
        if self.flat_epochs == self.patience:
            self.warned = True
            return (f"warning: ae/reconstruction ({loss:.4g}) has been no better than outputting the mean training example "
                    f"({self.level:.4g}), and nearly unchanged, for {self.patience} epochs: {advice}")
        if last_epoch and no_better and not self.warned:
            self.warned = True
            return (f"warning: training ends with ae/reconstruction ({loss:.4g}) no better than outputting the mean training example "
                    f"({self.level:.4g}): {advice}")
        return None


class ScalarLog:
    """Scalars to a CSV file (step, epoch, name, value) and TensorBoard; warnings to warnings.log."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.dir = run_dir
        self.csv_path = run_dir / "metrics.csv"
        if resume_step is not None and self.csv_path.exists():
            self._truncate(resume_step)
        new = not self.csv_path.exists()
        self.file = self.csv_path.open("a", newline="")
        self.csv = csv.writer(self.file)
        if new:
            self.csv.writerow(["step", "epoch", "name", "value"])
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step)

    def _truncate(self, step: int) -> None:
        with self.csv_path.open(newline="") as f:
            rows = list(csv.reader(f))
        keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
        self.csv_path.write_text("".join(",".join(r) + "\n" for r in keep))

    def scalars(self, step: int, epoch: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.csv.writerow([step, epoch, name, f"{value:.6g}"])
            if math.isfinite(value):
                self.tb.add_scalar(name, value, step)
        self.file.flush()

    def warn(self, message: str) -> None:
        with (self.dir / "warnings.log").open("a") as f:
            f.write(message + "\n")

    def close(self) -> None:
        self.file.close()
        self.tb.close()


def load_resume_state(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT
    return load_checkpoint(path) if path.exists() else None
