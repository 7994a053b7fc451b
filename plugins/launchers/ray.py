"""``ray``: each run of a sweep a Ray task with the CPUs and GPUs it asks for, on a Ray cluster or a Ray started here.

Ray is an optional dependency (``pip install 'mixframe[ray]'``). With ``address: null`` (the default)
a Ray is started on this machine for the sweep and stopped after it; ``address: auto`` joins the
cluster this machine belongs to (``ray start --head`` ran here or on its head), and
``ray://HOST:10001`` a remote one. Every node needs mixframe (and any plugins the recipe names)
installed, and must see the recipe files and the sweep folder at the same paths (a shared file
system): runs write their run folders there.

Each task runs :func:`mixframe.tools.sweep.run_task` in a fresh worker process (``max_calls=1``), with
``cpus_per_run`` CPUs (its torch threads) and ``gpus_per_run`` GPUs (Ray sets its
``CUDA_VISIBLE_DEVICES``); Ray does not retry a failed run (``max_retries=0``): the sweep records the
failure and ``--resume`` runs it again from its checkpoint.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs

from mixframe import Component, LaunchContext, Launcher, MixframeError, RunTask, hookimpl, in_range, param, positive
from mixframe.kernel.interfaces import LaunchEvents

MISSING = "the ray launcher needs Ray, which is not installed here: pip install 'mixframe[ray]' (or pip install ray)"


@attrs.frozen(kw_only=True)
class RayConfig:
    address: str | None = param(None, help="the cluster to join: 'auto' (the one this machine belongs to), 'ray://HOST:10001' or "
                                           "HOST:PORT; null: start a Ray on this machine for the sweep")
    cpus_per_run: float = param(1.0, help="CPUs each run asks for (its torch threads: the whole part, at least 1)", validator=positive)
    gpus_per_run: float | None = param(None, help="GPUs each run asks for (0.5: two runs share one); null: 1 when the cluster "
                                                  "has GPUs, else 0", validator=in_range(0))
    jobs: int | None = param(None, help="at most this many runs at once; null: as many as the cluster's CPUs and GPUs hold",
                             validator=positive)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MixframeError(MISSING) from None
    return ray


class RayLauncher(Launcher):
    """Each run a Ray task (a fresh worker process) with the CPUs and GPUs it asks for; joins a cluster or starts Ray here."""

    def __init__(self, config: RayConfig, context: LaunchContext) -> None:
        _ray()  # a clear message now, before the sweep folder exists
        self.config, self.context = config, context

    def launch(self, tasks: Sequence[RunTask], events: LaunchEvents) -> None:
        ray = _ray()
        from mixframe.tools.sweep import run_task

        started_here = not ray.is_initialized()
        if started_here:
            options: dict[str, Any] = {"log_to_driver": False}  # each run's output goes to its log in the sweep folder
            if self.config.address is None:  # a Ray of our own: this machine's usable cores, no dashboard
                from mixframe_plugins.launchers.local import usable_cores

                options.update(num_cpus=usable_cores(), include_dashboard=False)
            try:
                ray.init(address=self.config.address, **options)
            except ConnectionError as err:
                raise MixframeError(f"cannot join the Ray cluster at {self.config.address!r}: {err}") from None
        try:
            resources = ray.cluster_resources()
            cpus = self.config.cpus_per_run
            gpus = self.config.gpus_per_run if self.config.gpus_per_run is not None else (1.0 if resources.get("GPU", 0) >= 1 else 0.0)
            if cpus > resources.get("CPU", 0) or gpus > resources.get("GPU", 0):
                raise MixframeError(f"each run asks for {cpus:g} CPU(s) and {gpus:g} GPU(s), but the Ray cluster has "
                                    f"{resources.get('CPU', 0):g} and {resources.get('GPU', 0):g}; lower cpus_per_run or gpus_per_run")
            capacity = int(resources.get("CPU", 1) // cpus)
            if gpus:
                capacity = min(capacity, int(resources["GPU"] // gpus))
            jobs = self.config.jobs or max(1, capacity)
            threads = max(1, math.floor(cpus))
            remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_calls=1, max_retries=0)(run_task)
            print(f"ray launcher: cluster of {resources.get('CPU', 0):g} CPU(s), {resources.get('GPU', 0):g} GPU(s); "
                  f"up to {jobs} run(s) at once, each {cpus:g} CPU(s) ({threads} thread(s)) and {gpus:g} GPU(s)", flush=True)
            self._run(ray, remote, tasks, events, jobs, threads)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray: Any, remote: Any, tasks: Sequence[RunTask], events: LaunchEvents, jobs: int, threads: int) -> None:
        queue = deque(tasks)
        running: dict[Any, RunTask] = {}
        try:
            while queue or running:
                while queue and len(running) < jobs:
                    task = attrs.evolve(queue.popleft(), threads=threads)
                    running[remote.remote(task)] = task
                    events.started(task, "Ray task")
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    task = running.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as err:  # noqa: BLE001 - a worker that died, a node lost: the run's outcome
                        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                        outcome = {"status": "failed", "message": f"its Ray task failed ({type(err).__name__}: {first[:300]})"}
                    events.finished(task, outcome)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            time.sleep(0.5)
            raise


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="launcher", name="ray", implementation=RayLauncher, config=RayConfig,
                      summary="each run a Ray task with its CPUs and GPUs, on a Ray cluster or one started here (mixframe[ray])")]
