"""Warnings for training that looks stuck: a critic at its blind-guess level, a decoder at the mean image.

* Critic terms: each critic term is compared with its blind-guess value (the loss of the best
  constant critic, ``Regularizer.critic_chance``). A term within 1% of that value for ``patience``
  epochs is reported. A critic that learns nothing sits there, but so does a critic that learns and
  is fooled as often as not; the loss cannot tell which.
* Critic probe (blind or fooled): for a critic that can score any batch (``critic_score``, the
  :class:`~mixframe.kernel.interfaces.ScoresData` capability), every ``probe_every`` epochs, on the last
  epoch and whenever a term reaches its blind-guess level, the critic scores a fixed held-out batch
  of real validation examples against obvious fakes it was never trained on: data-space blends of
  two real examples (weight 0.3 to 0.7: ghosted double pictures, or points between the spiral's
  arms). The AUC of telling them apart is logged (``epoch/critic/NAME/probe_auc``, drawn in
  loss_curves.png; 0.5 = chance) and says which case a stalled loss is: a fooled critic still
  separates them (AUC >= ``fooled_auc``), a blind one does not (AUC <= ``blind_auc``). The stall
  warning names the case, and a critic whose AUC stays at or below ``blind_auc`` for ``patience``
  probes in a row is reported as blind even when its loss is not at the blind-guess level (a frozen
  critic sits near ln 2 per term, not at a constant guess's ln 3 and ln 1.5). Measured on the
  spiral recipe: frozen critics 0.47-0.49, working ones 0.55-0.65 in their first epochs and 0.7-0.8
  later, hence the defaults 0.6 and 0.65. Uniform noise is not a probe: it lies where no data or
  decoded example ever was, where a critic's score is an arbitrary extrapolation (a working spiral
  critic's AUC against noise wandered between 0.43 and 0.79). The probe runs in eval mode without
  gradients and with its own seeded generator, so it does not change training.
* Reconstruction: compared with the loss of outputting the mean training example. No better than
  it and nearly unchanged for ``patience`` epochs (or no better at the end) means the decoder
  ignores its input.

Both levels are logged beside the losses (``trainer.log_level``: ``epoch/..._chance``), so loss_curves.png
draws them dashed. Its counters are part of every checkpoint (``state_dict``), so a resumed run warns
as the uninterrupted one would. A default callback: every recipe gets it unless it lists its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from mixframe import BuildContext, Callback, Component, DataBundle, hookimpl, in_range, param, positive
from mixframe.kernel.interfaces import ModelView, ScoresData, TrainerView

PROBE_PANEL = "critic probe: AUC real vs blends (dashed: blind)"


@attrs.frozen(kw_only=True)
class StallWatchConfig:
    patience: int = param(3, help="warn when a critic's loss stays at its blind-guess value, or the reconstruction at the mean "
                                  "image's, this many epochs (or a critic's probe AUC at the blind level this many probes)",
                          validator=positive)
    probe_every: int = param(2, help="probe each critic (AUC of held-out real data against data-space blends) every this many epochs",
                             validator=positive)
    probe_size: int = param(256, help="real examples in the probe batch (from the validation split), and as many blends",
                            validator=positive)
    blind_auc: float = param(0.6, help="a probe AUC at or below this means the critic is blind", validator=in_range(0.0, 1.0))
    fooled_auc: float = param(0.65, help="a probe AUC at or above this, with the loss at its blind-guess level, means the critic "
                                        "learned and is fooled", validator=in_range(0.0, 1.0))


def auc(positive: Tensor, negative: Tensor) -> float:
    """Probability that a random positive scores above a random negative (ties count half): the area under the ROC curve."""
    pos, neg = positive.detach().double().flatten()[:, None], negative.detach().double().flatten()[None, :]
    if not pos.numel() or not neg.numel():
        return float("nan")
    return float(((pos > neg).double() + 0.5 * (pos == neg).double()).mean())


def probe_batch(data: DataBundle, size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(real, fakes): up to ``size`` held-out validation examples, and as many data-space blends
    ``w x_a + (1 - w) x_b`` of two distinct validation examples (w ~ U(0.3, 0.7)); fixed by ``seed``, whatever the run."""
    gen = torch.Generator().manual_seed(seed)
    val = data.val
    n = min(size, len(val))
    real = torch.stack([val[int(i)][0] for i in torch.randperm(len(val), generator=gen)[:n]]).float()
    a = torch.randint(len(val), (n,), generator=gen)
    b = (a + 1 + torch.randint(max(len(val) - 1, 1), (n,), generator=gen)) % len(val)
    xa = torch.stack([val[int(i)][0] for i in a]).float()
    xb = torch.stack([val[int(i)][0] for i in b]).float()
    w = (0.3 + 0.4 * torch.rand(n, generator=gen)).view(-1, *([1] * (xa.dim() - 1)))
    return real, w * xa + (1 - w) * xb


