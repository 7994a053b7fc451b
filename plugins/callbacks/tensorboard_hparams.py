"""The run's settings in TensorBoard: the recipe as text, and its values in the HParams tab.

At the start the resolved recipe goes to the TEXT tab (``recipe``); at the end every scalar value
of the recipe (``train.lr``, ``mixer.kind``, ``regularizers.0.weight``, ...) goes to the HParams tab
with the run's final epoch losses (``epoch/ae/reconstruction``, ``epoch/val/reconstruction``,
``epoch/ae/total``, those it logged), so that TensorBoard lists and compares runs by their settings
(``tensorboard --logdir runs``). Rank 0 of a run folder only. A default callback: every recipe gets
it unless it lists its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from mixframe import BuildContext, Callback, Component, hookimpl
from mixframe.kernel.interfaces import VALIDATION_LOSS, TrainerView

FINAL = ("epoch/ae/reconstruction", f"epoch/{VALIDATION_LOSS}", "epoch/ae/total")
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


class TensorBoardHparams(Callback):
    """Writes the recipe (text) at the start and the hyperparameters with the final losses at the end."""

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
        from torch.utils.tensorboard.summary import hparams

        writer = trainer.run.tensorboard()  # the run's shared writer
        final = {key: float(trainer.means[key]) for key in FINAL if key in trainer.means}
        for summary_proto in hparams(flatten(trainer.recipe.to_dict()), final):  # experiment, session start, session end
            writer.file_writer.add_summary(summary_proto, trainer.step)
        writer.flush()


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="tensorboard_hparams", implementation=TensorBoardHparams, config=TensorBoardHparamsConfig,
                      default=True, summary="the recipe in TensorBoard: as text, and its values with the final losses in the HParams tab")]
