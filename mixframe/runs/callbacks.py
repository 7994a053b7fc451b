"""The callbacks every run folder gets: scalar logs, checkpoints, status, progress, train.log.

Pictures and stall watches are plugins (callbacks, through ``mixframe_components``) that a recipe names under
``callbacks:``; these are the run store's own contract and act only where ``trainer.run`` is
set (rank 0 of a run trained into a folder).
"""

from __future__ import annotations

import csv
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from mixframe.errors import MixframeError
from mixframe.kernel.interfaces import BuildContext, Callback
from mixframe.runs.folder import SCALAR_LINE_END, RunFolder, now


class ScalarLog(Callback):
    """Scalars to metrics.csv (step, epoch, name, value) and TensorBoard; warnings to warnings.log.

    Steps are logged every ``train.log_every`` minibatches (the only place a step's losses become
    floats), epoch means at every epoch's end.
    """

    def __init__(self, run: RunFolder, resume_step: int | None = None) -> None:
        self.run, self.resume_step = run, resume_step
        # TensorBoard drops events at or after the purge step; those at the checkpoint's own step are kept, as in metrics.csv
        run.tensorboard_purge_step = None if resume_step is None else resume_step + 1  # set before any on_start opens the writer
        self.file: Any = None

    def on_start(self, trainer: Any) -> None:
        path = self.run.file(RunFolder.METRICS)
        if self.resume_step is not None:
            self.run.truncate_scalars(self.resume_step)
        new = not path.exists()
        self.file = path.open("a", newline="")
        self.csv = csv.writer(self.file, lineterminator=SCALAR_LINE_END)  # the line ends truncate_scalars writes
        if new:
            self.csv.writerow(["step", "epoch", "name", "value"])
        self.tb = self.run.tensorboard()

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
                self.run.close_tensorboard()  # the last user: recipe callbacks' on_end ran before this one
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
    A warning raised while a bar is drawn is printed above it; otherwise it waits for the epoch's
    line, so that nothing lands in the middle of a bar."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.waiting: list[str] = []  # warnings raised while no bar was drawn, printed after the epoch's line

    def on_start(self, trainer: Any) -> None:
        if trainer.rank == 0 and trainer.step > 0:
            print(f"resuming at epoch {trainer.epoch + 1}, minibatch {trainer.step}")

    def on_step_end(self, trainer: Any, logs: Mapping[str, Tensor]) -> None:
        if not self.enabled or trainer.rank != 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.flush()
            left = min(trainer.steps_per_epoch, trainer.total_steps - trainer.step + 1)
            self.bar = tqdm(total=left, desc=f"epoch {trainer.epoch + 1}/{trainer.cfg.epochs}", unit="batch",
                            dynamic_ncols=True, leave=False, disable=None)  # None: no bar when the output is not a terminal
        self.bar.update(1)
        if trainer.step % max(trainer.cfg.log_every, 10) == 0:
            shown = {k.split("/")[-1]: f"{float(v):.3g}" for k, v in logs.items() if k.startswith("ae/") and k != "ae/total"}
            self.bar.set_postfix({"step": trainer.step, **shown})
        if self.bar.n >= self.bar.total:
            self.close()  # before the epoch's warnings and summary line are printed

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        if trainer.rank != 0:
            return
        self.close()
        print(epoch_line(trainer.epoch, trainer.cfg.epochs, trainer.step, means))
        self.flush()

    def on_warning(self, trainer: Any, message: str) -> None:
        if self.bar is not None and not self.bar.disable:
            self.bar.write(message, file=sys.stdout)
        else:
            self.waiting.append(message)

    def on_end(self, trainer: Any, summary: dict[str, float]) -> None:
        self.close()
        self.flush()

    def on_failure(self, trainer: Any, error: BaseException) -> None:
        self.close()
        self.flush()

    def flush(self) -> None:
        for message in self.waiting:
            print(message)
        self.waiting = []

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_line(epoch: int, epochs: int, step: int, means: Mapping[str, float]) -> str:
    """'epoch 3/30  step 48  reconstruction 3.46 (val 3.52)  g_rec 1.18  g_mix 1.18  (2.9 s)': the epoch's mean
    autoencoder terms (not their blind-guess levels), the validation reconstruction beside the training one."""
    parts = []
    for key, value in means.items():
        if key.startswith("epoch/ae/") and not key.endswith("_chance") and key != "epoch/ae/total":
            name = key.split("/")[-1]
            val = means.get("epoch/val/reconstruction") if key == "epoch/ae/reconstruction" else None
            parts.append(f"{name} {value:.4g}" + (f" (val {val:.4g})" if val is not None else ""))
    return f"epoch {epoch}/{epochs}  step {step}  {'  '.join(parts)}  ({means.get('epoch/seconds', 0):.1f} s)"