@torch.no_grad()
def probe_auc(critic: ScoresData, real: Tensor, fakes: Tensor) -> float:
    """AUC of ``critic.critic_score`` telling ``real`` from ``fakes``, in eval mode (the critic's mode is restored)."""
    module = critic if isinstance(critic, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        return auc(critic.critic_score(real), critic.critic_score(fakes))
    finally:
        if module is not None:
            module.train(was_training)


@torch.no_grad()
def mean_image_loss(data: DataBundle, model: ModelView, limit: int = 4096) -> float:
    """Reconstruction loss of drawing the mean training image for every input (over the first ``limit``
    training examples): the plateau a decoder that ignores its input sits on."""
    first = Subset(data.train, range(min(limit, len(data.train))))
    x = torch.cat([x for x, _ in DataLoader(first, batch_size=512)]).float()
    mean = x.mean(dim=0, keepdim=True)
    if model.decoder.outputs_logits:
        mean = torch.logit(mean.clamp(1e-4, 1 - 1e-4))
    return float(model.reconstruction_loss(mean.expand_as(x), x))


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
        self.config = config
        self.patience = config.patience
        self.stalled: dict[str, int] = {}
        self.blind_probes: dict[str, int] = {}
        self.told_fooled: set[str] = set()
        self.reconstruction: ReconstructionWatch | None = None
        self.restored: dict[str, Any] = {}  # the reconstruction watch's counters from a checkpoint

    def state_dict(self) -> dict[str, Any]:
        watch = self.reconstruction
        return {"stalled": dict(self.stalled), "blind_probes": dict(self.blind_probes), "told_fooled": sorted(self.told_fooled),
                "reconstruction": {} if watch is None else {"previous": watch.previous, "flat_epochs": watch.flat_epochs,
                                                            "warned": watch.warned}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.stalled, self.blind_probes = dict(state.get("stalled", {})), dict(state.get("blind_probes", {}))
        self.told_fooled, self.restored = set(state.get("told_fooled", ())), dict(state.get("reconstruction", {}))

    def on_start(self, trainer: TrainerView) -> None:
        self.chance = {f"critic/{name}/{k}": v for name, reg in trainer.critics for k, v in reg.critic_chance().items()}
        self.reconstruction = ReconstructionWatch(mean_image_loss(trainer.data, trainer.model), self.patience)
        for key, value in self.restored.items():
            setattr(self.reconstruction, key, value)
        self.probed = {name: reg for name, reg in trainer.critics if isinstance(reg, ScoresData)}
        self.probe: tuple[Tensor, Tensor] | None = None
        if self.probed:
            real, fakes = probe_batch(trainer.data, self.config.probe_size)
            self.probe = real.to(trainer.device), fakes.to(trainer.device)

    def critic_auc(self, name: str, trainer: TrainerView, aucs: dict[str, float]) -> float | None:
        """This epoch's probe AUC of critic ``name`` (computed once per epoch and logged), or None without the capability."""
        if name not in aucs and name in self.probed and self.probe is not None:
            aucs[name] = probe_auc(self.probed[name], *self.probe)
            trainer.log(f"critic/{name}/probe_auc", aucs[name], panel=PROBE_PANEL)
            trainer.log_level(f"critic/{name}/probe_auc", 0.5)  # drawn as the blind level in loss_curves.png
        return aucs.get(name)

    def verdict(self, value: float | None) -> str:
        """What a stalled critic term means, given the critic's probe AUC."""
        if value is None:
            return ("Either the critic tells real from decoded no better than a constant guess (then its regularizer adds little), or "
                    "the autoencoder fools it as often as not; this critic offers no critic_score, so the probe cannot tell which. "
                    "If the decoded mixes look no better than a plain autoencoder's, try a larger or un-normalised critic "
                    "(spectral_norm: false) or a higher train.critic_lr.")
        if value >= self.config.fooled_auc:
            return (f"Fooled, not blind: the critic still tells held-out real data from data-space blends it was never trained "
                    f"on (probe AUC {value:.2f}), so it has learned the data and the autoencoder's outputs fool it as often as not. "
                    "The adversary is doing its work; nothing to fix unless the decoded mixes look no better than a plain autoencoder's "
                    "(then try a higher adversarial weight).")
        if value <= self.config.blind_auc:
            return (f"Blind: the critic tells held-out real data from data-space blends hardly better than chance (probe AUC "
                    f"{value:.2f}; 0.5 is chance): what it has learned does not tell it that a blend of two real examples is not real, "
                    "so, while this lasts, it pushes decoded mixes little towards the data (a critic that judges reconstructions "
                    "only may still use other cues on those). Early in training a critic may still learn (the probe is logged as "
                    "epoch/critic/NAME/probe_auc); if it stays blind, try a higher train.critic_lr, a larger critic, or spectral_norm: false.")
        return (f"Unclear: the critic tells held-out real data from data-space blends only partly (probe AUC {value:.2f}, "
                f"between blind <= {self.config.blind_auc} and fooled >= {self.config.fooled_auc}); it learned a little. "
                "If the decoded mixes look no better than a plain autoencoder's, try a higher train.critic_lr or a larger critic.")

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        aucs: dict[str, float] = {}
        if trainer.epoch % self.config.probe_every == 0 or trainer.done:
            for name in self.probed:
                self.critic_auc(name, trainer, aucs)
        for key, level in self.chance.items():
            trainer.log_level(key, level)
            mean = means.get(f"epoch/{key}")
            # A critic at its blind-guess level sits within a fraction of a percent of it; one in a live game
            # usually wanders several percent around it from epoch to epoch.
            at_level = mean is not None and abs(mean - level) <= 0.01 * max(abs(level), 1e-3)
            self.stalled[key] = self.stalled.get(key, 0) + 1 if at_level else 0
            if self.stalled[key] == self.patience:
                critic = key.split("/")[1]
                value = self.critic_auc(critic, trainer, aucs)
                fooled = value is not None and value >= self.config.fooled_auc
                if fooled and critic in self.told_fooled:
                    continue  # a working, fooled critic is said once per run, not for every term every time it settles
                if fooled:
                    self.told_fooled.add(critic)
                trainer.warn(f"{'note' if fooled else 'warning'}: {key} has stayed within 1% of its blind-guess value {level:.4g} "
                             f"for {self.patience} epochs. " + self.verdict(value))
        for name in self.probed:
            value = aucs.get(name)
            if value is None:
                continue
            self.blind_probes[name] = self.blind_probes.get(name, 0) + 1 if value <= self.config.blind_auc else 0
            if self.blind_probes[name] == self.patience:
                trainer.warn(f"warning: critic/{name} has told held-out real data from data-space blends no better than "
                             f"probe AUC {value:.2f} (<= {self.config.blind_auc}) for {self.patience} probes in a row (one every "
                             f"{self.config.probe_every} epochs). " + self.verdict(value))
        watch = self.reconstruction
        if watch is None:  # on_start not heard
            return
        trainer.log_level("ae/reconstruction", watch.level)
        loss = means.get("epoch/ae/reconstruction")
        if loss is not None and (message := watch.update(loss, trainer.done)):
            trainer.warn(message)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="stall_watch", implementation=StallWatch, config=StallWatchConfig,
                      summary="warns when a critic sits at its blind-guess level or the decoder at the mean image", default=True)]
