"""The callbacks every run folder gets: scalar logs, checkpoints, status, progress.

Pictures and stall watches are plugins (``mixframe_callbacks``) that a recipe names under
``callbacks:``; these four are the run store's own contract and act only where ``trainer.run`` is
set (rank 0 of a run trained into a folder).
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from mixframe.errors import MixframeError
from mixframe.interfaces import BuildContext, Callback
from mixframe.runs import SCALAR_LINE_END, RunFolder, now


class ScalarLog(Callback):
    """Scalars to metrics.csv (step, epoch, name, value) and TensorBoard; warnings to warnings.log.

    Steps are logged every ``train.log_every`` minibatches (the only place a step's losses become
    floats), epoch means at every epoch's end.
    """

    def __init__(self, run: RunFolder, resume_step: int | None = None) -> None:
        self.run, self.resume_step = run, resume_step
        self.file: Any = None

    def on_start(self, trainer: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter

        path = self.run.file(RunFolder.METRICS)
        if self.resume_step is not None:
            self.run.truncate_scalars(self.resume_step)
        new = not path.exists()
        self.file = path.open("a", newline="")
        self.csv = csv.writer(self.file, lineterminator=SCALAR_LINE_END)  # the line ends truncate_scalars writes
        if new:
            self.csv.writerow(["step", "epoch", "name", "value"])
        self.tb = SummaryWriter(str(self.run.file(RunFolder.TENSORBOARD)), purge_step=self.resume_step)

    def write(self, step: int, epoch: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.csv.writerow([step, epoch, name, f"{value:.6g}"])
            if math.isfinite(value):
                self.tb.add_scalar(name, value, step)
        self.file.flush()

    def on_step_end(self, trainer: Any, logs: Mapping[str, Tensor]) -> None:
        if trainer.step % trainer.cfg.log_every == 0:
            self.write(trainer.step, trainer.epoch + 1, {k: float(v) for k, v in logs.items()})

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        self.write(trainer.step, trainer.epoch, means)

    def on_warning(self, trainer: Any, message: str) -> None:
        self.run.add_warning(message)

    def on_end(self, trainer: Any, summary: dict[str, float]) -> None:
        self.close()

    def on_failure(self, trainer: Any, error: BaseException) -> None:
        self.close()

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            try:  # on a full disk the last rows may not flush: the run's own error is the one to report
                file.close()
                self.tb.close()
            except OSError:
                pass


class Checkpoints(Callback):
    """An atomic checkpoint every ``train.checkpoint_every`` epochs and at the end."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        if trainer.done or trainer.epoch % trainer.cfg.checkpoint_every == 0:
            self.run.save_checkpoint(trainer.state())


class RunStatus(Callback):
    """Keeps run.json true: complete (with the final losses), diverged, interrupted or failed (with the error)."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run

    def on_end(self, trainer: Any, summary: dict[str, float]) -> None:
        if not summary:  # a resume that found the last checkpoint already final: the last logged epoch means
            summary = {k: v[-1][1] for k, v in self.run.epoch_curves().items() if v}
        self.run.update_info(status="complete", finished=now(), epoch=trainer.epoch, step=trainer.step, world_size=trainer.world,
                             stopped_early=trainer.should_stop,
                             ranks_identical=trainer.ranks_identical, final={k: round(v, 6) for k, v in summary.items()})

    def on_failure(self, trainer: Any, error: BaseException) -> None:
        from mixframe.engine.loop import TrainingDiverged

        if isinstance(error, TrainingDiverged):
            status = "diverged"
        elif isinstance(error, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "failed"
        try:
            self.run.update_info(status=status, stopped=now(), epoch=trainer.epoch, step=trainer.step,
                                 error=str(error) or type(error).__name__)
        except (OSError, MixframeError):  # a full disk or a damaged run.json: the error that stopped the run is what to show
            pass


class Progress(Callback):
    """A progress bar per epoch (tqdm), or one line per epoch without it; warnings printed above the bar."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def on_start(self, trainer: Any) -> None:
        if trainer.rank == 0 and trainer.step > 0:
            print(f"resuming at epoch {trainer.epoch + 1}, minibatch {trainer.step}")

    def on_step_end(self, trainer: Any, logs: Mapping[str, Tensor]) -> None:
        if not self.enabled or trainer.rank != 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            left = min(trainer.steps_per_epoch, trainer.total_steps - trainer.step + 1)
            self.bar = tqdm(total=left, desc=f"epoch {trainer.epoch + 1}/{trainer.cfg.epochs}", unit="batch",
                            dynamic_ncols=True, leave=False)
        self.bar.update(1)
        if trainer.step % max(trainer.cfg.log_every, 10) == 0:
            self.bar.set_postfix({k.split("/")[-1]: f"{float(v):.3g}" for k, v in logs.items() if k.startswith("ae/") and k != "ae/total"})
        if self.bar.n >= self.bar.total:
            self.close()  # before the epoch's warnings and summary line are printed

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        if trainer.rank != 0:
            return
        self.close()
        losses = "  ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in means.items() if k.startswith("epoch/ae/") and not k.endswith("_chance")
                           and k != "epoch/ae/total")
        print(f"epoch {trainer.epoch}/{trainer.cfg.epochs}  step {trainer.step}  {losses}  ({means.get('epoch/seconds', 0):.1f} s)")

    def on_warning(self, trainer: Any, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stdout)
        else:
            print(message)

    def on_end(self, trainer: Any, summary: dict[str, float]) -> None:
        self.close()

    def on_failure(self, trainer: Any, error: BaseException) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_folder_callbacks(run: RunFolder | None, *, progress: bool, resume_step: int | None = None) -> list[Callback]:
    """What a run folder needs (none on ranks above 0, where ``run`` is None): logs, checkpoints, status; and the progress display."""
    core: list[Callback] = [ScalarLog(run, resume_step), Checkpoints(run), RunStatus(run)] if run is not None else []
    return [*core, Progress(progress)]


def recipe_callbacks(recipe: Any, context: BuildContext, registry: Any = None) -> list[Callback]:
    """The callbacks a recipe names (defaults included), built like any component."""
    from mixframe.registry import get_registry

    registry = registry or get_registry()
    built = []
    for spec in recipe.callbacks:
        callback = registry.get("callback", spec.name).implementation(spec.config, context)
        if not isinstance(callback, Callback):
            raise MixframeError(f"callback {spec.name!r} built a {type(callback).__name__}, not a mixframe.Callback; "
                                "its implementation must subclass mixframe.Callback")
        built.append(callback)
    return built

