"""Run folders stay true and user mistakes stay messages: kills at any moment, Ctrl-C, full disks, paths and devices.

Every command-line case asserts the exit status (2, or 130 for an interrupt), the message, and that no
traceback was printed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import TINY_SPIRAL

import mixframe
from mixframe import MixframeError, RunFolder
from mixframe.cli.main import main
from mixframe.kernel.engine import Trainer
from mixframe.runs.folder import atomic_write_bytes, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
TINY = TINY_SPIRAL  # the shared spiral_run fixture (conftest.py) is trained with these
CHECKPOINT = RunFolder.CHECKPOINT


def sets(overrides: list[str]) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``mixframe ARGS`` in this process: (status, stdout, stderr); a traceback is never part of it."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def copy_run(run: Path, to: Path) -> Path:
    return Path(shutil.copytree(run, to / run.name))


# -- kills at any moment --------------------------------------------------------------------------------------
KILL_RECIPE = ["data.n_train=256", "data.n_val=64", "data.n_test=64", "train.batch_size=64", "train.epochs=40",
               "encoder.hidden=[16, 16]", "decoder.hidden=[16, 16]", "discriminator.hidden=[16, 16]", "train.log_every=1",
               "train.checkpoint_every=1", "callbacks=[]"]


def _visible(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []


def _partials(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.name.startswith(".") and RunFolder.PARTIAL in p.name) if out.is_dir() else []


def _assert_absent_or_resumable(out: Path) -> Path | None:
    """The invariant after every kill: no run folder (hidden partial ones aside), or one that resume can read."""
    runs = _visible(out)
    if out.is_dir():
        assert set(out.iterdir()) == {*runs, *_partials(out)}  # nothing else: no stray temporary beside the runs
    assert len(runs) <= 1, runs
    if not runs:
        return None
    folder = RunFolder.open(runs[0])
    assert folder.read_recipe().train.epochs == 40 and folder.status in ("stopped", "interrupted")  # "running" only while a live process holds the lock
    assert folder.read_spec() is not None and json.loads(folder.file(RunFolder.ENVIRONMENT).read_text())["packages"]
    if folder.has_checkpoint:
        assert load_checkpoint(folder.file(CHECKPOINT))["epoch"] >= 1
    return folder.path


def _wait(proc: subprocess.Popen[bytes], until: Callable[[], bool], timeout: float = 120) -> bool:
    """Poll every 2 ms until ``until()`` holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if until():
            return True
        time.sleep(0.002)
    return False


