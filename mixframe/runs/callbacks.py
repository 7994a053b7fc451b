"""The callbacks every run folder gets: scalar logs, checkpoints (last and best), status, progress, train.log.

Pictures and stall watches are plugins (callbacks, through ``mixframe_components``) that a recipe names under
``callbacks:``; these are the run store's own contract and act only where ``trainer.run`` is
set (rank 0 of a run trained into a folder). Messages go to the ``mixframe.progress`` logger.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from mixframe.errors import MixframeError
from mixframe.kernel.interfaces import LEVEL_SUFFIX, VALIDATION_LOSS, BuildContext, Callback, TrainerView
from mixframe.runs.folder import SCALAR_LINE_END, RunFolder, not_written, now

logger = logging.getLogger("mixframe.progress")


class ScalarLog(Callback):
    """Scalars to metrics.csv (step, epoch, name, value) and TensorBoard; warnings to warnings.log.

    Steps are logged every ``train.log_every`` minibatches (the only place a step's losses become
    floats), epoch means at every epoch's end (with every value the callbacks logged).
    """

    order = Callback.RECORD

    def __init__(self, run: RunFolder, resume_step: int | None = None) -> None:
        self.run, self.resume_step = run, resume_step
        # TensorBoard drops events at or after the purge step; those at the checkpoint's own step are kept, as in metrics.csv
        run.tensorboard_purge_step = None if resume_step is None else resume_step + 1  # set before any on_start opens the writer
        self.file: Any = None

    def on_start(self, trainer: TrainerView) -> None:
        path = self.run.file(RunFolder.METRICS)
        if self.resume_step is not None:
            self.run.truncate_scalars(self.resume_step)
        new = not path.exists()
        try:
            self.file = path.open("a", newline="")
        except OSError as err:
            raise not_written(path, err, "could not open the scalar log") from None
        self.csv = csv.writer(self.file, lineterminator=SCALAR_LINE_END)  # the line ends truncate_scalars writes
        if new:
            self.csv.writerow(["step", "epoch", "name", "value"])
        self.tb = self.run.tensorboard()

    def write(self, step: int, epoch: int, values: Mapping[str, float]) -> None:
        try:
            for name, value in values.items():
                self.csv.writerow([step, epoch, name, f"{value:.6g}"])
                if math.isfinite(value):
                    self.tb.add_scalar(name, value, step)
            self.file.flush()
        except OSError as err:  # a full disk mid-epoch: the path and the fix, not a bare errno
            raise not_written(self.run.file(RunFolder.METRICS), err, f"could not log the scalars of step {step}") from None

    def on_step_end(self, trainer: TrainerView, logs: Mapping[str, Tensor]) -> None:
        if trainer.step % trainer.recipe.train.log_every == 0:
            self.write(trainer.step, trainer.epoch + 1, {k: float(v) for k, v in logs.items()})

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        self.write(trainer.step, trainer.epoch, means)

    def on_warning(self, trainer: TrainerView, message: str) -> None:
        try:
            self.run.add_warning(message)
        except OSError as err:
            raise not_written(self.run.file(RunFolder.WARNINGS), err, "could not record a warning") from None

    def on_end(self, trainer: TrainerView, summary: Mapping[str, float]) -> None:
        self.close()

    def on_failure(self, trainer: TrainerView, error: BaseException) -> None:
        self.close()

    def close(self) -> None:
        if self.file is not None:
            file, self.file = self.file, None
            try:  # on a full disk the last rows may not flush: the run's own error is the one to report
                file.close()
                self.run.close_tensorboard()  # the last user: recipe callbacks' on_end ran before this one
            except OSError:
                pass


class Checkpoints(Callback):
    """An atomic checkpoint every ``train.checkpoint_every`` epochs and at the end; and checkpoint_best.pt, the
    state of the epoch with the lowest validation loss so far (``trainer.log_validation``), with ``val_reconstruction``
    added. The best so far is part of the checkpoint's state, so a resumed run keeps the true best."""

    order = Callback.RECORD

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.best: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {} if self.best is None else {"best": self.best}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = state.get("best")

    def on_start(self, trainer: TrainerView) -> None:
        if self.best is None and trainer.step > 0:  # a checkpoint from before the best was kept in it: the log says
            done = [value for epoch, value in self.run.epoch_curves().get(f"epoch/{VALIDATION_LOSS}", []) if epoch <= trainer.epoch]
            self.best = min(done, default=None)

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        loss = trainer.validation_loss
        if loss is not None and trainer.keep_best and (self.best is None or loss < self.best):
            self.best = loss
            self.run.checkpoint(best=True).save({**trainer.state(), "val_reconstruction": loss})
        if trainer.done or trainer.epoch % trainer.recipe.train.checkpoint_every == 0:
            self.run.save_checkpoint(trainer.state())


