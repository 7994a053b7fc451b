"""The validation reconstruction loss every epoch, and the best checkpoint by it.

At the end of every ``every``-th epoch (and of the last one) the autoencoder reconstructs the
first ``limit`` examples of the validation split, in eval mode and without gradients, and the mean
of the recipe's reconstruction loss (weighted by its ``weight``, as ``ae/reconstruction`` is) is
logged as ``epoch/val/reconstruction``: metrics.csv, TensorBoard, the epoch's line, loss_curves.png
and the report show it beside the training loss, so that overfitting shows as the two parting.

With ``best_checkpoint`` the state of the epoch with the lowest validation loss so far is written
to ``checkpoint_best.pt`` beside ``checkpoint.pt`` (the same format, with ``val_reconstruction``
added; ``mixframe.load_run(path, best=True)`` loads it). On resume the best so far is read back
from metrics.csv, so a resumed run keeps the true best.

The pass draws no random numbers and leaves the model in training mode: it changes nothing of the
training itself. A default callback: every recipe gets it unless it lists its own.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from mixframe import BuildContext, Callback, Component, RunFolder, hookimpl, param, positive

NAME = "val/reconstruction"


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
        self.best = math.inf
        self.warned = False

    def on_start(self, trainer: Any) -> None:
        if trainer.run is not None and trainer.step > 0:  # a resume: the best so far, up to the checkpoint's epoch
            done = [value for epoch, value in trainer.run.epoch_curves().get(NAME, []) if epoch <= trainer.epoch]
            self.best = min(done, default=math.inf)

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        if trainer.rank != 0 or not (trainer.done or trainer.epoch % self.config.every == 0):
            return
        loss = self.loss(trainer)
        if loss is None:
            return
        means[f"epoch/{NAME}"] = loss
        if self.config.best_checkpoint and trainer.run is not None and loss < self.best:
            from mixframe.runs.folder import save_checkpoint

            save_checkpoint(trainer.run.file(RunFolder.CHECKPOINT_BEST), {**trainer.state(), "val_reconstruction": loss})
        self.best = min(self.best, loss)

    def loss(self, trainer: Any) -> float | None:
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
        model.eval()
        total = 0.0
        try:
            with torch.no_grad():
                for start in range(0, n, self.config.batch_size):
                    x = torch.stack([split[i][0] for i in range(start, min(start + self.config.batch_size, n))]).to(trainer.device)
                    total += float(model.reconstruction_loss(model.decoder(model.encoder(x)), x)) * len(x)
        finally:
            model.train()
        return total / n


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="validation", implementation=Validation, config=ValidationConfig, default=True,
                      summary="the validation reconstruction loss every epoch (epoch/val/reconstruction); checkpoint_best.pt by it")]