@pytest.mark.slow
def test_a_run_killed_20_times_at_random_moments_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    # The uninterrupted reference, in this process (one thread, like the killed processes).
    reference = mixframe.train(SPIRAL, KILL_RECIPE, out=tmp_path / "reference", progress=False).folder.load_checkpoint()["model"]
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(20261129)
    phases = ["start-up", "record", "training", "checkpoint"]
    seen: dict[str, int] = {p: 0 for p in phases}
    run_dir: Path | None = None
    kills = 0
    while kills < 20:
        if run_dir is None:
            cmd = [sys.executable, "-m", "mixframe", "train", str(SPIRAL), "--out", str(out), "--no-progress", *sets(KILL_RECIPE)]
        else:
            cmd = [sys.executable, "-m", "mixframe", "resume", str(run_dir), "--no-progress"]
        # every phase twice, then at random; start-up (imports, plugins, data) is most of a process's life
        phase = phases[kills % 4] if kills < 8 else rng.choices(phases, weights=[3, 1, 1, 1])[0]
        metrics = run_dir / RunFolder.METRICS if run_dir else None
        size_before = metrics.stat().st_size if metrics and metrics.exists() else 0
        run_json_before = (run_dir / RunFolder.RUN).stat().st_mtime_ns if run_dir else 0
        temporaries_before = set(run_dir.glob(f".{CHECKPOINT}.*")) if run_dir else set()  # left by earlier kills
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def folder() -> Path | None:
            runs = _visible(out)
            return runs[0] if runs else None

        if phase == "start-up":  # imports, plugins, recipe, data: before anything is written
            time.sleep(rng.uniform(0.0, 3.0))
            caught = proc.poll() is None
        elif phase == "record":  # train: while the record is written (hidden folder); resume: its run.json update
            if run_dir is None:
                caught = _wait(proc, lambda: bool(_partials(out)))
            else:
                caught = _wait(proc, lambda: (run_dir / RunFolder.RUN).stat().st_mtime_ns != run_json_before)
            time.sleep(rng.uniform(0.0, 0.05))
        elif phase == "training":  # while rows are logged
            caught = _wait(proc, lambda: (f := folder()) is not None and (f / RunFolder.METRICS).is_file()
                           and (f / RunFolder.METRICS).stat().st_size > max(size_before, 30))
            time.sleep(rng.uniform(0.0, 0.2))
        else:  # while a checkpoint's temporary file is written (or just renamed)
            caught = _wait(proc, lambda: (f := folder()) is not None and bool(set(f.glob(f".{CHECKPOINT}.*")) - temporaries_before))
            time.sleep(rng.uniform(0.0, 0.01))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"the run finished before kill {kills + 1} ({phase}); give it more epochs"
        kills += 1
        seen[phase] += caught
        run_dir = _assert_absent_or_resumable(out)
    assert all(seen[p] >= 1 for p in phases[1:]), seen  # the record, training and checkpoint phases were each hit
    final = subprocess.run([sys.executable, "-m", "mixframe", "resume", str(run_dir), "--no-progress"] if run_dir else
                           [sys.executable, "-m", "mixframe", "train", str(SPIRAL), "--out", str(out), "--no-progress", *sets(KILL_RECIPE)],
                           env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    [run] = _visible(out)
    finished = RunFolder(run)
    assert finished.status == "complete" and finished.info()["epoch"] == 40
    weights = finished.load_checkpoint()["model"]
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[k], reference[k]) for k in reference)
    text = finished.file(RunFolder.METRICS).read_bytes()
    assert b"\r" not in text
    rows = [line.split(",") for line in text.decode().splitlines()[1:]]
    steps = [int(r[0]) for r in rows]
    assert steps == sorted(steps) and steps[-1] == 160
    assert len({(r[0], r[2]) for r in rows}) == len(rows)  # each (step, name) logged once
    assert [p.name for p in run.glob(".*")] == [RunFolder.LOCK]  # no temporary file left behind, only the write lock
    for partial in _partials(out):  # a kill while the record was written leaves only a hidden, never-resumed folder
        assert set(os.listdir(partial)) <= {RunFolder.RECIPE, RunFolder.RUN, RunFolder.ENVIRONMENT, RunFolder.PLUGINS, RunFolder.DATA} | {
            n for n in os.listdir(partial) if n.startswith(".")}


# -- run folder creation ----------------------------------------------------------------------------------------
def test_a_run_folder_appears_complete_or_not_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    during: list[list[str]] = []

    def write(new: RunFolder) -> None:
        (new.file(RunFolder.RECIPE)).write_text("schema: 1\n")
        during.append(sorted(os.listdir(tmp_path)))

    folder = RunFolder.create(tmp_path, "x", write=write)
    [visible_during] = during
    assert len(visible_during) == 1 and visible_during[0].startswith(".x-") and RunFolder.PARTIAL in visible_during[0]
    assert os.listdir(tmp_path) == [folder.name] and (folder.path / RunFolder.RECIPE).is_file()

    def interrupted(new: RunFolder) -> None:
        new.file(RunFolder.RECIPE).write_text("schema: 1\n")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RunFolder.create(tmp_path, "y", write=interrupted)
    assert os.listdir(tmp_path) == [folder.name]  # nothing of the interrupted creation is left

    stale, fresh = tmp_path / ".old-1.partial-abc", tmp_path / ".new-1.partial-def"  # left by kills, a day ago and now
    for p in (stale, fresh):
        p.mkdir()
        (p / RunFolder.RECIPE).write_text("schema: 1\n")
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    RunFolder.create(tmp_path, "z")
    assert not stale.exists() and fresh.exists()
    code, _, err = cli(capsys, "resume", fresh)
    assert code == 2 and "whose creation was stopped before it was complete" in err and "train again" in err


def test_files_and_folders_follow_the_users_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        run = mixframe.train(SPIRAL, [*TINY, "train.epochs=1"], out=tmp_path, progress=False)
        mixframe.resume(run.dir, ["train.epochs=2"], progress=False)
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path): p.stat().st_mode & 0o777 for p in [run.dir, *run.dir.rglob("*")]}
    assert modes[Path(run.name) / CHECKPOINT] == 0o640 and modes[Path(run.name) / RunFolder.RUN] == 0o640
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {0o640}, modes
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} == {0o750}, modes