class RunStatus(Callback):
    """Keeps run.json true: complete (with the final losses), diverged, interrupted or failed (with the error)."""

    order = Callback.RECORD

    def __init__(self, run: RunFolder) -> None:
        self.run = run

    def on_end(self, trainer: TrainerView, summary: Mapping[str, float]) -> None:
        if not summary:  # a resume that found the last checkpoint already final: the last logged epoch means
            summary = {k: v[-1][1] for k, v in self.run.epoch_curves().items() if v}
        self.run.update_info(status="complete", finished=now(), epoch=trainer.epoch, step=trainer.step, world_size=trainer.world,
                             stopped_early=trainer.should_stop,
                             ranks_identical=trainer.ranks_identical, final={k: round(v, 6) for k, v in summary.items()},
                             drop=("stopped", "error"))  # a stop that a resume went past is no longer true

    def on_failure(self, trainer: TrainerView, error: BaseException) -> None:
        from mixframe.kernel.engine.loop import TrainingDiverged

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
    """What a person watching sees: a bar per epoch (tqdm, on a terminal only) showing the epoch, the
    step and the main losses; after it a line per epoch with the epoch's mean losses (the only
    output with ``enabled=False``, or when the output is a file or a pipe); then that epoch's warnings.
    A warning raised while a bar is drawn is logged at once (the command line's handler writes it above
    the bar); otherwise it waits for the epoch's line, so that nothing lands in the middle of a bar.
    Lines go to the ``mixframe.progress`` logger: the command line prints them, a library user's logging
    configuration decides."""

    order = Callback.REPORT

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.waiting: list[str] = []  # warnings raised while no bar was drawn, logged after the epoch's line

    def on_start(self, trainer: TrainerView) -> None:
        if trainer.rank != 0:
            return
        logger.info(f"CPU threads: {trainer.threads} ({trainer.threads_source})")
        if trainer.step > 0:
            logger.info(f"resuming at epoch {trainer.epoch + 1}, minibatch {trainer.step}")

    def on_step_end(self, trainer: TrainerView, logs: Mapping[str, Tensor]) -> None:
        if not self.enabled or trainer.rank != 0:
            return
        cfg = trainer.recipe.train
        if self.bar is None:
            from tqdm import tqdm

            self.flush()
            left = min(trainer.steps_per_epoch, trainer.total_steps - trainer.step + 1)
            self.bar = tqdm(total=left, desc=f"epoch {trainer.epoch + 1}/{cfg.epochs}", unit="batch",
                            dynamic_ncols=True, leave=False, disable=None)  # None: no bar when the output is not a terminal
        self.bar.update(1)
        if trainer.step % max(cfg.log_every, 10) == 0:
            shown = {k.split("/")[-1]: f"{float(v):.3g}" for k, v in logs.items() if k.startswith("ae/") and k != "ae/total"}
            self.bar.set_postfix({"step": trainer.step, **shown})
        if self.bar.n >= self.bar.total:
            self.close()  # before the epoch's warnings and summary line are logged

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        if trainer.rank != 0:
            return
        self.close()
        logger.info(epoch_line(trainer.epoch, trainer.recipe.train.epochs, trainer.step, means))
        self.flush()

    def on_warning(self, trainer: TrainerView, message: str) -> None:
        if self.bar is not None and not self.bar.disable:
            logger.warning(message)
        else:
            self.waiting.append(message)

    def on_end(self, trainer: TrainerView, summary: Mapping[str, float]) -> None:
        self.close()
        self.flush()

    def on_failure(self, trainer: TrainerView, error: BaseException) -> None:
        self.close()
        self.flush()

    def flush(self) -> None:
        for message in self.waiting:
            logger.warning(message)
        self.waiting = []

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_line(epoch: int, epochs: int, step: int, means: Mapping[str, float]) -> str:
    """'epoch 3/30  step 48  reconstruction 3.46 (val 3.52)  g_rec 1.18  g_mix 1.18  (2.9 s)': the epoch's mean
    autoencoder terms (not their reference levels), the validation loss beside the training reconstruction."""
    parts = []
    for key, value in means.items():
        if key.startswith("epoch/ae/") and not key.endswith(LEVEL_SUFFIX) and key != "epoch/ae/total":
            name = key.split("/")[-1]
            val = means.get(f"epoch/{VALIDATION_LOSS}") if key == "epoch/ae/reconstruction" else None
            parts.append(f"{name} {value:.4g}" + (f" (val {val:.4g})" if val is not None else ""))
    return f"epoch {epoch}/{epochs}  step {step}  {'  '.join(parts)}  ({means.get('epoch/seconds', 0):.1f} s)"


