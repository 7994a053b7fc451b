"""Warnings for training that looks stuck: a critic at its blind-guess level, a decoder at the mean image.

* Critic terms: each critic term is compared with its blind-guess value (the loss of the best
  constant critic, ``Regularizer.critic_chance``). A term within 1% of that value for ``patience``
  epochs is reported. A critic that learns nothing sits there, but so does a critic that learns and
  is fooled as often as not: the warning says only what the number shows.
* Reconstruction: compared with the loss of outputting the mean training example. No better than
  it and nearly unchanged for ``patience`` epochs (or no better at the end) means the decoder
  ignores its input.

Both levels are logged beside the losses (``epoch/..._chance``), so loss_curves.png draws them dashed.
A default callback: every recipe gets it unless it lists its own.
"""

from __future__ import annotations

from typing import Any

import attrs

from mixframe import BuildContext, Callback, Component, hookimpl, param, positive


@attrs.frozen(kw_only=True)
class StallWatchConfig:
    patience: int = param(3, help="warn when a critic's loss stays at its blind-guess value, or the reconstruction at the mean "
                                  "image's, this many epochs", validator=positive)


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
        if loss > 10 * self.level:
            advice = "the loss is far above that level, so training is unstable: lower train.lr (or the loss weights)."
        else:
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


class StallWatch(Callback):
    """Logs each critic's blind-guess level and the mean-image level, and warns when a loss sits on one."""

    def __init__(self, config: StallWatchConfig, context: BuildContext) -> None:
        self.patience = config.patience
        self.stalled: dict[str, int] = {}

    def on_start(self, trainer: Any) -> None:
        self.chance = {f"critic/{name}/{k}": v for name, reg in trainer.critics for k, v in reg.critic_chance().items()}
        self.reconstruction = ReconstructionWatch(trainer.mean_image_loss(), self.patience)

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        for key, level in self.chance.items():
            means[f"epoch/{key}_chance"] = level
            mean = means.get(f"epoch/{key}")
            # A critic at its blind-guess level sits within a fraction of a percent of it; one in a live game
            # usually wanders several percent around it from epoch to epoch.
            at_level = mean is not None and abs(mean - level) <= 0.01 * max(abs(level), 1e-3)
            self.stalled[key] = self.stalled.get(key, 0) + 1 if at_level else 0
            if self.stalled[key] == self.patience:
                trainer.warn(f"warning: {key} has stayed within 1% of its blind-guess value {level:.4g} for {self.patience} epochs. "
                             "Either the critic tells real from decoded no better than a constant guess (then its regularizer "
                             "adds little), or the autoencoder fools it as often as not; this number cannot tell which. "
                             "If the decoded mixes look no better than a plain autoencoder's, try a larger or un-normalised "
                             "critic (spectral_norm: false) or a higher train.critic_lr.")
        means["epoch/ae/reconstruction_chance"] = self.reconstruction.level
        loss = means.get("epoch/ae/reconstruction")
        if loss is not None and (message := self.reconstruction.update(loss, trainer.done)):
            trainer.warn(message)


@hookimpl
def mixframe_callbacks() -> list[Component]:
    return [Component(kind="callback", name="stall_watch", implementation=StallWatch, config=StallWatchConfig,
                      summary="warns when a critic sits at its blind-guess level or the decoder at the mean image", default=True)]
