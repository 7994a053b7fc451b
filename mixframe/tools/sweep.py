"""Sweeps: a grid of recipe values, several seeds each, every run a process of its own, started by a launcher.

A sweep folder holds::

    sweep.json        what the sweep is (recipe, grid, seeds, overrides, metrics, launcher) and the state
                      of every run: pending, running, complete or failed (with the message), rewritten
                      atomically at every change
    summary.md        mean ± standard deviation per grid point over the runs that finished; missing runs named
    panels.png        when a recipe metric draws panels (DrawsPanel; manifold for 2-D data): each point's first finished run
    logs/KEY.log      each run's output
    POINT/seedN-TIME  the run folders

A launcher (a plugin: ``local``, ``ray``, ``slurm``, ...) starts the runs; each run is
:func:`run_task` in a fresh process: train (or resume the run folder already there) and evaluate. A
run that fails is recorded with its message and the others go on; :func:`resume_sweep` (``mixframe
sweep --resume SWEEP_DIR``) runs again only the runs that did not finish, each from its last
checkpoint. The summary and pictures are written from whatever finished.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import re
import signal
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mixframe.errors import MixframeError, RecipeError
from mixframe.kernel.interfaces import LaunchContext, Launcher, RunTask
from mixframe.kernel.registry import get_registry

SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.md"
PANELS_FILE = "panels.png"
LOGS = "logs"
STATUSES = ("pending", "running", "complete", "failed")
DEFAULT_LAUNCHER = "local"
MAX_RUNS = 1000
"""The most runs a sweep plans unless told otherwise (``--max-runs``): planning alone takes some 20 ms a run."""


def split_values(text: str) -> list[Any]:
    """``v1,v2,[a, b]`` -> YAML-parsed values; commas inside brackets or braces do not split."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    from mixframe.kernel.files import UserFileError, parse_user_yaml

    try:
        return [parse_user_yaml(p, source="--grid", what="sweep value") for p in parts if p.strip()]
    except UserFileError as err:
        raise MixframeError(f"--grid value in {text!r}: {'; '.join(problem for _, problem in err.problems)}") from None


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    grid = []
    for item in items:
        if "=" not in item:
            raise MixframeError(f"--grid {item!r}: write KEY=V1,V2,..., for example regularizers.1.weight=0,0.1,10")
        key, values = item.split("=", 1)
        parsed = split_values(values)
        if not parsed:
            raise MixframeError(f"--grid {key}: no values given")
        grid.append((key.strip(), parsed))
    return grid


