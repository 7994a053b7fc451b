"""The callback contract: what callbacks see (TrainerView), the one channel for their values, their order, their
state across a resume; and a library that leaves its caller's random state and output alone."""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch

import mixframe
from mixframe import Callback, RunFolder
from mixframe.kernel.interfaces import TrainerView

ROOT = Path(__file__).resolve().parents[1]
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
SMALL = ["data.n_train=256", "data.n_val=64", "data.n_test=64", "train.batch_size=64", "encoder.hidden=[16, 16]",
         "decoder.hidden=[16, 16]", "discriminator.hidden=[16, 16]"]
# ACAI keeps the moments of the mixing weights it saw (component state); the stall watch counts epochs and probes
WATCHED = [*SMALL, "train.epochs=4", "train.checkpoint_every=1", "mixer={kind: mixup, fold: true}", "regularizers=[{kind: acai}]",
           "callbacks=[{kind: stall_watch, patience: 1, probe_every: 1}, {kind: validation}]"]


class StopAfter(Callback):
    """Ctrl-C once the given epoch is checkpointed."""

    order = Callback.CLOSE + 1

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        if trainer.epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_resumed_runs_callback_and_component_state_equals_an_uninterrupted_runs(tmp_path: Path) -> None:
    whole = mixframe.train(SPIRAL, WATCHED, out=tmp_path, name="whole", progress=False)
    with pytest.raises(KeyboardInterrupt):
        mixframe.train(SPIRAL, WATCHED, out=tmp_path, name="cut", callbacks=[StopAfter(2)], progress=False)
    (cut,) = tmp_path.glob("cut-*")
    assert RunFolder(cut).load_checkpoint()["epoch"] == 2
    resumed = mixframe.resume(cut, progress=False)
    assert resumed.epoch == whole.epoch == 4
    expected, got = whole.folder.load_checkpoint(), resumed.folder.load_checkpoint()
    assert got["components"] == expected["components"]
    assert got["callbacks"] == expected["callbacks"]
    # the state is real: ACAI counted every mixing weight of 4 epochs, the stall watch and the best checkpoint kept theirs
    (count, _, _), = [s["alpha_moments"] for s in expected["components"].values()]
    assert count == 4 * (256 // 64) * 64
    watch = expected["callbacks"]["mixframe_plugins.callbacks.stall_watch.StallWatch"]
    assert set(watch) == {"stalled", "blind_probes", "told_fooled", "reconstruction"} and watch["reconstruction"]["previous"] > 0
    best = min(v for _, v in whole.folder.epoch_curves()["epoch/val/reconstruction"])
    assert expected["callbacks"]["mixframe.runs.callbacks.Checkpoints"]["best"] == pytest.approx(best, rel=1e-5)  # metrics.csv: 6 digits
    assert RunFolder(cut).file(RunFolder.CHECKPOINT_BEST).is_file()


def test_a_checkpoint_from_before_callback_state_was_kept_still_resumes(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        mixframe.train(SPIRAL, WATCHED, out=tmp_path, callbacks=[StopAfter(1)], progress=False)
    (run,) = tmp_path.iterdir()
    folder = RunFolder(run)
    old = {k: v for k, v in folder.load_checkpoint().items() if k not in ("callbacks", "components")}
    folder.save_checkpoint(old)
    assert mixframe.resume(run, progress=False).epoch == 4


class Measure(Callback):
    """Logs a value through the channel; placed last in the list, it still hears the epoch first (its order)."""

    order = Callback.MEASURE - 1

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        trainer.log("custom/epoch_squared", float(trainer.epoch ** 2))


class Read(Callback):
    def __init__(self) -> None:
        self.seen: list[float] = []
        self.stdout, self.stdout_kept = sys.stdout, True

    def on_epoch_end(self, trainer: TrainerView, means: Mapping[str, float]) -> None:
        self.seen.append(means["epoch/custom/epoch_squared"])
        self.stdout_kept &= sys.stdout is self.stdout


def test_a_logged_value_reaches_later_callbacks_and_the_record_in_their_order(tmp_path: Path) -> None:
    read = Read()
    run = mixframe.train(SPIRAL, [*SMALL, "train.epochs=2", "callbacks=[]"], out=tmp_path, callbacks=[read, Measure()], progress=False)
    assert read.seen == [1.0, 4.0]
    assert run.logged()["epoch/custom/epoch_squared"] == [(1, 1.0), (2, 4.0)]
    assert read.stdout_kept  # nothing swapped the process's stdout while training


def _random_state() -> tuple[torch.Tensor, object, np.ndarray]:
    return torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()


def _same(a: tuple[torch.Tensor, object, np.ndarray], b: tuple[torch.Tensor, object, np.ndarray]) -> bool:
    return torch.equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])


def test_loading_using_evaluating_and_training_leave_the_callers_random_state_and_settings_alone(tmp_path: Path) -> None:
    torch.manual_seed(11), random.seed(12), np.random.seed(13)
    deterministic = torch.are_deterministic_algorithms_enabled()
    before = _random_state()
    run = mixframe.train(SPIRAL, [*SMALL, "train.epochs=1"], out=tmp_path, progress=False)
    assert _same(before, _random_state())
    assert torch.are_deterministic_algorithms_enabled() == deterministic  # deterministic mode was the run's only
    loaded = mixframe.load_run(run.dir)
    x, _ = loaded.split("test")
    decoded = loaded.decode(loaded.encode(x))
    assert _same(before, _random_state())
    loaded.evaluate(["manifold"], write=False)
    assert _same(before, _random_state())
    assert torch.equal(mixframe.load_run(run.dir).decode(loaded.encode(x)), decoded)  # and the weights do not depend on it


def test_the_library_prints_nothing_its_messages_go_to_logging_and_train_log(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mixframe")
    run = mixframe.train(SPIRAL, [*SMALL, "train.epochs=1"], out=tmp_path, progress=False)
    assert capsys.readouterr().out == ""
    assert f"run folder: {run.dir}" in caplog.text and "epoch 1/1  step 4" in caplog.text
    assert "epoch 1/1  step 4" in run.folder.file(RunFolder.TRAIN_LOG).read_text()
