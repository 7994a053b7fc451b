"""The critic probe: a blind critic is told apart from a fooled one, and the warnings say which they saw."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor

import mixframe
from mixframe.kernel.engine import Trainer
from mixframe.kernel.interfaces import DataContext, ScoresData
from mixframe.kernel.model import Model
from mixframe.kernel.recipe import load_recipe
from mixframe.runs.folder import RunFolder
from mixframe.tools.pictures import loss_panels
from mixframe_plugins.callbacks.stall_watch import PROBE_PANEL, StallWatch, StallWatchConfig, auc, probe_batch
from mixframe_plugins.datasets.spiral import SpiralConfig, build

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
TINY = ["data.n_train=512", "data.n_val=256", "data.n_test=128", "train.batch_size=64", "train.epochs=8", "train.lr=1e-3",
        "encoder.hidden=[32, 32]", "decoder.hidden=[32, 32]", "discriminator.hidden=[32, 32]",
        "callbacks=[{kind: stall_watch, probe_every: 1}]"]


class FreezeCritics(mixframe.Callback):
    """A deliberately broken critic: its optimizer's learning rate set to 0 (train.critic_lr must be positive)."""

    def on_start(self, trainer) -> None:  # noqa: ANN001
        for opt in trainer.critic_opts.values():
            for group in opt.param_groups:
                group["lr"] = 0.0


def test_auc_counts_pairs_ranked_right_and_ties_as_half() -> None:
    assert auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert auc(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == 0.0
    assert auc(torch.ones(5), torch.ones(7)) == 0.5
    assert auc(torch.tensor([1.0, 3.0]), torch.tensor([2.0])) == 0.5


def test_probe_batch_is_fixed_held_out_and_blended() -> None:
    data = build(SpiralConfig(n_train=64, n_val=40, n_test=8), DataContext())
    real, fakes = probe_batch(data, 32)
    again_real, again_fakes = probe_batch(data, 32)
    assert torch.equal(real, again_real) and torch.equal(fakes, again_fakes)
    val = torch.stack([data.val[i][0] for i in range(len(data.val))])
    assert real.shape == fakes.shape == (32, 2)
    assert all(bool((val == r).all(dim=1).any()) for r in real)  # real examples come from the validation split
    # blends lie between the arms: most are off the spiral, while the real points are on it
    dist_real = data.generator.distance_to_manifold(real)
    dist_fake = data.generator.distance_to_manifold(fakes)
    assert (dist_real < data.generator.on_manifold_threshold).float().mean() > 0.95
    assert (dist_fake < data.generator.on_manifold_threshold).float().mean() < 0.6


def _probe_values(run: mixframe.Run) -> list[float]:
    return [v for _, v in RunFolder(run.dir).epoch_curves()["epoch/critic/0_adversarial/probe_auc"]]


def test_a_frozen_critic_is_told_blind_and_a_working_one_is_not(tmp_path: Path) -> None:
    working = mixframe.train(SPIRAL, TINY, out=tmp_path, name="working", progress=False)
    frozen = mixframe.train(SPIRAL, TINY, out=tmp_path, name="frozen", callbacks=[FreezeCritics()], progress=False)
    work_auc, frozen_auc = _probe_values(working), _probe_values(frozen)
    assert len(work_auc) == len(frozen_auc) == 8  # probe_every: 1
    assert max(abs(v - 0.5) for v in frozen_auc) < 0.05  # an untrained critic ranks blends like real data
    assert work_auc[-1] > 0.6 and min(work_auc[-3:]) > max(frozen_auc) + 0.1
    frozen_warnings = RunFolder(frozen.dir).file(RunFolder.WARNINGS).read_text()
    assert "critic/0_adversarial has told held-out real data from data-space blends no better than" in frozen_warnings
    assert "Blind:" in frozen_warnings and "train.critic_lr" in frozen_warnings
    working_log = RunFolder(working.dir).file(RunFolder.WARNINGS)
    assert "Blind:" not in (working_log.read_text() if working_log.is_file() else "")
    # the probe is logged beside its blind level 0.5; loss_curves.png draws it in the panel the stall watch names
    curves = RunFolder(working.dir).epoch_curves()
    assert curves["epoch/critic/0_adversarial/probe_auc_chance"][-1][1] == 0.5
    panels = dict(loss_panels(curves, {"critic/0_adversarial/probe_auc": PROBE_PANEL}))
    assert list(panels[PROBE_PANEL]) == ["epoch/critic/0_adversarial/probe_auc"]
    assert "epoch/critic/0_adversarial/probe_auc" not in panels["critic terms (dashed: blind guess)"]


class StubCritic(torch.nn.Module):
    """A critic whose scores we choose: ``sees`` True ranks real points (on the spiral) above blends."""

    def __init__(self, sees: bool) -> None:
        super().__init__()
        self.sees = sees
        self.curve = build(SpiralConfig(n_train=8, n_val=8, n_test=8), DataContext()).generator

    def critic_score(self, x: Tensor) -> Tensor:
        return -self.curve.distance_to_manifold(x) if self.sees else torch.zeros(len(x))

    def critic_chance(self) -> dict[str, float]:
        return {"d_real": 1.0986}


class Watched(SimpleNamespace):
    """What a stall watch sees of a trainer (a TrainerView), recording what it logs and says."""

    def __init__(self, critic: torch.nn.Module) -> None:
        model = SimpleNamespace(decoder=SimpleNamespace(outputs_logits=False), reconstruction_loss=lambda out, x: torch.tensor(1.0))
        super().__init__(critics=[("0_adversarial", critic)], data=build(SpiralConfig(n_train=64, n_val=200, n_test=8), DataContext()), model=model,
                         device=torch.device("cpu"), epoch=0, done=False, said=[], logged={}, panels={})

    def warn(self, message: str) -> None:
        self.said.append(message)

    def log(self, name: str, value: float, *, panel: str | None = None) -> None:
        self.logged[name] = value
        if panel is not None:
            self.panels[name] = panel

    def log_level(self, name: str, level: float) -> None:
        self.log(name + "_chance", level)


def _stalled_warnings(critic: StubCritic) -> list[str]:
    trainer = Watched(critic)
    watch = StallWatch(StallWatchConfig(patience=3, probe_every=10), None)  # type: ignore[arg-type]
    watch.on_start(trainer)  # type: ignore[arg-type]
    for epoch in range(1, 4):  # the critic's loss sits at its blind-guess level for 3 epochs
        trainer.epoch = epoch
        watch.on_epoch_end(trainer, {"epoch/critic/0_adversarial/d_real": 1.0990, "epoch/ae/reconstruction": 0.1})  # type: ignore[arg-type]
    assert trainer.logged["critic/0_adversarial/d_real_chance"] == 1.0986 and trainer.logged["ae/reconstruction_chance"] == 1.0
    assert trainer.panels == {"critic/0_adversarial/probe_auc": PROBE_PANEL}  # probed when the term settled, in a panel of its own
    return trainer.said


def test_the_stall_warning_names_fooled_or_blind() -> None:
    assert isinstance(StubCritic(True), ScoresData)
    fooled = [w for w in _stalled_warnings(StubCritic(sees=True)) if "blind-guess value" in w]
    blind = [w for w in _stalled_warnings(StubCritic(sees=False)) if "blind-guess value" in w]
    assert len(fooled) == len(blind) == 1
    assert "Fooled, not blind" in fooled[0] and "adversarial weight" in fooled[0]
    assert float(re.search(r"probe AUC (\d\.\d\d)", fooled[0]).group(1)) >= 0.65  # type: ignore[union-attr]
    assert "Blind:" in blind[0] and "probe AUC 0.50" in blind[0] and "train.critic_lr" in blind[0]


def test_the_probe_does_not_change_training() -> None:
    recipe = load_recipe(SPIRAL, [*TINY, "train.epochs=2"])
    plain = Trainer(recipe)
    plain.fit()
    probed = Trainer(recipe, callbacks=[StallWatch(StallWatchConfig(probe_every=1), None)])  # type: ignore[arg-type]
    probed.fit()
    assert "epoch/critic/0_adversarial/probe_auc" in probed.means
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, probed.model.state_dict()[key]), key


