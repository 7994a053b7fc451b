"""One name per thing: logged values under the same names everywhere, tool modules as attributes, a clone never shadowing the package."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

import mixframe
from mixframe import Callback

ROOT = Path(__file__).resolve().parents[1]
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
SMALL_SPIRAL = ["data.n_train=256", "data.n_val=64", "data.n_test=64", "train.batch_size=64", "train.epochs=2",
                "encoder.hidden=[16, 16]", "decoder.hidden=[16, 16]", "discriminator.hidden=[16, 16]"]


class Means(Callback):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.summary: dict[str, float] = {}

    def on_epoch_end(self, trainer, means) -> None:  # noqa: ANN001
        self.names |= set(means)

    def on_end(self, trainer, summary) -> None:  # noqa: ANN001
        self.summary = summary


def test_logged_values_have_one_name_in_logged_callbacks_metrics_csv_and_tensorboard(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    heard = Means()
    run = mixframe.train(SPIRAL, SMALL_SPIRAL, out=tmp_path, callbacks=[heard], progress=False)
    logged = run.logged()
    assert "epoch/ae/reconstruction" in logged and "epoch/val/reconstruction" in logged
    events = EventAccumulator(str(run.dir / "tb")).Reload()
    epoch_tags = {t for t in events.Tags()["scalars"] if t.startswith("epoch/")}
    assert set(logged) == epoch_tags == heard.names == set(heard.summary)
    with (run.dir / "metrics.csv").open(newline="") as f:
        assert {row["name"] for row in csv.DictReader(f) if row["name"].startswith("epoch/")} == set(logged)
    for name, points in logged.items():  # the same values, too (TensorBoard keeps float32)
        if name.endswith("seconds"):
            continue
        assert [e.value for e in events.Scalars(name)] == pytest.approx([v for _, v in points], rel=1e-5)
    assert set(run.folder.info()["final"]) == set(logged)  # run.json's final values


@pytest.mark.parametrize("name", ["report", "sweep", "stats", "shipped", "interpolate", "evaluation"])
def test_documented_tool_modules_are_attributes(name: str) -> None:
    module = getattr(mixframe, name)
    assert module.__name__.endswith(f".{name}") and f"mixframe.{name}" in (ROOT / "docs" / "api.md").read_text()


def test_a_clone_in_the_current_folder_does_not_shadow_the_installed_package(tmp_path: Path) -> None:
    """~/mixframe opened from ~: the folder mixframe/ (a checkout, no __init__.py at its top) must not be imported
    as an empty namespace package. The strict editable install (make venv) and a plain install both pass."""
    (tmp_path / "mixframe").symlink_to(ROOT, target_is_directory=True)
    script = "import mixframe; mixframe.report; print(mixframe.__file__)"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("__init__.py")


def test_threads_come_from_the_recipe_or_the_environment_and_are_logged_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                                  caplog: pytest.LogCaptureFixture) -> None:
    import json
    import logging

    import torch

    from mixframe.kernel.engine.loop import set_threads

    before = torch.get_num_threads()
    caplog.set_level(logging.INFO, logger="mixframe")  # the library prints nothing: its messages go to the mixframe loggers
    try:
        run = mixframe.train(SPIRAL, [*SMALL_SPIRAL, "train.epochs=1", "train.threads=2"], out=tmp_path / "a", progress=False)
        assert torch.get_num_threads() == 2 and "CPU threads: 2 (train.threads)" in caplog.text
        environment = json.loads((run.dir / "environment.json").read_text())
        assert environment["threads"] == 2 and environment["threads_source"] == "train.threads"
        assert "CPU threads: 2 (train.threads)" in (run.dir / "train.log").read_text()
        monkeypatch.setenv("MIXFRAME_THREADS", "1")
        run = mixframe.train(SPIRAL, [*SMALL_SPIRAL, "train.epochs=1"], out=tmp_path / "b", progress=False)
        assert torch.get_num_threads() == 1 and "CPU threads: 1 (MIXFRAME_THREADS)" in caplog.text
        assert json.loads((run.dir / "environment.json").read_text())["threads_source"] == "MIXFRAME_THREADS"
        resumed = mixframe.resume(run.dir, ["train.epochs=2", "train.threads=2"], progress=False)
        assert resumed.folder.info()["resumes"][-1]["threads"] == 2
        monkeypatch.setenv("MIXFRAME_THREADS", "two")
        with pytest.raises(mixframe.MixframeError, match="MIXFRAME_THREADS='two' is not a positive whole number"):
            set_threads(None)
        monkeypatch.delenv("MIXFRAME_THREADS")
        assert set_threads(None) == (torch.get_num_threads(), "torch's default")  # left as torch (or a launcher) set it
    finally:
        torch.set_num_threads(before)
