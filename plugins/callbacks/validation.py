"""The validation reconstruction loss every epoch, and the best checkpoint by it.

At the end of every ``every``-th epoch (and of the last one) the autoencoder reconstructs the
first ``limit`` examples of the validation split, in eval mode and without gradients, and the mean
of the recipe's reconstruction loss (weighted by its ``weight``, as ``ae/reconstruction`` is) is
logged through ``trainer.log_validation`` (as ``epoch/val/reconstruction``): metrics.csv, TensorBoard,
the epoch's line, loss_curves.png and the report show it beside the training loss, so that
overfitting shows as the two parting.

With ``best_checkpoint`` the run folder keeps the state of the epoch with the lowest validation loss
so far in ``checkpoint_best.pt`` (``mixframe.load_run(path, best=True)`` loads it).

The pass draws no random numbers and leaves the model in training mode: it changes nothing of the
training itself. A default callback: every recipe gets it unless it lists its own.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from mixframe import BuildContext, Callback, Component, hookimpl, param, positive
from mixframe.kernel.interfaces import TrainerView


@attrs.frozen(kw_only=True)
class ValidationConfig:
    every: int = param(1, help="compute the validation loss every this many epochs (and after the last)", validator=positive)
    limit: int | None = param(2048, help="validation examples used (the split's first ones, the same every time); null: all",
                              validator=positive)
    batch_size: int = param(256, help="examples per forward pass", validator=positive)
    best_checkpoint: bool = param(True, help="keep checkpoint_best.pt: the state of the epoch with the lowest validation loss")


class Validation(Callback):
    """Logs ``epoch/val/reconstruction`` and keeps the best checkpoint (rank 0 only)."""

    def __init__(self, config: ValidationConfig, context: BuildContext) -> None:
        self.config = config
        self.warned = False

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        if trainer.rank != 0 or not (trainer.done or trainer.epoch % self.config.every == 0):
            return
        loss = self.loss(trainer)
        if loss is not None:
            trainer.log_validation(loss, keep_best=self.config.best_checkpoint)

    def loss(self, trainer: TrainerView) -> float | None:
        """The mean reconstruction loss over the validation examples, or None (with a warning, once) when there are none."""
        import torch

        split = trainer.data.val
        n = len(split) if self.config.limit is None else min(self.config.limit, len(split))
        if n == 0:
            if not self.warned:
                self.warned = True
                trainer.warn("warning: the validation split is empty, so no validation loss is logged and no best checkpoint is kept; "
                             "give the dataset a validation share (for example data.val_fraction)")
            return None
        model = trainer.model
        total = 0.0
        with model.evaluating():
            for start in range(0, n, self.config.batch_size):
                x = torch.stack([split[i][0] for i in range(start, min(start + self.config.batch_size, n))]).to(trainer.device)
                total += float(model.reconstruction_loss(model.decoder(model.encoder(x)), x)) * len(x)
        return total / n


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="validation", implementation=Validation, config=ValidationConfig, default=True,
                      summary="the validation reconstruction loss every epoch (epoch/val/reconstruction); checkpoint_best.pt by it")]
