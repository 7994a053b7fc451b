"""Sweeps: runs in processes of their own through launchers, failures recorded while the others go on,
--resume finishing what did not, summaries from whatever finished."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

import mixframe
from mixframe import Launcher, MixframeError, RunTask
from mixframe.cli.main import main
from mixframe.runs.folder import load_checkpoint
from mixframe.tools.sweep import read_sweep, resume_sweep, summarise, sweep

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
SMALL = ["data.n_train=512", "data.n_val=128", "data.n_test=128", "train.batch_size=64", "train.epochs=3", "encoder.hidden=[32, 32]",
         "decoder.hidden=[32, 32]", "discriminator.hidden=[32, 32]", "callbacks=[]"]
METRICS = ["reconstruction"]
ONE_THREAD = ["threads=1"]  # numbers do not depend on how many runs share the machine


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def reference(tmp_path: Path, *overrides: str) -> dict[str, float]:
    """The run trained and evaluated in this process, as the sequential sweep did."""
    run = mixframe.train(SPIRAL, [*SMALL, *overrides], out=tmp_path / "reference", progress=False)
    return run.evaluate(METRICS)


@pytest.mark.slow
def test_two_jobs_give_the_numbers_of_a_run_trained_alone_and_a_failed_run_leaves_the_others_going(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # batch 4096 passes the recipe check but not training (larger than the split): a run that fails on its own
    folder = sweep(SPIRAL, ["train.batch_size=4096,64"], metrics=METRICS, overrides=SMALL, out=tmp_path, launcher="local",
                   launcher_options=["jobs=2", *ONE_THREAD])
    out = capsys.readouterr().out
    assert "local launcher: up to 2 run(s) at once, 1 CPU thread(s) each" in out
    assert "[1/2 done, 0 running, 1 failed]" in out or "[1/2 done, 1 running, 1 failed]" in out
    record = read_sweep(folder)
    failed, done = record["runs"]
    assert failed["status"] == "failed" and "batch_size 4096 is larger than the training split" in failed["message"]
    assert done["status"] == "complete" and done["attempts"] == 1 and done["where"].startswith("pid ")
    assert done["metrics"] == reference(tmp_path, "train.batch_size=64")  # bit for bit: seeded, one thread, any process
    assert Path(done["run"]).is_dir() and (folder / done["log"]).read_text().count("== run 002") == 2
    summary = (folder / "summary.md").read_text()
    assert "| train.batch_size=64 | 1/1 |" in summary and "| train.batch_size=4096 | 0/1 | no finished run" in summary
    assert "**Missing: 1 of 2 runs did not finish**" in summary and "batch_size 4096 is larger" in summary
    assert list(summarise(record["runs"])) == ["train.batch_size=64"]


def _wait_for(predicate: Any, seconds: float = 240.0) -> Any:
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    return None


@pytest.mark.slow
def test_a_killed_run_is_recorded_the_others_finish_and_resume_completes_it_with_the_uninterrupted_weights(tmp_path: Path) -> None:
    # two runs that train identically (log_every changes only the logs): 002 is the uninterrupted reference of 001
    slow = [*SMALL, "train.epochs=6", "train.checkpoint_every=1"]
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(folder=sweep(SPIRAL, ["train.log_every=1,3"], metrics=METRICS, overrides=slow,
                                                                        out=tmp_path, launcher_options=["jobs=2", *ONE_THREAD],
                                                                        progress=False)))
    thread.start()
    checkpoint = _wait_for(lambda: next(tmp_path.glob("sweep-*/train.log_every=1/seed0-*/checkpoint.pt"), None))
    assert checkpoint is not None, "run 001 never wrote a checkpoint"
    folder = checkpoint.parents[2]
    pid = int(read_sweep(folder)["runs"][0]["where"].removeprefix("pid "))
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert result.get("folder") == folder
    killed, other = read_sweep(folder)["runs"]
    if killed["status"] == "complete":
        pytest.skip("run 001 finished before it could be killed")
    assert killed["status"] == "failed" and "killed by SIGKILL" in killed["message"]
    assert other["status"] == "complete"  # the other run went on
    stopped_at = load_checkpoint(checkpoint)["epoch"]
    assert 1 <= stopped_at < 6
    assert "| train.log_every=1 | 0/1 | no finished run" in (folder / "summary.md").read_text()

    assert main(["sweep", "--resume", str(folder), "--no-progress"]) == 0
    killed, again = read_sweep(folder)["runs"]
    assert killed["status"] == "complete" and killed["attempts"] == 2 and again == other  # only the unfinished run ran
    assert f"resuming {checkpoint.parent}" in (folder / killed["log"]).read_text()  # from its checkpoint, not from the start
    assert mixframe.RunFolder(checkpoint.parent).info()["resumes"][0]["at_epoch"] == stopped_at
    a, b = load_checkpoint(checkpoint)["model"], load_checkpoint(Path(other["run"]) / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert killed["metrics"] == other["metrics"]
    assert "Missing" not in (folder / "summary.md").read_text()


class Recorder(Launcher):
    """A launcher written in Python: runs each task in this process (or fails it), in reverse order."""

    def __init__(self, fail: bool) -> None:
        self.fail, self.seen = fail, []

    def launch(self, tasks: Sequence[RunTask], events: Any) -> None:
        from mixframe.tools.sweep import run_task

        for task in reversed(tasks):
            self.seen.append(task.key)
            events.started(task, "here")
            outcome: Mapping[str, Any] = {"status": "failed", "message": "refused"} if self.fail else run_task(task)
            events.finished(task, outcome)


@pytest.mark.slow
def test_a_launcher_object_the_recorded_plan_and_a_changed_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "spiral.yaml"
    shutil.copy(SPIRAL, recipe)
    folder = sweep(recipe, ["regularizers.1.weight=0,0.1"], seeds=2, metrics=METRICS, overrides=SMALL, out=tmp_path,
                   launcher=Recorder(fail=True), progress=False)
    record = read_sweep(folder)
    assert [(r["point"], r["seed"], r["status"], r["message"]) for r in record["runs"]] == [
        ({"regularizers.1.weight": w}, s, "failed", "refused") for w in (0, 0.1) for s in (0, 1)]
    assert not (folder / "panels.png").exists() and "**Missing: 4 of 4 runs did not finish**" in (folder / "summary.md").read_text()

    recipe.write_text(recipe.read_text().replace("epochs: 100", "epochs: 7"))  # train.epochs is overridden: the same runs
    recipe.write_text(recipe.read_text().replace("latent: 2", "latent: 3"))  # not the same runs any more
    with pytest.raises(MixframeError, match="changed since the sweep started, so run 001 .* would train something else"):
        resume_sweep(folder, launcher=Recorder(fail=False))
    shutil.copy(SPIRAL, recipe)
    launcher = Recorder(fail=False)
    resume_sweep(folder, launcher=launcher, launcher_options=(), progress=False)
    assert launcher.seen == ["004", "003", "002", "001"]
    record = read_sweep(folder)
    assert all(r["status"] == "complete" for r in record["runs"])
    assert (folder / "panels.png").is_file()  # 2-D data: one panel per point
    summary = summarise(record["runs"])
    assert set(summary) == {"regularizers.1.weight=0", "regularizers.1.weight=0.1"} and all(len(row) > 1 for row in summary.values())


def test_launcher_choice_and_options_are_checked_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["sweep", str(SPIRAL), "--out", str(tmp_path), "--no-progress"]
    assert main([*base, "--launcher", "lokal"]) == 2
    assert "unknown launcher 'lokal'; choices: local, ray, slurm; did you mean 'local'?" in capsys.readouterr().err
    assert main([*base, "--launcher-set", "job=2"]) == 2
    err = capsys.readouterr().err
    assert "launcher local.job: unknown key; valid keys: jobs, threads, gpus; did you mean 'jobs'?" in err
    assert main([*base, "--jobs", "0"]) == 2
    assert "launcher local.jobs: must be > 0, got 0" in capsys.readouterr().err
    assert main([*base, "--launcher-set", "jobs"]) == 2
    assert "--launcher-set 'jobs': write KEY=VALUE" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written
    assert main(["sweep", "--resume", str(tmp_path), "--grid", "seed=1,2"]) == 2
    assert "--resume continues the sweep as it was planned; drop --grid" in capsys.readouterr().err
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "is not a sweep folder (no sweep.json)" in capsys.readouterr().err
    assert main(["components", "launcher"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in ("local", "ray", "slurm"))


def test_an_absent_extra_is_a_message_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for module, extra in (("ray", "mixframe[ray]"), ("submitit", "mixframe[slurm]")):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as when it is not installed
        launcher = "ray" if module == "ray" else "slurm"
        with pytest.raises(MixframeError, match=rf"the {launcher} launcher needs .* pip install '{re.escape(extra)}'"):
            sweep(SPIRAL, overrides=SMALL, out=tmp_path, launcher=launcher, progress=False)
    assert not list(tmp_path.iterdir())


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _has("ray"), reason="Ray is not installed (pip install 'mixframe[ray]')")
def test_ray_launcher_on_a_local_ray_gives_the_same_numbers(tmp_path: Path) -> None:
    folder = sweep(SPIRAL, metrics=METRICS, overrides=SMALL, out=tmp_path, launcher="ray", launcher_options={"cpus_per_run": 1},
                   progress=False)
    [run] = read_sweep(folder)["runs"]
    assert run["status"] == "complete" and run["where"] == "Ray task", run["message"]
    assert run["metrics"] == reference(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not _has("submitit"), reason="submitit is not installed (pip install 'mixframe[slurm]')")
def test_slurm_launcher_through_submitits_local_executor_gives_the_same_numbers(tmp_path: Path) -> None:
    folder = sweep(SPIRAL, metrics=METRICS, overrides=SMALL, out=tmp_path, launcher="slurm",
                   launcher_options=["cluster=local", "gpus_per_run=0", "cpus_per_run=1", "poll=0.5"], progress=False)
    [run] = read_sweep(folder)["runs"]
    assert run["status"] == "complete" and run["where"].startswith("Slurm job "), run["message"]
    assert run["metrics"] == reference(tmp_path)
    assert (folder / "slurm").is_dir()
    if shutil.which("sbatch") is None:
        with pytest.raises(MixframeError, match="submits with sbatch, which is not on this machine's PATH"):
            sweep(SPIRAL, overrides=SMALL, out=tmp_path / "no", launcher="slurm", progress=False)


def test_sweep_json_is_valid_json_at_every_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Atomic rewrites: a reader never sees half a file (each write goes through a temporary file and a rename)."""
    from mixframe.runs import folder as runs

    writes: list[str] = []
    original = runs.atomic_write_bytes

    def spy(path: Path, data: bytes) -> None:
        if path.name == "sweep.json":
            writes.append(json.loads(data)["runs"][0]["status"])
        original(path, data)

    monkeypatch.setattr(runs, "atomic_write_bytes", spy)
    sweep(SPIRAL, overrides=SMALL, metrics=METRICS, out=tmp_path, launcher=Recorder(fail=True), progress=False)
    assert writes[0] == "pending" and "running" in writes and writes[-1] == "failed"


def test_a_recipe_without_metrics_is_trained_and_complete_not_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the supervised recipes are measured afterwards by a command (attribute-accuracy), not by metrics
    folder = sweep(SPIRAL, seeds=1, overrides=[*SMALL, "metrics=[]"], out=tmp_path, launcher_options=ONE_THREAD)
    (run,) = read_sweep(folder)["runs"]
    assert run["status"] == "complete" and run["metrics"] == {} and Path(run["run"]).is_dir()
    assert "no metrics and no --metric was given: the runs are trained, not evaluated" in capsys.readouterr().out