def point_label(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "recipe"


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def mean_spread(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else 0.0)


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


# -- planning ------------------------------------------------------------------------------------------
def _folder_name(label: str) -> str:
    """A run's parent folder under the sweep folder: its point label made safe, shortened with a digest when long."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", label)
    if len(safe) > 80:
        safe = f"{safe[:64]}-{hashlib.sha256(label.encode()).hexdigest()[:10]}"
    return safe


def _digest(recipe: Any) -> str:
    return hashlib.sha256(recipe.to_yaml().encode()).hexdigest()[:16]


def plan_size(grid: Sequence[tuple[str, list[Any]]], seeds: int, max_runs: int = 1000) -> int:
    """How many runs ``grid`` x ``seeds`` makes, counted before any is built (planning checks each run's recipe, some
    20 ms each); more than ``max_runs`` is a MixframeError saying how to ask for them."""
    if seeds < 1:
        raise MixframeError("--seeds must be at least 1")
    if max_runs < 1:
        raise MixframeError("--max-runs must be at least 1")
    size = math.prod(len(values) for _, values in grid) * seeds
    if size > max_runs:
        shape = " x ".join([*(f"{len(v)} ({k})" for k, v in grid), f"{seeds} seed{'s' if seeds != 1 else ''}"])
        raise MixframeError(f"the sweep plans {size:,} runs ({shape}), more than --max-runs {max_runs:,}; "
                            "sweep fewer values or seeds, or raise --max-runs if you mean it")
    return size


def plan_runs(recipe: Path, grid: Sequence[tuple[str, list[Any]]], seeds: int, overrides: Sequence[str],
              max_runs: int = MAX_RUNS) -> list[dict[str, Any]]:
    """Every run of the sweep as a pending record (at most ``max_runs``); each point's recipe is checked before anything trains."""
    from mixframe.kernel.recipe import load_recipe

    plan_size(grid, seeds, max_runs)
    base = load_recipe(recipe, list(overrides))
    points = [dict(zip([k for k, _ in grid], combo)) for combo in itertools.product(*[v for _, v in grid])]
    runs: list[dict[str, Any]] = []
    for point in points:
        for i in range(seeds):
            seed = base.seed + i
            point_overrides = [*overrides, *(f"{k}={_dump(v)}" for k, v in point.items()), f"seed={seed}"]
            checked = load_recipe(recipe, point_overrides)
            runs.append({"key": f"{len(runs) + 1:03d}", "point": point, "seed": seed, "overrides": point_overrides,
                         "folder": _folder_name(point_label(point)), "recipe_digest": _digest(checked), "status": "pending",
                         "message": "", "run": None, "metrics": {}, "log": f"{LOGS}/{len(runs) + 1:03d}.log", "where": "",
                         "started": None, "finished": None, "seconds": None, "attempts": 0})
    return runs


def _task(record: dict[str, Any], folder: Path, run: dict[str, Any]) -> RunTask:
    return RunTask(key=run["key"], label=f"{point_label(run['point'])} seed={run['seed']}", recipe=record["recipe_path"],
                   overrides=tuple(run["overrides"]), metrics=tuple(record["metrics"]), out=str(folder.resolve() / run["folder"]),
                   name=f"seed{run['seed']}", log=str(folder.resolve() / run["log"]))


def _command_line(recipe: str, grid: Sequence[str], seeds: int, overrides: Sequence[str], metrics: Sequence[str]) -> str:
    return " ".join(["mixframe sweep", str(recipe), *(f"--grid {g}" for g in grid), f"--seeds {seeds}",
                     *(f"--set {s}" for s in overrides), *(f"--metric {m}" for m in metrics)])


# -- launchers -----------------------------------------------------------------------------------------
LauncherLike = str | Launcher | None


def parse_launcher_options(options: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``["jobs=2", "address=auto"]`` (values parsed as YAML, as ``--set`` does) or a mapping -> a dict."""
    if isinstance(options, Mapping):
        return dict(options)
    from mixframe.kernel.files import UserFileError, parse_user_yaml

    out: dict[str, Any] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MixframeError(f"--launcher-set {item!r}: write KEY=VALUE, for example jobs=2 (see mixframe explain launcher NAME)")
        try:
            out[key.strip()] = parse_user_yaml(value, source="--launcher-set", what="launcher option") if value.strip() else None
        except UserFileError as err:
            raise MixframeError(f"--launcher-set {key.strip()}: {'; '.join(problem for _, problem in err.problems)}") from None
    return out


def make_launcher(launcher: LauncherLike, options: Sequence[str] | Mapping[str, Any], folder: Path,
                  recorded: Mapping[str, Any] | None = None) -> tuple[Launcher, dict[str, Any]]:
    """The launcher to use and what sweep.json records of it (``{"kind": NAME, "options": {...}}``).

    ``launcher``: a registered name, a built :class:`~mixframe.Launcher`, or None for the ``recorded``
    one (a resumed sweep), else ``local``. ``options`` are checked by the launcher's config class; for
    the recorded launcher they go over its recorded options. Building one writes nothing.
    """
    if isinstance(launcher, Launcher):
        return launcher, {"kind": f"(object) {type(launcher).__name__}", "options": {}}
    name = launcher or (recorded or {}).get("kind") or DEFAULT_LAUNCHER
    raw = dict((recorded or {}).get("options", {})) if (recorded or {}).get("kind") == name else {}
    raw.update(parse_launcher_options(options))
    try:
        built: Launcher = get_registry().build("launcher", name, raw, LaunchContext(folder=folder))
    except RecipeError as err:
        raise MixframeError("launcher options (--launcher-set, --jobs): " + "; ".join(f"{where}: {what}" for where, what in err.problems)
                            + f" (see mixframe explain launcher {name})") from None
    return built, {"kind": name, "options": raw}


# -- the sweep's state ---------------------------------------------------------------------------------
class SweepState:
    """The sweep's record in memory and in sweep.json (rewritten atomically at every change): the launcher's
    :class:`~mixframe.kernel.interfaces.LaunchEvents`, and the progress lines (runs done / running / failed)."""

    def __init__(self, folder: Path, record: dict[str, Any], progress: bool = True) -> None:
        self.folder, self.record, self.progress = folder, record, progress
        self.lock = threading.Lock()
        self.by_key = {run["key"]: run for run in record["runs"]}
        self.todo: set[str] = set()  # the runs handed to the launcher this time

    def save(self) -> None:
        from mixframe.runs.folder import write_json

        write_json(self.folder / SWEEP_FILE, self.record)

    def counts(self) -> dict[str, int]:
        return {s: sum(run["status"] == s for run in self.record["runs"]) for s in STATUSES}

    def line(self) -> str:
        c = self.counts()
        return f"[{c['complete']}/{len(self.record['runs'])} done, {c['running']} running, {c['failed']} failed]"

    def say(self, text: str) -> None:
        if self.progress:
            print(f"{self.line()} {text}", flush=True)

    def started(self, task: RunTask, where: str = "") -> None:
        with self.lock:
            run = self.by_key[task.key]
            run.update(status="running", message="", where=where, started=now(), finished=None, attempts=run.get("attempts", 0) + 1)
            self.save()
            self.say(f"{task.key} {task.label}: started{f' ({where})' if where else ''}")

    def finished(self, task: RunTask, outcome: Mapping[str, Any]) -> None:
        with self.lock:
            run = self.by_key[task.key]
            status = "complete" if outcome.get("status") == "complete" else "failed"
            found = outcome.get("run") or latest_run_folder(Path(task.out), task.name)
            run.update(status=status, message="" if status == "complete" else str(outcome.get("message") or "failed (no message)"),
                       metrics=dict(outcome.get("metrics") or {}) if status == "complete" else {},
                       run=self._path(Path(found)) if found else None,
                       finished=now(), seconds=outcome.get("seconds"))
            self.save()
            seconds = f" in {outcome['seconds']:.1f} s" if isinstance(outcome.get("seconds"), (int, float)) else ""
            if status == "complete":
                self.say(f"{task.key} {task.label}: complete{seconds}")
            else:
                self.say(f"{task.key} {task.label}: FAILED{seconds}: {run['message']} (log: {self.folder / run['log']})")

    def _path(self, run_dir: Path) -> str:
        """A run folder as sweep.json records it: under the sweep folder as the caller named it (relative or absolute)."""
        try:
            return str(self.folder / run_dir.resolve().relative_to(self.folder.resolve()))
        except ValueError:
            return str(run_dir)

    def close_unfinished(self, message: str) -> None:
        """Runs the launcher left running or pending (interrupted, or a launcher that returned early) become failed."""
        with self.lock:
            for key in self.todo:
                run = self.by_key[key]
                if run["status"] in ("running", "pending"):
                    run.update(status="failed", message=message, finished=now())
            self.save()


def read_sweep(folder: str | Path) -> dict[str, Any]:
    """A sweep folder's sweep.json (the plan and every run's state), or a MixframeError saying why ``folder`` is not one."""
    from mixframe.runs.folder import read_json

    folder = Path(folder)
    if not (folder / SWEEP_FILE).is_file():
        what = "does not exist" if not folder.exists() else f"is not a sweep folder (no {SWEEP_FILE})"
        raise MixframeError(f"{folder} {what}; pass a folder made by 'mixframe sweep'")
    record = read_json(folder / SWEEP_FILE)
    if not isinstance(record.get("runs"), list) or any(not isinstance(r, dict) or r.get("status") not in STATUSES for r in record["runs"]):
        raise MixframeError(f"{folder / SWEEP_FILE} holds no run states (a sweep made by an older mixframe, or a damaged file); "
                            "start a new sweep")
    return record


def _locked(folder: Path) -> Any:
    """One sweep process per folder: a second one (a --resume while the sweep still runs) is refused, naming the holder."""
    from mixframe.runs.folder import FolderLock

    return FolderLock(folder / ".lock", f"the sweep folder {folder}")


# -- running a sweep -----------------------------------------------------------------------------------
def sweep(recipe: str | Path, grid: Sequence[str] = (), *, seeds: int = 1, metrics: Sequence[str] = (), overrides: Sequence[str] = (),
          out: str | Path = "runs", progress: bool = True, launcher: LauncherLike = None,
          launcher_options: Sequence[str] | Mapping[str, Any] = (), max_runs: int = MAX_RUNS) -> Path:
    """Train every point of ``grid`` (``KEY=V1,V2,...`` items; their product) with ``seeds`` seeds each, evaluate
    each run, and write the sweep folder (sweep.json, summary.md, panels.png for 2-D data); returns its path.

    ``launcher`` starts the runs, each in a process of its own: a registered name (``local``, the default;
    ``ray``; ``slurm``; ``mixframe components launcher`` lists them) with ``launcher_options`` checked by its
    config class (``["jobs=2"]`` or ``{"jobs": 2}``), or a built :class:`~mixframe.Launcher`. Failed runs
    are recorded and the others go on; :func:`resume_sweep` runs them again.
    """
    from mixframe.kernel.recipe import load_recipe
    from mixframe.kernel.shipped import recipe_path

    named, recipe = str(recipe), recipe_path(recipe)  # a shipped recipe's name (spiral_amr, shipped:spiral_amr) means its file
    parsed = parse_grid(grid)
    runs = plan_runs(recipe, parsed, seeds, overrides, max_runs)  # sized first, then every point's recipe is checked
    for name in metrics:
        try:
            get_registry().get("metric", name)
        except MixframeError as err:
            raise MixframeError(f"--metric: {err}") from None
    out = Path(out)
    base = f"sweep-{_folder_name(recipe.stem)}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder = next(out / name for n in itertools.count(1) if not (out / (name := base if n == 1 else f"{base}-{n}")).exists())
    try:
        out.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    except FileExistsError:  # another sweep took the name a moment ago
        folder = next(out / name for n in itertools.count(2) if not (out / (name := f"{base}-{n}")).exists())
        folder.mkdir()
    except OSError as err:
        raise MixframeError(f"cannot create the sweep folder {folder}: {err.strerror or err}") from None
    try:
        built, launcher_record = make_launcher(launcher, launcher_options, folder.resolve())
    except BaseException:
        folder.rmdir()  # an option mistake, a missing extra: no folder left behind
        raise
    (folder / LOGS).mkdir()
    record = {"recipe": named, "recipe_path": str(recipe.resolve()), "grid": parsed, "seeds": seeds, "overrides": list(overrides),
              "metrics": list(metrics), "command": _command_line(named, grid, seeds, overrides, metrics), "created": now(),
              "launcher": launcher_record, "runs": runs}
    if progress:
        print(f"sweep folder: {folder}")
        if not metrics and not load_recipe(recipe, runs[0]["overrides"]).metrics:
            print("note: the recipe names no metrics and no --metric was given: the runs are trained, not evaluated")
    return _run(folder, record, built, progress)


def resume_sweep(folder: str | Path, *, launcher: LauncherLike = None, launcher_options: Sequence[str] | Mapping[str, Any] = (),
                 progress: bool = True) -> Path:
    """Run again the runs of a sweep that did not finish (pending, failed, or running when the sweep was stopped),
    each from its run folder's last checkpoint when it has one; then rewrite the summary. Runs that completed are
    kept. ``launcher`` and ``launcher_options`` as for :func:`sweep`; by default the launcher the sweep recorded."""
    from mixframe.kernel.recipe import load_recipe

    folder = Path(folder)
    record = read_sweep(folder)
    todo = [run for run in record["runs"] if run["status"] != "complete"]
    recipe_path = Path(record["recipe_path"])
    if todo and not recipe_path.is_file():
        raise MixframeError(f"the sweep's recipe {recipe_path} is gone; the {len(todo)} unfinished run(s) need it")
    for run in todo:  # the recipe file must still say what the sweep planned
        if not latest_run_folder(folder.resolve() / run["folder"], f"seed{run['seed']}"):
            if _digest(load_recipe(recipe_path, run["overrides"])) != run.get("recipe_digest"):
                raise MixframeError(f"{recipe_path} (or a recipe it extends) changed since the sweep started, so run {run['key']} "
                                    f"({point_label(run['point'])} seed={run['seed']}) would train something else; "
                                    "restore the file, or start a new sweep")
    live = live_runs(folder, todo)
    built, launcher_record = make_launcher(launcher, launcher_options, folder.resolve(), record.get("launcher"))
    record["launcher"] = launcher_record
    (folder / LOGS).mkdir(exist_ok=True)
    if progress:
        done = len(record["runs"]) - len(todo)
        print(f"resuming {folder}: {done} of {len(record['runs'])} runs complete, {len(todo) - len(live)} to run")
        for key, holder in live.items():
            print(f"run {key} is still training (pid {holder.get('pid', '?')} on {holder.get('host', '?')}): left alone; "
                  f"resume the sweep again once it has ended")
    return _run(folder, record, built, progress, skip=set(live))


def live_runs(folder: Path, runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The runs among ``runs`` that a live process is still training (its run lock is held: a run of a sweep that was
    killed while its runs went on), key -> holder {pid, host}; a run whose process died holds no lock and is not here."""
    from mixframe.runs.folder import FolderLock

    live = {}
    for run in runs:
        out = folder.resolve() / run["folder"]
        lock = out / f".seed{run['seed']}.lock"
        holder = FolderLock(lock, "").held_elsewhere() if lock.is_file() else None
        if holder is not None:
            live[run["key"]] = holder
    return live


def _run(folder: Path, record: dict[str, Any], launcher: Launcher, progress: bool, skip: Collection[str] = ()) -> Path:
    state = SweepState(folder, record, progress)
    todo = [run for run in record["runs"] if run["status"] != "complete" and run["key"] not in skip]
    for run in todo:
        run["status"] = "pending"
    state.todo = {run["key"] for run in todo}
    with _locked(folder):
        state.save()
        tasks = [_task(record, folder, run) for run in todo]
        if progress and tasks:
            options = ", ".join(f"{k}={v}" for k, v in record["launcher"]["options"].items())
            print(f"{len(tasks)} run(s) to train with the {record['launcher']['kind']} launcher{f' ({options})' if options else ''}")
        try:
            if tasks:
                launcher.launch(tasks, state)
        except KeyboardInterrupt:
            state.close_unfinished("interrupted (the sweep was stopped); mixframe sweep --resume runs it again")
            write_summary(folder, record, echo=False)
            raise KeyboardInterrupt(f"interrupted; finished runs are kept in {folder}. "
                                    f"Continue with: mixframe sweep --resume {folder}") from None
        finally:
            state.close_unfinished("the launcher ended without running it")
        write_summary(folder, record)
    return folder


# -- one run, in its own process -----------------------------------------------------------------------
def latest_run_folder(out: Path, name: str) -> Path | None:
    """The newest run folder ``out/NAME-TIME`` (one that has its recipe), or None."""
    from mixframe.runs.folder import RunFolder

    found = sorted(p for p in out.glob(f"{name}-*") if (p / RunFolder.RECIPE).is_file()) if out.is_dir() else []
    return found[-1] if found else None


def _run_lock(out: Path, name: str) -> Any:
    """One process per run: a run still going in a process the sweep lost track of (a sweep process killed while
    its runs went on, a Slurm job) is not trained a second time beside it. The run folder's own lock
    (:class:`~mixframe.runs.folder.FolderLock`) guards each folder; this one guards choosing between train and resume."""
    from mixframe.runs.folder import FolderLock

    out.mkdir(parents=True, exist_ok=True)
    return FolderLock(out / f".{name}.lock", f"run {name} in {out}")


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """This process's stdout and stderr (file descriptors 1 and 2, so C libraries' output too) appended to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with path.open("ab", buffering=0) as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


@contextlib.contextmanager
def _messages_on_stdout() -> Iterator[None]:
    """The ``mixframe`` loggers' messages (information and up) written to stdout for the block, as the command line shows them."""
    package = logging.getLogger("mixframe")
    handler, level = logging.StreamHandler(sys.stdout), package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


def _evaluate(run: Any, names: Sequence[str], split: str = "test") -> dict[str, float]:
    """The run's metrics on ``split``; test numbers evaluation.json already holds for this step are read back, not computed again."""
    from mixframe.runs.evaluation import evaluate, metric_specs

    if not names and not run.recipe.metrics:
        return {}  # trained, not evaluated: measured afterwards by a command of its own (e.g. attribute-accuracy)
    wanted = [spec.name for spec in metric_specs(run, names)]
    try:
        saved = run.folder.evaluation()
    except MixframeError:  # damaged: computed again, and replaced
        saved = {}
    by_metric = saved.get("by_metric", {})
    if split == "test" and saved.get("step") == run.step and all(n in by_metric for n in wanted):
        return {k: float(v) for n in wanted for k, v in by_metric[n].items()}
    return evaluate(run, names, split=split)


def run_task(task: RunTask) -> dict[str, Any]:
    """Train one run of a sweep (or resume its run folder from the last checkpoint), then evaluate it.

    What every launcher calls, in a fresh process (picklable; ``python -m mixframe.tools.sweep run-one`` from a
    shell). Its output, the library's messages (the ``mixframe`` loggers') included, goes to ``task.log``. A
    failure of the run is returned, not raised:
    ``{"status": "complete" | "failed", "message", "run", "metrics", "seconds"}``.
    """
    import socket

    started = time.perf_counter()
    outcome: dict[str, Any]
    with _output_to(Path(task.log)), _messages_on_stdout():
        print(f"== run {task.key}: {task.label}, on {socket.gethostname()} (pid {os.getpid()}), {now()}", flush=True)
        try:
            import torch

            if task.threads:
                torch.set_num_threads(task.threads)
            from mixframe.runs.api import resume, train

            with _run_lock(Path(task.out), task.name):
                existing = latest_run_folder(Path(task.out), task.name)
                if existing is not None:
                    print(f"resuming {existing}", flush=True)
                    run = resume(existing, progress=False)
                else:
                    run = train(task.recipe, list(task.overrides), out=task.out, name=task.name, progress=False)
                metrics = _evaluate(run, task.metrics, task.split)
                by_seed = {str(seed): run.evaluate(task.metrics, split=task.split, seed=seed, write=False) for seed in task.eval_seeds}
            outcome = {"status": "complete", "message": "", "run": str(run.dir.resolve()), "metrics": metrics, "split": task.split,
                       "eval_seeds": by_seed}
        except KeyboardInterrupt:
            outcome = {"status": "failed", "message": "interrupted"}
        except MixframeError as err:
            outcome = {"status": "failed", "message": str(err)}
        except Exception as err:  # noqa: BLE001 - a run's bug is its outcome; the traceback goes to its log
            traceback.print_exc()
            outcome = {"status": "failed", "message": f"{type(err).__name__}: {err} (traceback in {task.log})"}
        outcome["seconds"] = round(time.perf_counter() - started, 2)
        print(f"== run {task.key}: {outcome['status']} in {outcome['seconds']:.1f} s {outcome.get('message', '')}".rstrip(), flush=True)
    if not outcome.get("run"):
        found = latest_run_folder(Path(task.out), task.name)
        outcome["run"] = str(found.resolve()) if found else None
    return outcome


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mixframe.tools.sweep run-one TASK_JSON OUTCOME_FILE``: :func:`run_task` on a task written out with
    ``RunTask.to_dict``; its outcome is written to OUTCOME_FILE; exit status 0 when the run completed."""
    from mixframe.runs.folder import write_json

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "run-one":
        print("usage: python -m mixframe.tools.sweep run-one TASK_JSON OUTCOME_FILE", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # the sweep stopping (or dying: PR_SET_PDEATHSIG) records the run as interrupted
    outcome = run_task(RunTask.from_dict(json.loads(args[1])))
    write_json(Path(args[2]), outcome)
    return 0 if outcome["status"] == "complete" else 1


# -- summary -------------------------------------------------------------------------------------------
def run_dir(folder: str | Path, record: Mapping[str, Any]) -> Path | None:
    """A run's folder from its sweep.json record: the recorded path, or (a sweep folder moved, or read from
    another working directory) the same run folder under ``folder``; None when it has none."""
    if not record.get("run"):
        return None
    recorded = Path(record["run"])
    if recorded.is_dir():
        return recorded
    here = Path(folder) / record.get("folder", "") / recorded.name
    return here if here.is_dir() else recorded


def finished(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of runs that completed (records without a status, from older sweeps, count as complete)."""
    return [rec for rec in records if rec.get("status", "complete") == "complete"]


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per grid point: metric -> (mean, standard deviation over seeds), over the runs that completed."""
    by_point: dict[str, list[dict[str, float]]] = {}
    for rec in finished(records):
        by_point.setdefault(point_label(rec["point"]), []).append(rec["metrics"])
    return {label: {k: mean_spread([m[k] for m in ms if k in m]) for k in dict.fromkeys(k for m in ms for k in m)}
            for label, ms in by_point.items()}


def summary_markdown(summary: dict[str, dict[str, tuple[float, float]]], command_line: str, seeds: int,
                     records: Sequence[dict[str, Any]] | None = None, folder: Path | None = None) -> str:
    """The summary table; with ``records``, a ``runs`` column (finished / planned) per point, a row for each
    point with no finished run, and a list of the missing runs with their state and message."""
    columns = list(dict.fromkeys(k for row in summary.values() for k in row))
    planned: dict[str, list[dict[str, Any]]] = {}
    for rec in records or ():
        planned.setdefault(point_label(rec["point"]), []).append(rec)
    labels = list(dict.fromkeys([*planned, *summary]))
    runs_column = ["runs"] if records is not None else []
    lines = [f"Command: `{command_line}`", "", f"Mean ± standard deviation over {seeds} seed(s), over the runs that finished.", "",
             "| point | " + " | ".join([*runs_column, *columns]) + " |", "|---" * (len(columns) + len(runs_column) + 1) + "|"]
    for label in labels:
        row = summary.get(label, {})
        cells = [f"{len(finished(planned[label]))}/{len(planned[label])}"] if records is not None else []
        cells += [f"{row[c][0]:.4g} ± {row[c][1]:.2g}" if c in row else ("no finished run" if not row and i == 0 else "")
                  for i, c in enumerate(columns)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    missing = [rec for rec in records or () if rec.get("status", "complete") != "complete"]
    if missing:
        where = f" {folder}" if folder is not None else " SWEEP_DIR"
        lines += ["", f"**Missing: {len(missing)} of {len(records or ())} runs did not finish** (`mixframe sweep --resume{where}` "
                      "runs them again, each from its last checkpoint):", ""]
        for rec in missing:
            message = " ".join(str(rec.get("message") or "").split())
            lines.append(f"- {rec['key']} {point_label(rec['point'])} seed={rec['seed']}: {rec['status']}"
                         + (f": {message[:300]}" if message else "") + (f" (log: {rec['log']})" if rec.get("log") else ""))
    return "\n".join(lines) + "\n"


def write_summary(folder: Path, record: dict[str, Any], *, echo: bool = True) -> None:
    """summary.md and panels.png from whatever finished (missing runs named); ``echo`` prints the table."""
    from mixframe.runs.evaluation import format_table
    from mixframe.runs.folder import atomic_write_bytes

    records = record["runs"]
    summary = summarise(records)
    text = summary_markdown(summary, record.get("command", ""), record.get("seeds", 1), records, folder)
    atomic_write_bytes(folder / SUMMARY_FILE, text.encode())
    done = finished(records)
    if echo:
        print()
        if summary:
            print(format_table({label: {k: f"{m:.4g} ± {s:.2g}" for k, (m, s) in row.items()} for label, row in summary.items()}))
        missing = len(records) - len(done)
        if missing:
            print(f"\n{missing} of {len(records)} runs did not finish (listed in {folder / SUMMARY_FILE}); "
                  f"mixframe sweep --resume {folder} runs them again")
    if done:
        try:
            _sweep_panels(records, folder)
        except MixframeError as err:
            print(f"warning: no panels.png: {err}")


def _sweep_panels(records: list[dict[str, Any]], sweep_dir: Path) -> None:
    """When one of the recipe's metrics draws panels (:class:`~mixframe.kernel.interfaces.DrawsPanel`, such as
    ``manifold`` for 2-D data): one panel per grid point (its first finished seed), captioned with the point and
    the metrics' headline values; a point with no finished run gets an empty panel that says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixframe.kernel.interfaces import BuildContext, DrawsPanel
    from mixframe.runs.api import load_run

    firsts: dict[str, dict[str, Any] | None] = {}
    for rec in records:
        label = point_label(rec["point"])
        if rec.get("status", "complete") == "complete" and rec.get("run"):
            if firsts.get(label) is None:
                firsts[label] = rec
        else:
            firsts.setdefault(label, None)
    done = [rec for rec in firsts.values() if rec is not None]
    if not done:
        return
    first = load_run(run_dir(sweep_dir, done[0]) or "")
    context = BuildContext(data=first.spec, code_shape=tuple(first.encoder.code_shape))
    metrics = [get_registry().build("metric", m.name, m.config, context) for m in first.recipe.metrics]
    headlines = [h for metric in metrics if (h := getattr(metric, "headline", None))]
    drawer = next((metric for metric in metrics if isinstance(metric, DrawsPanel)), None)
    if drawer is None:
        return
    drawn: dict[str, tuple[Callable[[Any], None], list[str]] | None] = {}
    for label, found in firsts.items():
        if found is None:
            drawn[label] = None
            continue
        run = load_run(run_dir(sweep_dir, found) or "")
        drawn[label] = (functools.partial(drawer.draw_panel, run), [f"{k}: {found['metrics'][k]:.2f}" for k in headlines if k in found["metrics"]])
    fig = panels_figure(drawn, drawer.panel_title)
    fig.savefig(sweep_dir / PANELS_FILE, dpi=120)
    plt.close(fig)