class TrainLog(Callback):
    """Everything printed while training (on stdout and stderr: the epoch lines, warnings, messages of
    other callbacks and of Python's warnings) also goes to ``train.log`` in the run folder, without the
    progress bar: a line is what is left on a terminal once its carriage returns are done, so the bar's
    redraws never reach the file. A resumed run appends to it. The streams are restored when training
    ends, however it ends; :meth:`closer` gives the callback that does that last."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run
        self.file: Any = None
        self.saved: tuple[Any, Any] | None = None  # the streams replaced while training
        self.tees: tuple[_Tee, _Tee] | None = None
        self.started = 0.0

    def on_start(self, trainer: Any) -> None:
        import time

        self.started = time.perf_counter()
        try:
            self.file = self.run.file(RunFolder.TRAIN_LOG).open("a", encoding="utf-8")
        except OSError:
            return  # no log rather than no training
        where = f"resuming at epoch {trainer.epoch + 1}, minibatch {trainer.step}" if trainer.step > 0 else "starting"
        self.note(f"== {now()}: mixframe training {where}; run folder {self.run.path}")
        self.saved = (sys.stdout, sys.stderr)
        self.tees = (_Tee(sys.stdout, self.note), _Tee(sys.stderr, self.note))
        sys.stdout, sys.stderr = self.tees

    def note(self, line: str) -> None:
        if self.file is None:
            return
        try:
            self.file.write(line + "\n")
            self.file.flush()
        except OSError:  # a full disk: the log stops, training goes on
            self.file = None

    def closer(self) -> Callback:
        """The callback that ends the log; place it after every callback that prints."""
        log = self

        class CloseTrainLog(Callback):
            def on_end(self, trainer: Any, summary: dict[str, float]) -> None:
                log.finish(f"finished at epoch {trainer.epoch}, step {trainer.step}")

            def on_failure(self, trainer: Any, error: BaseException) -> None:
                log.finish(f"stopped at epoch {trainer.epoch}, step {trainer.step}: {type(error).__name__}: {error}")

        return CloseTrainLog()

    def finish(self, how: str) -> None:
        import time

        if self.saved is not None and self.tees is not None:
            for tee in self.tees:
                tee.end()
            if sys.stdout is self.tees[0]:  # unless someone replaced it meanwhile
                sys.stdout = self.saved[0]
            if sys.stderr is self.tees[1]:
                sys.stderr = self.saved[1]
            self.saved = None
        self.note(f"== {now()}: {how} ({time.perf_counter() - self.started:.1f} s)")
        if self.file is not None:
            self.file.close()
            self.file = None


class _Tee:
    """A text stream that writes through to ``stream`` and hands each finished line to ``line``, as a
    terminal would show it: a carriage return starts the line over (so a progress bar's redraws and its
    clearing leave nothing), terminal escape sequences are dropped, blank lines are skipped."""

    ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

    def __init__(self, stream: Any, line: Any) -> None:
        self.stream, self.line, self.pending = stream, line, ""

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        for piece in re.split(r"(\r|\n)", text):
            if piece == "\r":
                self.pending = ""
            elif piece == "\n":
                self.end()
            else:
                self.pending += piece
        return written if written is not None else len(text)

    def end(self) -> None:
        line = self.ESCAPES.sub("", self.pending).rstrip()
        self.pending = ""
        if line.strip():
            self.line(line)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...: the terminal's
        return getattr(self.stream, name)


def run_folder_callbacks(run: RunFolder | None, *, progress: bool, resume_step: int | None = None) -> list[Callback]:
    """What a run folder needs (none on ranks above 0, where ``run`` is None): its train.log (first, so
    that it hears everything printed, and last, to close it), logs, checkpoints, status; and the progress display."""
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