class TrainLog(Callback):
    """Every message of the ``mixframe`` loggers while training (the epoch lines, warnings, and what callbacks
    log through ``logging.getLogger("mixframe.NAME")``) also goes to ``train.log`` in the run folder, one line
    each; a resumed run appends to it. For the run's duration the ``mixframe`` logger passes information
    messages when its level was left unset; its handler and level are as they were once training ends,
    however it ends: :meth:`closer` gives the callback that does that, last."""

    order = Callback.OPEN

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.file: Any = None
        self.handler: logging.Handler | None = None
        self.level = logging.NOTSET
        self.started = 0.0

    def on_start(self, trainer: TrainerView) -> None:
        import time

        self.started = time.perf_counter()
        try:
            self.file = self.run.file(RunFolder.TRAIN_LOG).open("a", encoding="utf-8")
        except OSError:
            return  # no log rather than no training
        where = f"resuming at epoch {trainer.epoch + 1}, minibatch {trainer.step}" if trainer.step > 0 else "starting"
        self.note(f"== {now()}: mixframe training {where}; run folder {self.run.path}")
        package = logging.getLogger("mixframe")
        self.handler, self.level = _Lines(self.note), package.level
        package.addHandler(self.handler)
        if package.level == logging.NOTSET:
            package.setLevel(logging.INFO)

    def note(self, line: str) -> None:
        if self.file is None:
            return
        try:
            self.file.write(line + "\n")
            self.file.flush()
        except OSError:  # a full disk: the log stops, training goes on
            self.file = None

    def closer(self) -> Callback:
        """The callback that ends the log; it hears every event last."""
        log = self

        class CloseTrainLog(Callback):
            order = Callback.CLOSE

            def on_end(self, trainer: TrainerView, summary: Mapping[str, float]) -> None:
                log.finish(f"finished at epoch {trainer.epoch}, step {trainer.step}")

            def on_failure(self, trainer: TrainerView, error: BaseException) -> None:
                log.finish(f"stopped at epoch {trainer.epoch}, step {trainer.step}: {type(error).__name__}: {error}")

        return CloseTrainLog()

    def finish(self, how: str) -> None:
        import time

        if self.handler is not None:
            package = logging.getLogger("mixframe")
            package.removeHandler(self.handler)
            package.setLevel(self.level)
            self.handler = None
        self.note(f"== {now()}: {how} ({time.perf_counter() - self.started:.1f} s)")
        if self.file is not None:
            self.file.close()
            self.file = None


class _Lines(logging.Handler):
    """Hands each message's lines to ``line`` (blank lines skipped)."""

    def __init__(self, line: Any) -> None:
        super().__init__(logging.INFO)
        self.line = line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            for text in record.getMessage().splitlines():
                if text.strip():
                    self.line(text.rstrip())
        except Exception:  # noqa: BLE001 - logging's rule: a handler never raises
            self.handleError(record)


def run_folder_callbacks(run: RunFolder | None, *, progress: bool, resume_step: int | None = None) -> list[Callback]:
    """What a run folder needs (none on ranks above 0, where ``run`` is None): its train.log (opened first, so
    that it hears every message, and closed last), logs, checkpoints, status; and the progress display."""
    if run is None:
        return [Progress(progress)]
    log = TrainLog(run)
    return [log, ScalarLog(run, resume_step), Checkpoints(run), RunStatus(run), Progress(progress), log.closer()]


def recipe_callbacks(recipe: Any, context: BuildContext, registry: Any = None) -> list[Callback]:
    """The callbacks a recipe names (defaults included, those it switches off left out), built like any component."""
    from mixframe.kernel.registry import get_registry

    registry = registry or get_registry()
    built = []
    for spec in recipe.callbacks:
        if spec.off:
            continue
        built.append(registry.build("callback", spec.name, spec.config, context))
    return built


def evaluation_callbacks(recipe: Any, context: BuildContext, registry: Any = None) -> list[Callback]:
    """The recipe's callbacks (defaults included, those it switches off left out) whose class defines
    ``on_evaluation``: only they are built when a run is evaluated, so that the others (a tracker's client, say)
    are never made outside training."""
    from mixframe.kernel.registry import get_registry

    registry = registry or get_registry()
    built = []
    for spec in recipe.callbacks:
        if spec.off:
            continue
        implementation = registry.get("callback", spec.name).implementation
        if isinstance(implementation, type) and getattr(implementation, "on_evaluation", None) is not Callback.on_evaluation:
            built.append(registry.build("callback", spec.name, spec.config, context))
    return built