def panels_figure(drawn: Mapping[str, tuple[Callable[[Any], None], list[str]] | None], title: str) -> Any:
    """The matplotlib figure of panels.png: per label (a function drawing its panel on a matplotlib axis, headline numbers),
    or None for a grid point with no finished run. Aligned: one scale and one box size for every panel, titles of as many lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = 1 + max((len(item[1]) for item in drawn.values() if item is not None), default=0)
    fig, axes = plt.subplots(1, len(drawn), figsize=(3.2 * len(drawn), 3.2 + 0.18 * lines), squeeze=False)
    for ax, (label, item) in zip(axes[0], drawn.items()):
        numbers = item[1] if item is not None else []
        if item is None:
            ax.text(0.5, 0.5, "no finished run\n(mixframe sweep --resume)", ha="center", va="center", fontsize=9, color="0.4",
                    transform=ax.transAxes)
        else:
            item[0](ax)
        ax.set_title("\n".join([label, *numbers, *[" "] * (lines - 1 - len(numbers))]), fontsize=9)
    boxes = [ax.dataLim for ax, item in zip(axes[0], drawn.values()) if item is not None]
    if boxes:
        x0, x1 = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
        y0, y1 = min(b.y0 for b in boxes), max(b.y1 for b in boxes)
        half = max(x1 - x0, y1 - y0) / 2 * 1.08
        for ax in axes[0]:
            ax.set_xlim((x0 + x1) / 2 - half, (x0 + x1) / 2 + half)
            ax.set_ylim((y0 + y1) / 2 - half, (y0 + y1) / 2 + half)
    for ax in axes[0]:
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}; every panel on the same scale", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # room for the title above the panels' own
    return fig


if __name__ == "__main__":
    sys.exit(main())
