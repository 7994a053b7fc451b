"""``local``, the default launcher: a sweep's runs as processes on this machine, up to ``jobs`` at once.

Each run is ``python -m mixframe.tools.sweep run-one`` in a new process (so a run that crashes, or is
killed, takes nothing else with it). The CPU threads are split between the runs that run at once:
each gets ``threads`` (by default the cores this process may use, divided by ``jobs``), set through
``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and ``torch.set_num_threads``, so that two runs do not fight
over the same cores. With several GPUs, each running run gets one of its own (``CUDA_VISIBLE_DEVICES``;
more jobs than GPUs share them in turn); with one GPU every run sees it.

Numbers: on CPU, the thread count changes how some kernels (convolutions) add up, so a conv run
trained with 1 thread differs from one trained with 2 in the last bits. For bit-identical numbers
across ``--jobs`` settings, fix ``threads`` (``--launcher-set threads=1``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from mixframe import Component, LaunchContext, Launcher, MixframeError, RunTask, hookimpl, param, positive
from mixframe.kernel.interfaces import LaunchEvents

POLL_SECONDS = 0.2
STOP_SECONDS = 15.0  # after Ctrl-C, how long runs get to record their state before they are killed


@attrs.frozen(kw_only=True)
class LocalConfig:
    jobs: int = param(1, help="runs at once, each a process of its own", validator=positive)
    threads: int | None = param(None, help="CPU threads per run; null: the cores this process may use divided by jobs (at least 1)",
                                validator=positive)
    gpus: list[int] | None = param(None, help="GPU ids to hand out, one per running run; null: every visible GPU when there are "
                                             "several (with one GPU, every run sees it)")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The GPU ids this process may hand out: CUDA_VISIBLE_DEVICES's list when set, else 0..count-1."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no CUDA build, no driver: no GPUs
        return []


class LocalLauncher(Launcher):
    """Up to ``jobs`` runs at once as processes on this machine, with the CPU threads (and GPUs) split between them."""

    def __init__(self, config: LocalConfig, context: LaunchContext) -> None:
        self.config, self.context = config, context
        self.threads = config.threads or max(1, usable_cores() // config.jobs)

    def gpus(self) -> list[str]:
        if self.config.gpus is not None:
            return [str(g) for g in self.config.gpus]
        found = visible_gpus()
        return found if len(found) > 1 else []  # one GPU (or none): every run sees what this process sees

    def launch(self, tasks: Sequence[RunTask], events: LaunchEvents) -> None:
        gpus = self.gpus()
        queue = deque(tasks)
        free = list(range(self.config.jobs))
        running: dict[int, tuple[subprocess.Popen[bytes], RunTask, Path, Any]] = {}  # slot -> (process, task, outcome file, log)
        outcomes = self.context.folder / "logs"
        outcomes.mkdir(parents=True, exist_ok=True)
        print(f"local launcher: up to {self.config.jobs} run(s) at once, {self.threads} CPU thread(s) each"
              + (f", GPUs {', '.join(gpus)} one per run" if gpus else ""), flush=True)
        try:
            while queue or running:
                while queue and free:
                    slot = free.pop(0)
                    task = attrs.evolve(queue.popleft(), threads=self.threads)
                    gpu = gpus[slot % len(gpus)] if gpus else None
                    running[slot] = self._start(task, gpu, outcomes)
                    events.started(task, f"pid {running[slot][0].pid}" + (f", GPU {gpu}" if gpu is not None else ""))
                time.sleep(POLL_SECONDS)
                for slot, (proc, task, outcome_file, log) in list(running.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    log.close()
                    del running[slot]
                    free.append(slot)
                    events.finished(task, read_outcome(outcome_file, code, Path(task.log)))
        except BaseException:
            stop([proc for proc, *_ in running.values()])
            raise

    def _start(self, task: RunTask, gpu: str | None, outcomes: Path) -> tuple[subprocess.Popen[bytes], RunTask, Path, Any]:
        outcome_file = outcomes / f"{task.key}.outcome.json"
        outcome_file.unlink(missing_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads), "PYTHONUNBUFFERED": "1"}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        Path(task.log).parent.mkdir(parents=True, exist_ok=True)
        log = open(task.log, "ab")  # noqa: SIM115 - closed when the process ends
        cmd = [sys.executable, "-m", "mixframe.tools.sweep", "run-one", json.dumps(task.to_dict()), str(outcome_file)]
        try:  # a process group of its own (stopped whole, DataLoader workers included), dying with this process
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=die_with_parent(os.getpid()))
        except OSError as err:
            log.close()
            raise MixframeError(f"cannot start a run's process ({err.strerror or err})") from None
        return proc, task, outcome_file, log


def read_outcome(outcome_file: Path, code: int, log: Path) -> dict[str, Any]:
    """The outcome the run wrote, or why its process ended without one (a signal, an exit status, the log's last line)."""
    if outcome_file.is_file():
        try:
            outcome = json.loads(outcome_file.read_text())
            if isinstance(outcome, dict) and "status" in outcome:
                return outcome
        except (OSError, ValueError):
            pass
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = f"the run's process was killed by {name}"
    else:
        why = f"the run's process ended with exit status {code}"
    last = last_line(log)
    return {"status": "failed", "message": why + (f"; its last output: {last}" if last else "")}


def last_line(path: Path, limit: int = 300) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""


def die_with_parent(parent: int) -> Any:
    """A ``preexec_fn`` that makes the child receive SIGTERM when ``parent`` dies, however it dies (SIGKILL included):
    Linux's ``prctl(PR_SET_PDEATHSIG)``, which survives the exec. A child whose parent is already gone exits at once.
    Elsewhere nothing is set (the sweep's SIGTERM and SIGINT handlers still stop the runs)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True) if sys.platform.startswith("linux") else None
    except OSError:
        libc = None

    def preexec() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: no signal will come
            os._exit(1)

    return preexec


PR_SET_PDEATHSIG = 1


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Ask the runs to stop (SIGINT to each run's process group: each records its state, its checkpoint stays), then kill
    what remains of the groups."""
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGINT)
    deadline = time.monotonic() + STOP_SECONDS
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _signal_group(proc, signal.SIGKILL)  # anything the run started (DataLoader workers) goes with it


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the run's own group (start_new_session): its pid is the group's id
    except (ProcessLookupError, PermissionError):
        pass


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="launcher", name="local", implementation=LocalLauncher, config=LocalConfig,
                      summary="runs as processes on this machine, up to jobs at once, CPU threads and GPUs split between them")]