# -- metrics.csv and temporaries on resume --------------------------------------------------------------------
def test_metrics_csv_keeps_one_line_end_and_drops_a_row_cut_short(spiral_run: Path, tmp_path: Path) -> None:
    run = copy_run(spiral_run, tmp_path)
    metrics = run / RunFolder.METRICS
    checkpoint_step = load_checkpoint(run / CHECKPOINT)["step"]
    lines = metrics.read_text().splitlines()
    assert b"\r" not in metrics.read_bytes()
    # an older run's CRLF rows, and a row a kill cut in the middle (after the checkpoint)
    metrics.write_bytes(("\r\n".join(lines) + f"\r\n{checkpoint_step + 1},3,ae/recons").encode())
    mixframe.resume(run, ["train.epochs=3"], progress=False)
    text = metrics.read_bytes()
    assert b"\r" not in text and b"ae/recons\n" not in text
    rows = [r.split(",") for r in text.decode().splitlines()]
    assert rows[0] == ["step", "epoch", "name", "value"] and all(len(r) == 4 for r in rows)
    assert int(rows[-1][0]) == 12


def test_an_empty_metrics_csv_and_stale_temporaries_are_repaired_on_resume(spiral_run: Path, tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(spiral_run, tmp_path)
    (run / RunFolder.METRICS).write_bytes(b"")  # killed after creating the file, before its header
    stale = [run / f".{CHECKPOINT}.1f2e3d4c", run / f".{RunFolder.RUN}.0a0b0c0d"]  # killed while writing
    for p in stale:
        p.write_bytes(b"")
    code, _, _ = cli(capsys, "resume", run, "--set", "train.epochs=3", "--no-progress")
    assert code == 0
    assert not any(p.exists() for p in stale)
    rows = (run / RunFolder.METRICS).read_text().splitlines()
    assert rows[0] == "step,epoch,name,value" and {int(r.split(",")[0]) for r in rows[1:]} == set(range(9, 13))


def test_a_run_stopped_after_its_last_checkpoint_is_completed_by_resume(spiral_run: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(spiral_run, tmp_path)
    RunFolder(run).update_info(status="running")  # killed after the final checkpoint, before run.json said complete
    code, out, _ = cli(capsys, "resume", run, "--no-progress")
    assert code == 0 and "already complete" not in out
    info = RunFolder(run).info()
    assert info["status"] == "complete" and info["epoch"] == 2 and "epoch/ae/reconstruction" in info["final"]
    code, out, _ = cli(capsys, "resume", run, "--no-progress")
    assert code == 0 and "already complete" in out


# -- failures during training mark the run --------------------------------------------------------------------
def test_a_full_disk_at_the_first_checkpoint_is_a_message_and_marks_the_run_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def full_disk(path: Path, data: bytes) -> None:
        if path.name == CHECKPOINT:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        atomic_write_bytes(path, data)

    monkeypatch.setattr("mixframe.runs.folder.atomic_write_bytes", full_disk)
    code, _, err = cli(capsys, "train", SPIRAL, "--out", tmp_path, "--no-progress", *sets(TINY))
    assert code == 2
    assert "could not write the checkpoint" in err and "No space left on device; no earlier checkpoint exists" in err
    assert "then resume the run" in err
    [run] = tmp_path.iterdir()
    info = RunFolder(run).info()
    assert info["status"] == "failed" and "No space left on device" in info["error"]
    assert [p.name for p in run.glob(".*")] == [RunFolder.LOCK]  # no temporary left, only the (released) write lock


def test_a_data_error_found_during_training_marks_the_run_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(12):  # files named like images that are not: found only when a minibatch reads them
        (images / f"im{i:02d}.png").write_bytes(b"not a png " * 20)
    recipe = tmp_path / "folder.yaml"
    recipe.write_text(f"""schema: 1
data: {{kind: image_folder, root: {images}, size: 16, val_fraction: 0.2, test_fraction: 0.2}}
encoder: {{kind: conv, depth: 4, latent: 4}}
decoder: {{kind: conv, depth: 4}}
mixer: {{kind: none}}
train: {{epochs: 1, batch_size: 4, device: cpu}}
callbacks: []
""")
    code, _, err = cli(capsys, "train", recipe, "--out", tmp_path / "runs", "--no-progress")
    assert code == 2 and f"image {images}" in err and "is not an image" in err and "replace or remove it" in err
    [run] = (tmp_path / "runs").iterdir()
    info = RunFolder(run).info()
    assert info["status"] == "failed" and "is not an image" in info["error"]


# -- Ctrl-C ------------------------------------------------------------------------------------------------------
def test_ctrl_c_during_training_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    original = Trainer.train_step

    def interrupted_at_step_6(self: Trainer, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.step == 5:  # the 6th minibatch, in epoch 2 (a checkpoint was written after epoch 1)
            raise KeyboardInterrupt
        return original(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", interrupted_at_step_6)
    code, _, err = cli(capsys, "train", SPIRAL, "--out", tmp_path, "--no-progress", *sets([*TINY, "train.checkpoint_every=1"]))
    [run] = tmp_path.iterdir()
    assert code == 130
    assert err.strip().splitlines() == [f"mixframe train: interrupted; the run is in {run} (its last checkpoint is kept). "
                                        f"Continue it with: mixframe resume {run}"]
    assert RunFolder(run).status == "interrupted"
    code, _, err = cli(capsys, "resume", run, "--no-progress")
    assert code == 130 and f"Continue it with: mixframe resume {run}" in err
    monkeypatch.undo()
    code, _, _ = cli(capsys, "resume", run, "--no-progress")
    assert code == 0 and RunFolder(run).status == "complete"


def test_ctrl_c_before_the_run_folder_exists_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mixframe.runs.folder.plugin_record", interrupted)  # while the record is written
    code, _, err = cli(capsys, "train", SPIRAL, "--out", tmp_path, "--no-progress", *sets(TINY))
    assert code == 130 and err == "mixframe train: interrupted\n"
    assert os.listdir(tmp_path) == []  # the half-written record is gone


def test_ctrl_c_during_start_up_is_one_line_and_status_130() -> None:
    script = Path(sys.executable).with_name("mixframe")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mixframe"]
    for delay in (0.7, 1.6):  # while torch and the plugins are imported
        proc = subprocess.Popen([*command, "recipe", "check", str(SPIRAL)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            continue  # a fast machine checked the recipe first
        assert proc.returncode == 130 and re.fullmatch(r"mixframe( recipe)?: interrupted\n", err), err[-2000:]


def test_ctrl_c_inside_an_import_arrives_once_the_import_is_over(tmp_path: Path) -> None:
    # raised inside torch's C++ start-up a KeyboardInterrupt aborts the process (SIGABRT), so it must wait
    (tmp_path / "slow_start.py").write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.3)\nDONE = True\n")
    program = textwrap.dedent("""
        import signal, time
        from mixframe.cli.main import interrupt_unless_importing
        signal.signal(signal.SIGINT, interrupt_unless_importing)
        try:
            import slow_start
        except KeyboardInterrupt:
            raise SystemExit("interrupted inside the import")
        try:
            time.sleep(10)
        except KeyboardInterrupt:
            print("interrupted after the import", slow_start.DONE)
    """)
    done = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "interrupted after the import True\n", done.stderr


# -- paths --------------------------------------------------------------------------------------------------------
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only for this process, also when it runs as root (whose DAC override is dropped meanwhile)."""
    folder.chmod(0o555)
    restore = _drop_dac_override() if os.geteuid() == 0 else None
    try:
        yield
    finally:
        if restore:
            restore()
        folder.chmod(0o755)


def _drop_dac_override() -> Callable[[], None]:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.skip("cannot read this process's capabilities")
    saved = data[0].effective
    data[0].effective &= ~((1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), data) != 0:
        pytest.skip("cannot drop CAP_DAC_OVERRIDE to make a folder read-only for root")

    def restore() -> None:
        data[0].effective = saved
        libc.capset(ctypes.byref(Header(0x20080522, 0)), data)

    return restore


# command -> (arguments before --out given a run folder, what --out names: a folder that receives new ones, or a file)
OUT_COMMANDS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "train": (lambda run: ["train", str(SPIRAL), *sets(TINY)], "folder"),
    "sweep": (lambda run: ["sweep", str(SPIRAL), "--grid", "seed=1,2", *sets(TINY)], "folder"),
    "report": (lambda run: ["report", str(run)], "report.html"),
    "interpolate": (lambda run: ["interpolate", str(run)], "picture.png"),
    "masks": (lambda run: ["masks", str(run)], "masks.png"),
    "supervised-grid": (lambda run: ["supervised-grid", str(run)], "grid.png"),
}


@pytest.mark.parametrize("command", list(OUT_COMMANDS))
def test_out_paths_are_checked_before_work_starts(command: str, spiral_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args, kind = OUT_COMMANDS[command]
    name = "runs" if kind == "folder" else kind
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    a_folder = tmp_path / "taken" / name  # a folder named like the file to write
    a_folder.mkdir(parents=True)
    cases = [(a_file / name, f"is under {a_file}, which is a file, not a folder")]
    if kind == "folder":
        cases.append((a_file, f"--out {a_file} is a file; --out names the folder"))
    else:
        cases.append((a_folder, f"--out {a_folder} is a folder; name a file"))
    for out, message in cases:
        code, stdout, err = cli(capsys, *args(spiral_run), "--out", out)
        assert code == 2 and message in err, err
        assert err.count("\n") == 1 and "run folder:" not in stdout
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        code, stdout, err = cli(capsys, *args(spiral_run), "--out", locked / name)
    assert code == 2 and f"cannot be written: {locked} does not accept new files (Permission denied)" in err, err
    assert a_file.read_text() == "mine\n" and os.listdir(locked) == [] and os.listdir(a_folder) == []


def test_out_paths_of_the_python_api_are_checked_before_the_data_is_read(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(MixframeError, match="is a file; it names the folder"):
        mixframe.train(SPIRAL, TINY, out=tmp_path / "f", progress=False)


def test_evaluate_checks_that_it_can_save_before_computing(spiral_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(spiral_run, tmp_path)
    with read_only(run):
        code, out, err = cli(capsys, "evaluate", run, "--metric", "reconstruction")
    assert code == 2 and out == ""
    assert f"cannot save the metrics of {run} (its evaluation.json): {run} does not accept new files (Permission denied)" in err

    def read_only_file_system(path: Path, data: bytes) -> None:  # the folder turns read-only after the check
        if path.name == RunFolder.EVALUATION:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        atomic_write_bytes(path, data)

    monkeypatch.setattr("mixframe.runs.folder.atomic_write_bytes", read_only_file_system)
    code, out, err = cli(capsys, "evaluate", run, "--metric", "reconstruction")
    assert code == 2 and "reconstruction: " in out  # the metrics were printed
    assert "the metrics printed above were computed but not saved" in err and "Read-only file system" in err
    assert not (run / RunFolder.EVALUATION).exists()


# -- devices and sizes ------------------------------------------------------------------------------------------
DEVICE_COMMANDS = {
    "evaluate": lambda run: ["evaluate", str(run)],
    "interpolate": lambda run: ["interpolate", str(run), "--out", str(run.parent / "x.png")],
    "masks": lambda run: ["masks", str(run)],
    "supervised-grid": lambda run: ["supervised-grid", str(run)],
    "attribute-accuracy": lambda run: ["attribute-accuracy", str(run)],
}


@pytest.mark.parametrize("command", list(DEVICE_COMMANDS))
def test_devices_are_checked_before_loading(command: str, spiral_run: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    args = DEVICE_COMMANDS[command](spiral_run)
    code, _, err = cli(capsys, *args, "--device", "nosuch")
    assert code == 2 and err.endswith("error: --device 'nosuch' is not a torch device; use cpu, cuda, cuda:N or mps\n")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU
    code, _, err = cli(capsys, *args, "--device", "cuda")
    assert code == 2 and "--device cuda: no CUDA device is available on this machine" in err and "use --device cpu" in err


@pytest.mark.parametrize(("args", "message"), [
    (["interpolate", "RUN", "--steps", "100000"], "--steps is at most 32 (interpolants per row of the picture), got 100,000"),
    (["interpolate", "RUN", "--pairs", "100000"], "--pairs is at most 32 (rows of the picture per run), got 100,000"),
    (["report", "RUN", "RUN", "--steps", "100000"], "--steps is at most 32"),
    (["report", "RUN", "RUN", "--pairs", "100000"], "--pairs is at most 32"),
    (["supervised-grid", "RUN", "--pairs", "100000"], "--pairs is at most 32 (rows of the picture)"),
    (["masks", "RUN", "--samples", "100000"], "--samples is at most 32"),
    (["attribute-accuracy", "RUN", "--pairs", "1000000000"], "--pairs is at most 10,000"),
])
def test_picture_and_measurement_sizes_are_bounded(args: list[str], message: str, spiral_run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(spiral_run) if a == "RUN" else a for a in args]
    if args[0] in ("interpolate", "report"):
        args += ["--out", str(tmp_path / ("x.png" if args[0] == "interpolate" else "x.html"))]
    started = time.perf_counter()
    code, _, err = cli(capsys, *args)
    assert code == 2 and message in err, err
    assert time.perf_counter() - started < 5
    assert not list(tmp_path.iterdir())


# -- checkpoints that do not belong -------------------------------------------------------------------------------
def test_resume_with_a_checkpoint_of_another_recipe_names_the_mismatch(spiral_run: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    other = mixframe.train(SPIRAL, [*TINY, "train.epochs=1", "encoder.hidden=[8]"], out=tmp_path / "other", progress=False)
    run = copy_run(spiral_run, tmp_path)
    RunFolder(run).update_info(status="interrupted")
    state = load_checkpoint(other.dir / CHECKPOINT)
    shutil.copyfile(other.dir / CHECKPOINT, run / CHECKPOINT)
    code, _, err = cli(capsys, "resume", run, "--set", "train.epochs=3", "--no-progress")
    assert code == 2 and "does not fit the model its recipe builds now" in err
    assert "encoder" in err and "written by another recipe" in err
    assert err.count("\n") == 1
    assert load_checkpoint(run / CHECKPOINT)["step"] == state["step"]  # nothing was overwritten


@pytest.mark.parametrize("command", ["resume", "evaluate", "interpolate", "masks"])
def test_a_torch_file_that_is_not_a_checkpoint_is_refused_by_every_command(command: str, spiral_run: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(spiral_run, tmp_path)
    RunFolder(run).update_info(status="interrupted")
    extra = {"interpolate": ["--out", str(tmp_path / "x.png")], "evaluate": ["--metric", "reconstruction"]}.get(command, [])
    for content in ({"foo": 1}, torch.zeros(3)):
        torch.save(content, run / CHECKPOINT)
        code, _, err = cli(capsys, command, run, *extra)
        assert code == 2 and "is damaged or not a mixframe checkpoint: it " in err, err



def test_ctrl_c_after_the_work_is_done_changes_nothing() -> None:
    # The interpreter's shutdown (torch's finalizers) takes a moment; an interrupt then must not turn a finished
    # command into a traceback or a killed-by-signal status.
    script = Path(sys.executable).with_name("mixframe")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mixframe"]
    for pause in (0.0, 0.004, 0.008):
        proc = subprocess.Popen([*command, "recipe", "check", str(SPIRAL)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert ": ok (" in proc.stdout.readline()
        time.sleep(pause)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and err == "", err[-2000:]


# -- one writer per run folder -----------------------------------------------------------------------------------
HOLD = "import sys, time\nfrom mixframe.runs.folder import RunFolder\nRunFolder(sys.argv[1]).lock().acquire()\nprint('held', flush=True)\ntime.sleep(300)\n"


@pytest.mark.slow
def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(
        spiral_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    run = copy_run(spiral_run, tmp_path)
    RunFolder(run).update_info(status="running")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        assert RunFolder(run).status == "running"  # a live process holds it
        for args in (["resume", run, "--set", "train.epochs=3", "--no-progress"], ["evaluate", run]):
            code, _, err = cli(capsys, *args)
            assert code == 2, err
            assert f"is being written by another process: pid {holder.pid} on {socket.gethostname()}" in err and "Wait for it" in err
        with pytest.raises(MixframeError, match=f"pid {holder.pid}"):
            mixframe.resume(run, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert RunFolder(run).status == "stopped"  # run.json says running, but its process is gone
    code, _, err = cli(capsys, "resume", run, "--set", "train.epochs=3", "--no-progress")  # the dead holder's lock is taken over
    assert code == 0, err
    assert RunFolder(run).status == "complete" and RunFolder(run).writer() is None


def test_without_working_locks_the_recorded_holder_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NFS without lockd answers ENOLCK: a dead holder on this host is taken over, a live one or another host's is respected."""
    import fcntl
    import socket

    from mixframe.runs.folder import FolderLock

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    path = tmp_path / ".lock"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid, host, taken in ((gone.pid, socket.gethostname(), True), (os.getppid(), socket.gethostname(), False),
                             (gone.pid, "another-host", False)):
        path.write_text(json.dumps({"pid": pid, "host": host, "command": "mixframe train"}))
        lock = FolderLock(path, "the run folder X")
        if taken:
            lock.acquire()
            assert json.loads(path.read_text())["pid"] == os.getpid()
            lock.release()
        else:
            with pytest.raises(MixframeError, match=f"pid {pid} on {host} \\(mixframe train\\)") as err:
                lock.acquire()
            assert ("delete" in str(err.value)) == (host == "another-host")


# -- damaged records are messages ----------------------------------------------------------------------------------
def test_a_metrics_csv_row_cut_mid_number_is_repaired_before_any_callback_reads_it(spiral_run: Path, tmp_path: Path,
                                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(spiral_run, tmp_path)
    recipe = run / RunFolder.RECIPE
    recipe.write_text(recipe.read_text().replace("callbacks: []", "callbacks:\n- {kind: validation}"))  # it reads metrics.csv on resume
    assert "kind: validation" in recipe.read_text()
    metrics = run / RunFolder.METRICS
    metrics.write_bytes(metrics.read_bytes() + b"8,2,epoch/val/reconstruction,0.1e")  # a kill in the middle of a number
    code, _, err = cli(capsys, "resume", run, "--set", "train.epochs=3", "--no-progress")
    assert code == 0, err
    assert b"0.1e" not in metrics.read_bytes() and RunFolder(run).status == "complete"
    assert [e for e, _ in RunFolder(run).epoch_curves()["epoch/val/reconstruction"]] == [1, 2, 3]  # each epoch once


@pytest.mark.parametrize("damage", ["wrong_types", "fifo", "dev_zero", "evaluation_shape", "run_json"])
def test_a_damaged_record_is_a_message_naming_it(damage: str, spiral_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(spiral_run, tmp_path)
    checkpoint = run / CHECKPOINT
    if damage == "wrong_types":
        torch.save({**load_checkpoint(checkpoint), "epoch": "2"}, checkpoint)
        commands, expected = (["resume", "evaluate", "interpolate"], "its 'epoch' is '2', not a count")
    elif damage in ("fifo", "dev_zero"):
        checkpoint.unlink()
        os.mkfifo(checkpoint) if damage == "fifo" else checkpoint.symlink_to("/dev/zero")
        commands = ["resume", "evaluate", "interpolate"]
        expected = "is a named pipe (FIFO), not a regular file" if damage == "fifo" else "is a character device (like /dev/zero), not a regular file"
    elif damage == "evaluation_shape":
        (run / RunFolder.EVALUATION).write_text('{"by_metric": [1, 2]}')
        with pytest.raises(MixframeError, match=f"{run / RunFolder.EVALUATION} is damaged .* run 'mixframe evaluate {run}' again"):
            RunFolder(run).evaluation()
        code, _, err = cli(capsys, "report", run, "--out", tmp_path / "r.html")  # the report shows it as unreadable
        assert code == 0 and "is damaged" in (tmp_path / "r.html").read_text()
        commands, expected = [], ""
    else:
        (run / RunFolder.RUN).write_text('{"status": "comp')
        commands, expected = (["resume"], "run record run.json")
    signal.alarm(60)  # a read that blocks fails the test instead of hanging it
    try:
        for command in commands:
            extra = {"interpolate": ["--out", str(tmp_path / "i.png")], "report": ["--out", str(tmp_path / "r.html")]}.get(command, [])
            code, out, err = cli(capsys, command, run, *extra)
            assert code == 2, (command, out, err)
            assert expected in err and "would run code" not in err, (command, err)
    finally:
        signal.alarm(0)


# -- every write failure leaves a true state ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_full_disk_writing_the_final_grid_leaves_no_half_picture_and_resume_completes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def full_disk_at_grid(path: Path, data: bytes) -> None:
        if path.name == RunFolder.GRID:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        atomic_write_bytes(path, data)

    monkeypatch.setattr("mixframe.runs.folder.atomic_write_bytes", full_disk_at_grid)
    overrides = [*TINY, "callbacks=[{kind: training_pictures, pairs: 2, steps: 3}]"]
    code, _, err = cli(capsys, "train", SPIRAL, "--out", tmp_path, "--no-progress", *sets(overrides))
    [run] = tmp_path.iterdir()
    assert code == 2
    assert f"could not write {run / RunFolder.GRID}: No space left on device" in err and "free some space on that disk" in err
    info = RunFolder(run).info()
    assert info["status"] == "failed" and "No space left" in info["error"]
    assert not (run / RunFolder.GRID).exists() and [p.name for p in run.glob(".*")] == [RunFolder.LOCK]
    monkeypatch.undo()
    code, _, err = cli(capsys, "resume", run, "--no-progress")
    assert code == 0, err
    assert RunFolder(run).status == "complete" and (run / RunFolder.GRID).read_bytes().startswith(b"\x89PNG")


def test_a_full_disk_mid_epoch_names_the_scalar_log_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from mixframe.runs.callbacks import ScalarLog

    class FillsUp:
        def __init__(self, file: object) -> None:
            self.file, self.flushes = file, 0

        def flush(self) -> None:
            self.flushes += 1
            if self.flushes == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name: str) -> object:
            return getattr(self.file, name)

    original = ScalarLog.on_start

    def on_start(self: ScalarLog, trainer: object) -> None:
        original(self, trainer)
        self.file = FillsUp(self.file)

    monkeypatch.setattr(ScalarLog, "on_start", on_start)
    code, _, err = cli(capsys, "train", SPIRAL, "--out", tmp_path, "--no-progress", *sets(TINY))
    [run] = tmp_path.iterdir()
    assert code == 2
    assert f"could not log the scalars of step 3: No space left on device ({run / RunFolder.METRICS}); free some space" in err
    assert RunFolder(run).info()["status"] == "failed"


def test_resume_on_a_read_only_disk_is_a_message_naming_the_path_and_the_fix(spiral_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = copy_run(spiral_run, tmp_path)
    real_open = os.open

    def read_only(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if str(path).startswith(str(run)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, _, err = cli(capsys, "resume", run, "--set", "train.epochs=3", "--no-progress")
    assert code == 2
    assert f"the run folder {run} cannot be locked for writing: Read-only file system" in err
    assert "copy the run folder to a writable disk (cp -r) or remount it read-write" in err
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_run_whose_weights_are_not_finite_never_ends_complete(spiral_run: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    class Poison(mixframe.Callback):
        def on_epoch_end(self, trainer: Trainer, means: dict[str, float]) -> None:
            if trainer.done:
                with torch.no_grad():
                    next(trainer.model.decoder.parameters()).fill_(1e30)  # finite weights, outputs inf

    from mixframe.kernel.engine.loop import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="reconstruction loss of the first 64 examples is (inf|nan)"):
        mixframe.train(SPIRAL, TINY, out=tmp_path / "runs", callbacks=[Poison()], progress=False)
    [run] = (tmp_path / "runs").iterdir()
    assert RunFolder(run).info()["status"] == "diverged"
    code, _, err = cli(capsys, "evaluate", run)  # its last checkpoint holds the poisoned weights: a message, not NaN and exit 0
    assert code == 2 and "cannot be evaluated: the reconstruction loss of the first 64 examples is" in err
    assert not (run / RunFolder.EVALUATION).exists()


# -- sweeps leave nothing running ------------------------------------------------------------------------------------
def test_a_sweeps_run_dies_with_the_sweep_even_when_the_sweep_is_killed(tmp_path: Path) -> None:
    parent = textwrap.dedent("""
        import os, subprocess, sys, time
        from mixframe_plugins.launchers.local import die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True,
                                 preexec_fn=die_with_parent(os.getpid()))
        print(child.pid, os.getpgid(child.pid), flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child, group = (int(v) for v in proc.stdout.readline().split())
    try:
        assert group == child and group != os.getpgid(proc.pid)  # a process group of its own: stopped whole
        proc.kill()  # SIGKILL: the sweep cannot clean up; the kernel tells the child
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child), "the run outlived the sweep that was killed"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_sweep_resume_tells_a_live_run_from_a_dead_one(tmp_path: Path) -> None:
    from mixframe.tools.sweep import live_runs

    runs = [{"key": "001", "folder": "p", "seed": 0}, {"key": "002", "folder": "p", "seed": 1}]
    (tmp_path / "p").mkdir()
    hold = HOLD.replace("RunFolder(sys.argv[1]).lock()", "FolderLock(sys.argv[1], 'x')").replace("import RunFolder", "import FolderLock")
    live = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "p" / ".seed0.lock")], stdout=subprocess.PIPE)
    dead = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "p" / ".seed1.lock")], stdout=subprocess.PIPE)
    try:
        assert live.stdout is not None and dead.stdout is not None
        assert live.stdout.readline().strip() == b"held" and dead.stdout.readline().strip() == b"held"
        assert set(live_runs(tmp_path, runs)) == {"001", "002"}
        dead.kill()
        dead.wait()
        found = live_runs(tmp_path, runs)
        assert set(found) == {"001"} and found["001"]["pid"] == live.pid
    finally:
        for proc in (live, dead):
            proc.kill()
            proc.wait()


def test_ctrl_c_during_mains_last_unwatch_is_not_a_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from mixframe.kernel.registry import get_registry

    registry = get_registry()
    watch = registry.watch_warnings

    def watch_then_interrupted(*args: object, **kwargs: object) -> Callable[[], None]:
        unwatch = watch(*args, **kwargs)

        def late_ctrl_c() -> None:
            unwatch()
            raise KeyboardInterrupt

        return late_ctrl_c

    monkeypatch.setattr(registry, "watch_warnings", watch_then_interrupted)
    code, out, _ = cli(capsys, "recipe", "check", SPIRAL)
    assert code == 0 and ": ok (" in out
