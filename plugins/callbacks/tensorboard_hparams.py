"""The run's settings in TensorBoard: the recipe as text, and its values with the run's results in the HParams tab.

At the start the resolved recipe goes to the TEXT tab (``recipe``). The HParams session is a TensorBoard
run of its own, ``tb/hparams`` in the run folder: every scalar value of the recipe (``train.lr``,
``mixer.kind``, ``regularizers.0.weight``, ...) as the session's hyperparameters, and as its metrics the
final epoch losses (``epoch/ae/reconstruction``, ``epoch/val/reconstruction``, ``epoch/ae/total``, those it
logged), written when training ends, and every evaluation's numbers (``eval/test/mix_fid``,
``eval/val/...`` for a study's tuning runs), written when the run is evaluated (``mixframe evaluate``,
``Run.evaluate``, a sweep or a study: ``Callback.on_evaluation``). So TensorBoard lists and compares runs
by their settings and their evaluation metrics (``tensorboard --logdir runs``).

Why a run of its own, and no experiment summary: TensorBoard keeps the first summary it reads of a tag
in a run, and takes the first experiment summary it finds for every run of a log folder, so the metrics
named when training ended would hide those of a later evaluation, and one run's names every other
run's. Without one, TensorBoard lists as metrics every scalar of every session's own run: here exactly
the final losses and the evaluation numbers, of all runs together. Each training's end starts the
session afresh (a resumed run shows its new settings; evaluations of the earlier model are dropped).
Rank 0 of a run folder only. A default callback: every recipe gets it unless it lists its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from mixframe import BuildContext, Callback, Component, MixframeError, RunFolder, hookimpl
from mixframe.kernel.interfaces import VALIDATION_LOSS, RunFolderView, TrainerView

FINAL = ("epoch/ae/reconstruction", f"epoch/{VALIDATION_LOSS}", "epoch/ae/total")
SESSION = f"{RunFolder.TENSORBOARD}/hparams"  # the HParams session's TensorBoard run, in the run folder
Scalar = bool | int | float | str


@attrs.frozen(kw_only=True)
class TensorBoardHparamsConfig:
    pass


def flatten(value: Any, prefix: str = "") -> dict[str, Scalar]:
    """``{"train": {"lr": 1e-4}, "regularizers": [{"kind": "acai"}]}`` -> ``{"train.lr": 1e-4, "regularizers.0.kind": "acai"}``;
    a list of plain values stays one value (as text), None becomes "null"."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, (list, tuple)) and any(isinstance(item, (dict, list, tuple)) for item in value):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}{i}.").items()}
    name = prefix.rstrip(".")
    if value is None:
        return {name: "null"}
    if isinstance(value, (bool, int, float, str)):
        return {name: value}
    return {name: str(list(value)) if isinstance(value, (list, tuple)) else str(value)}


def write_session(run: RunFolderView, recipe: Any, values: Mapping[str, float], step: int, *, fresh: bool = False) -> None:
    """Add ``values`` (metric name -> number, at ``step``) to the run's HParams session, whose hyperparameters are the
    recipe's values; ``fresh`` drops what the session held first. A failed write is a MixframeError naming the folder."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    folder = run.file(SESSION)
    _, start, end = hparams(flatten(recipe.to_dict()), {})  # no experiment summary: see the module's docstring
    try:
        if fresh and folder.is_dir():
            for old in folder.glob("events.out.tfevents.*"):
                old.unlink()
        writer = SummaryWriter(str(folder))
        try:
            writer.file_writer.add_summary(start, step)
            for name, value in values.items():
                if math.isfinite(value):
                    writer.add_scalar(name, value, step)
            writer.file_writer.add_summary(end, step)
        finally:
            writer.close()
    except OSError as err:
        raise MixframeError(f"the TensorBoard HParams session {folder} cannot be written: {err.strerror or err} "
                            "(free space, or make the run folder writable)") from None


class TensorBoardHparams(Callback):
    """Writes the recipe (text) at the start, its values with the final losses at the end, and each evaluation's numbers."""

    def __init__(self, config: TensorBoardHparamsConfig, context: BuildContext) -> None:
        pass

    def on_start(self, trainer: TrainerView) -> None:
        if trainer.run is None:
            return
        text = trainer.recipe.to_yaml()  # markdown: a code block
        trainer.run.tensorboard().add_text("recipe", "\n".join("    " + line for line in text.splitlines()), trainer.step)

    def on_end(self, trainer: TrainerView, summary: Mapping[str, float]) -> None:
        if trainer.run is None:
            return
        final = {key: float(trainer.means[key]) for key in FINAL if key in trainer.means}
        write_session(trainer.run, trainer.recipe, final, trainer.step, fresh=True)

    def on_evaluation(self, run: RunFolderView, recipe: Any, values: Mapping[str, float], *, split: str, step: int) -> None:
        write_session(run, recipe, {f"eval/{split}/{key}": float(value) for key, value in values.items()}, step)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="tensorboard_hparams", implementation=TensorBoardHparams, config=TensorBoardHparamsConfig,
                      default=True, summary="the recipe in TensorBoard: as text, and its values with the final losses and "
                                            "the evaluation metrics in the HParams tab")]