@pytest.mark.parametrize("regularizer", ["{kind: adversarial, judge: [reconstruction, mix]}", "{kind: acai}"])
def test_built_in_critics_score_any_batch_higher_for_real(regularizer: str) -> None:
    recipe = load_recipe(SPIRAL, [*TINY, f"regularizers=[{regularizer}]", "mixer={kind: mixup, fold: true}"])
    model = Model(recipe, build(SpiralConfig(n_train=8, n_val=8, n_test=8), DataContext()).spec)
    (_, critic), = model.critics()
    assert isinstance(critic, ScoresData)
    x = torch.randn(5, 2)
    score = critic.critic_score(x)
    assert score.shape == (5,)
    if "acai" in regularizer:  # ACAI's d regresses the mixing weight (0: real), so the score is -d
        assert torch.allclose(score, -critic.head(critic.body(x)).squeeze(1))


def test_a_fooled_critic_is_noted_once_a_blind_one_warned_each_time() -> None:
    def messages(sees: bool) -> list[str]:
        trainer = Watched(StubCritic(sees=sees))
        watch = StallWatch(StallWatchConfig(patience=2, probe_every=10), None)  # type: ignore[arg-type]
        watch.on_start(trainer)  # type: ignore[arg-type]
        for epoch, loss in enumerate([1.0990, 1.0990, 1.3, 1.0990, 1.0990], 1):  # settles at the level twice
            trainer.epoch = epoch
            watch.on_epoch_end(trainer, {"epoch/critic/0_adversarial/d_real": loss, "epoch/ae/reconstruction": 0.1})  # type: ignore[arg-type]
        return [m for m in trainer.said if "blind-guess value" in m]

    fooled, blind = messages(True), messages(False)
    assert len(fooled) == 1 and fooled[0].startswith("note: ")
    assert len(blind) == 2 and all(m.startswith("warning: ") for m in blind)
