"""Supervised AMR: combinations, masks picture and summary on a tiny trained run, refusals, the
attribute-accuracy measurement on fakes with known answers, and the class mixer's y_mix draw."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import mixframe
from mixframe import MixframeError, RunFolder
from mixframe.cli.main import main
from mixframe.kernel.interfaces import BuildContext, DataSpec
from mixframe.kernel.registry import get_registry
from mixframe_plugins.commands.supervised import class_mixer_of, combinations, mask_summary, mask_table
from mixframe_plugins.metrics.attribute_accuracy import agreement, decode_mixes, measure_mixes, uniform_targets
from mixframe_plugins.mixers.class_mixer import ClassMixer, ClassMixerConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "dsprites_supervised.yaml"
TINY = ["data.n_train=128", "data.n_val=16", "data.n_test=32", "train.batch_size=32", "train.max_steps=2", "train.epochs=1",
        "encoder.depth=4", "decoder.depth=4", "discriminator.channels=8", "discriminator.features=16", "callbacks=[{kind: training_pictures, every: 1}]"]


def train_tiny(out: Path, *extra: str) -> Path:
    args = ["train", str(RECIPE), "--out", str(out), "--no-progress"]
    for s in [*TINY, *extra]:
        args += ["--set", s]
    assert main(args) == 0
    (run,) = out.iterdir()
    return run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("supervised"))


def test_combinations_enumerate_every_vector_once() -> None:
    c = combinations(3)
    assert c.shape == (8, 3)
    assert c[1].tolist() == [0.0, 0.0, 1.0] and c[4].tolist() == [1.0, 0.0, 0.0]
    assert len({tuple(r) for r in c.tolist()}) == 8
    assert combinations(6).shape == (64, 6)
    with pytest.raises(MixframeError, match="at most 6"):
        combinations(7)
    with pytest.raises(MixframeError, match="no binary attributes"):
        combinations(0)


def test_masks_picture_json_and_summary(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["masks", str(tiny_run), "--samples", "3"]) == 0
    printed = capsys.readouterr().out
    assert (tiny_run / "masks.png").stat().st_size > 5000
    info = json.loads((tiny_run / "masks.json").read_text())
    assert info["attributes"] == ["large", "right", "low"] and info["maps"] == 16
    rows = info["combinations"]
    assert [r["bits"] for r in rows] == ["000", "001", "010", "011", "100", "101", "110", "111"]
    for r in rows:
        assert len(r["p"]) == 16 and all(0 <= v <= 1 for v in r["p"])
        assert len(r["m"]) == 3 and all(v in (0, 1) for draw in r["m"] for v in draw)
        assert r["mean_p"] == pytest.approx(sum(r["p"]) / 16, abs=1e-4)
        assert r["first_parent_fraction"] == pytest.approx(sum(map(sum, r["m"])) / 48)
        assert f"{r['mean_p']:6.3f}" in printed
    assert "from x1 = (large, right, low)" in printed  # the recipe's mask network reads which parent each attribute comes from


def test_mask_table_matches_the_mixer_and_is_seeded(tiny_run: Path) -> None:
    from mixframe import load_run

    run = load_run(tiny_run)
    table = mask_table(run, samples=2, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(table["p"], run.mixer.masks_for(combinations(3)))
    again = mask_table(run, samples=2, seed=5)
    assert torch.equal(table["m"], again["m"])
    rows = mask_summary(table)
    assert table["condition"] == "sources" and rows[7]["sources"] == {"large": 1, "right": 1, "low": 1}


def test_attribute_accuracy_is_a_metric_and_the_command_measures_the_same(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attribute-accuracy", str(tiny_run), "--pairs", "300", "--classifier-epochs", "1"]) == 0
    command = json.loads((tiny_run / "attribute_accuracy.json").read_text())
    run = mixframe.load_run(tiny_run)
    metric = get_registry().get("metric", "attribute_accuracy")
    config = metric.config(pairs=300, classifier_epochs=1)
    values = metric.implementation(config, None).evaluate(run)
    assert values == {k: pytest.approx(command[k]) for k in values} and 0 <= values["mix_attribute_accuracy"] <= 1
    assert {"mix_accuracy_large", "first_parent_vector_accuracy", "classifier_test_attribute_accuracy"} <= set(values)
    capsys.readouterr()
    assert main(["evaluate", str(tiny_run), "--metric", "attribute_accuracy"]) == 0  # so evaluate, sweeps and reports get it
    assert "mix_vector_accuracy" in RunFolder(tiny_run).evaluation()["by_metric"]["attribute_accuracy"]
    assert "fraction of decoded mixes showing the aimed value of this attribute" in capsys.readouterr().out  # mix_accuracy_large


def test_supervised_grid_picture(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["supervised-grid", str(tiny_run), "--pairs", "2", "--out", str(out), "--mask", "soft"]) == 0
    assert out.stat().st_size > 5000


def test_runs_without_a_class_mixer_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = train_tiny(tmp_path, "mixer={kind: bernoulli}", "regularizers=[{kind: adversarial, judge: [reconstruction, mix]}]")
    for cmd in (["masks", str(run)], ["supervised-grid", str(run)]):
        assert main(cmd) == 2
        assert "predicts no masks from attributes" in capsys.readouterr().err
    assert main(["masks", str(run), "--samples", "0"]) == 2
    assert "--samples must be at least 1" in capsys.readouterr().err


def test_agreement_counts_attributes_and_whole_vectors() -> None:
    predicted = torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    target = torch.tensor([[1.0, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0]])
    out = agreement(predicted, target, ("a", "b", "c"))
    assert out["attribute_accuracy"] == pytest.approx(10 / 12)
    assert out["vector_accuracy"] == pytest.approx(0.5)
    assert out["accuracy_a"] == pytest.approx(0.75) and out["accuracy_b"] == 1.0 and out["accuracy_c"] == pytest.approx(0.75)


@pytest.mark.parametrize("draw_targets", [uniform_targets, ClassMixer(ClassMixerConfig(), BuildContext(
    data=DataSpec(shape=(3, 2, 2), attribute_names=("a", "b", "c")), code_shape=(4, 2, 2))).draw_targets])
def test_draw_targets_take_each_attribute_from_a_parent_with_one_q_per_pair(draw_targets) -> None:  # noqa: ANN001
    gen = torch.Generator().manual_seed(0)
    n, k = 40000, 3
    y1 = torch.zeros(n, k)
    y2 = torch.ones(n, k)
    y_mix, from_first = draw_targets(y1, y2, gen)
    assert set(y_mix.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y_mix, 1 - from_first)  # y1 = 0, y2 = 1: the attribute is 1 exactly where it came from y2
    # With q ~ U(0, 1) shared by a pair's attributes, the count taken from y2 is uniform on 0..k
    # (beta-binomial(1, 1)); a fair coin per attribute would give binomial(3, 1/2) = 1/8, 3/8, 3/8, 1/8.
    counts = torch.bincount(y_mix.sum(dim=1).long(), minlength=k + 1).float() / n
    torch.testing.assert_close(counts, torch.full((k + 1,), 1 / (k + 1)), atol=0.01, rtol=0)


class FakeRun:
    """Images (B, k, 2, 2) whose channel i is attribute i; identity encoder and decoder."""

    def __init__(self, mixer: nn.Module, n: int = 4000, k: int = 3) -> None:
        gen = torch.Generator().manual_seed(1)
        y = torch.randint(0, 2, (n, k), generator=gen).float()
        x = y[:, :, None, None].expand(n, k, 2, 2).clone()
        test = list(zip(x, y))
        spec = DataSpec(shape=(k, 2, 2), value_range=(0.0, 1.0), attribute_names=tuple("abc"[:k]))
        self.data = types.SimpleNamespace(spec=spec, test=test)
        self.spec = spec
        self.mixer, self.device, self.dir = mixer, torch.device("cpu"), Path("fake")
        self.recipe = types.SimpleNamespace(mixer=types.SimpleNamespace(name="fake"))

    def encode(self, x: Tensor) -> Tensor:
        return x.clone()

    def decode(self, h: Tensor) -> Tensor:
        return h.clone()


def read_channels(images: Tensor) -> Tensor:
    """The fake classifier: attribute i is on when channel i is mostly on."""
    return (images.mean(dim=(2, 3)) > 0.5).float()


class FirstParentMasks(nn.Module):
    """A 'class mixer' (mixframe.PredictsMasks) whose masks always take every map from the first parent."""

    mask_condition = "y_mix"
    soft_masks = False

    def masks_for(self, y_mix: Tensor) -> Tensor:
        return torch.ones(len(y_mix), 3)

    def draw_targets(self, y1: Tensor, y2: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        return uniform_targets(y1, y2, generator)


class SecondParentMixer(nn.Module):
    """An unsupervised mixer that always returns the second parent."""

    num_sources = 2

    def forward(self, sources, labels=None):  # noqa: ANN001, ANN201
        return types.SimpleNamespace(codes=sources[1])


@pytest.mark.parametrize("mixer", [FirstParentMasks(), SecondParentMixer()])
def test_measurement_of_a_mixer_that_copies_one_parent(mixer: nn.Module) -> None:
    # Copying a parent shows y_mix where the parents agree (half the attributes) and, where they
    # differ, with probability E[q] = 1/2: 3/4 of attributes. A whole vector matches with
    # probability E[((1 + q) / 2)^3] = (2 / 4)(1 - 1/16) = 0.46875 (one q per pair).
    out = measure_mixes(FakeRun(mixer), read_channels, pairs=20000, seed=0)
    assert out["mix_attribute_accuracy"] == pytest.approx(0.75, abs=0.01)
    assert out["mix_vector_accuracy"] == pytest.approx(0.46875, abs=0.012)
    assert out["reconstruction_attribute_accuracy"] == 1.0 and out["reconstruction_vector_accuracy"] == 1.0
    if isinstance(mixer, FirstParentMasks):
        assert out["mix_attribute_accuracy"] == out["first_parent_attribute_accuracy"]


def test_class_mixer_masks_aim_at_y_mix() -> None:
    # A class mixer whose mask is y_mix itself hits y_mix exactly when parent 1 is all ones and parent 2 all zeros.
    spec = DataSpec(shape=(3, 2, 2), value_range=(0.0, 1.0), attribute_names=("a", "b", "c"))
    mixer = ClassMixer(ClassMixerConfig(estimator="soft"), BuildContext(data=spec, code_shape=(3, 2, 2)))
    mixer.masks_for = lambda y: y.float()  # type: ignore[method-assign]
    run = FakeRun(mixer)
    x1, x2 = torch.ones(8, 3, 2, 2), torch.zeros(8, 3, 2, 2)
    y_mix = combinations(3)
    assert torch.equal(read_channels(decode_mixes(run, x1, x2, y_mix, 1 - y_mix, seed=0)), y_mix)


def test_a_class_mixer_conditioned_on_sources_reads_which_parent_each_attribute_comes_from() -> None:
    # condition: sources feeds m_y (1 = from the first parent): a mask equal to m_y hits y_mix for any parents.
    spec = DataSpec(shape=(3, 2, 2), value_range=(0.0, 1.0), attribute_names=("a", "b", "c"))
    mixer = ClassMixer(ClassMixerConfig(estimator="soft", condition="sources"), BuildContext(data=spec, code_shape=(3, 2, 2)))
    mixer.masks_for = lambda c: c.float()  # type: ignore[method-assign]
    out = measure_mixes(FakeRun(mixer), read_channels, pairs=5000, seed=0)
    assert out["mix_attribute_accuracy"] == 1.0 and out["mix_vector_accuracy"] == 1.0
    assert out["first_parent_attribute_accuracy"] == pytest.approx(0.75, abs=0.02)
    table = mask_table(FakeRun(mixer))
    assert table["condition"] == "sources" and mask_summary(table)[5]["sources"] == {"a": 1, "b": 0, "c": 1}


def test_measurement_refuses_runs_without_a_two_parent_mixer() -> None:
    with pytest.raises(MixframeError, match="no two-parent mixer"):
        decode_mixes(FakeRun(None), torch.ones(2, 3, 2, 2), torch.ones(2, 3, 2, 2), torch.ones(2, 3), torch.ones(2, 3), seed=0)
    with pytest.raises(MixframeError, match="class_mixer"):
        class_mixer_of(FakeRun(SecondParentMixer()))


def test_class_mixer_draws_one_q_per_pair() -> None:
    # test_mixers checks that y_mix takes each attribute from a parent; this checks the law of the
    # draw: with one q ~ U(0, 1) per pair the number of attributes taken from y2 is uniform on 0..k.
    torch.manual_seed(0)
    spec = DataSpec(shape=(3, 2, 2), value_range=(0.0, 1.0), attribute_names=("a", "b", "c"))
    mixer = ClassMixer(ClassMixerConfig(), BuildContext(data=spec, code_shape=(4, 2, 2)))
    n = 20000
    h = torch.zeros(n, 4, 2, 2)
    out = mixer([h, h], labels=[torch.zeros(n, 3), torch.ones(n, 3)])
    counts = torch.bincount(out.labels.sum(dim=1).long(), minlength=4).float() / n
    torch.testing.assert_close(counts, torch.full((4,), 0.25), atol=0.015, rtol=0)


def test_training_step_judges_attributes_and_trains_the_mask_network() -> None:
    # End to end: on an autoencoder step the critic logs d_cls and g_cls (g_cls judges mixes against the mixer's
    # y_mix, see test_regularizers), and the class mixer's MLP is updated with the autoencoder.
    from mixframe.kernel.engine import Trainer
    from mixframe.kernel.recipe import load_recipe

    recipe = load_recipe(RECIPE, [*TINY, "train.lr=1e-2"])
    trainer = Trainer(recipe)
    x, y = next(iter(trainer.loader))
    before = [p.detach().clone() for p in trainer.model.mixer.parameters()]
    logs = trainer.train_step(x, y)
    assert any(k.endswith("g_cls") for k in logs) and any(k.endswith("d_cls") for k in logs)
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.model.mixer.parameters()))


def test_celeba_recipe_assembles_and_mixes_at_64_px() -> None:
    # The CelebA recipe needs the user's files to train; its model is checked here on a stand-in spec.
    from mixframe.kernel.model import Model
    from mixframe.kernel.recipe import load_recipe

    recipe = load_recipe(ROOT / "recipes" / "celeba_supervised.yaml")
    spec = DataSpec(shape=(3, 64, 64), value_range=(-1.0, 1.0), attribute_names=("Male", "Smiling", "Eyeglasses"))
    model = Model(recipe, spec)
    assert tuple(model.encoder.code_shape) == (16, 4, 4) and callable(model.mixer.masks_for)
    with torch.no_grad():
        step, _ = model.forward_step(torch.zeros(2, 3, 64, 64), torch.tensor([[1.0, 0, 1], [0, 1, 0]]), with_mix=True)
    assert step.x_mix.shape == (2, 3, 64, 64) and step.mix.labels.shape == (2, 3)
    assert set(model.regularizers[0].critic_loss(step)) == {"d_real", "d_fake_rec", "d_fake_mix", "d_cls"}
