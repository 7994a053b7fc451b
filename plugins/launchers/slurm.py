"""``slurm``: a sweep as one Slurm array job through submitit, each run one array task.

submitit is an optional dependency (``pip install 'mixframe[slurm]'``). Run the sweep on a machine
that can submit (a login node): it submits the array job, then waits and records each run as Slurm
reports it (pending until it runs). Every node must see the recipe files and the sweep folder at the
same paths (a shared file system) and have mixframe installed; ``setup`` lines (``module load ...``,
``source .venv/bin/activate``) run before each task. submitit keeps its scripts and Slurm's logs under
``SWEEP/slurm``; each run's own output is in ``SWEEP/logs``.

If the sweep process ends while the array job still runs, the runs go on in Slurm: wait for them (or
``scancel`` the job) before ``mixframe sweep --resume``, which runs only those that did not finish.
``cluster: local`` runs the same array through submitit's local executor on this machine, to try a
sweep without Slurm.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from typing import Any, Literal

import attrs

from mixframe import Component, LaunchContext, Launcher, MixframeError, RunTask, hookimpl, in_range, param, positive
from mixframe.kernel.interfaces import LaunchEvents

MISSING = "the slurm launcher needs submitit, which is not installed here: pip install 'mixframe[slurm]' (or pip install submitit)"


@attrs.frozen(kw_only=True)
class SlurmConfig:
    partition: str | None = param(None, help="Slurm partition (null: the cluster's default)")
    time: int = param(60, help="time limit of each run, in minutes", validator=positive)
    gpus_per_run: int = param(1, help="GPUs per run (gpus_per_node of its task)", validator=in_range(0))
    cpus_per_run: int = param(4, help="CPUs per run (cpus_per_task); also its torch threads", validator=positive)
    mem_gb: float | None = param(None, help="memory per run in GB (null: the partition's default)", validator=positive)
    jobs: int | None = param(None, help="at most this many runs at once (the array's %N limit); null: no limit", validator=positive)
    account: str | None = param(None, help="Slurm account to charge")
    qos: str | None = param(None, help="Slurm quality of service")
    constraint: str | None = param(None, help="Slurm node constraint (for example a GPU type)")
    setup: list[str] = param(factory=list, help="shell lines run before each run (module load, activating the environment)")
    extra: dict[str, Any] = param(factory=dict, help="more sbatch options, as {option: value} (for example {exclusive: true})")
    cluster: Literal["slurm", "local"] = param("slurm", help="slurm; or local: submitit's local executor, to try a sweep without Slurm")
    poll: float = param(10.0, help="seconds between looks at the jobs' states", validator=positive)


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise MixframeError(MISSING) from None
    return submitit


class SlurmLauncher(Launcher):
    """One Slurm array job per sweep (through submitit), each run one task with its CPUs, GPUs, memory and time."""

    def __init__(self, config: SlurmConfig, context: LaunchContext) -> None:
        _submitit()
        if config.cluster == "slurm" and shutil.which("sbatch") is None:
            raise MixframeError("the slurm launcher submits with sbatch, which is not on this machine's PATH; run the sweep on a "
                                "machine that can submit (a login node), or --launcher-set cluster=local to try it here")
        self.config, self.context = config, context

    def executor(self) -> Any:
        submitit = _submitit()
        cfg = self.config
        executor = submitit.AutoExecutor(folder=str(self.context.folder / "slurm" / "%j"), cluster=cfg.cluster)
        params: dict[str, Any] = {"name": f"mixframe-{self.context.folder.name}", "timeout_min": cfg.time, "nodes": 1, "tasks_per_node": 1,
                                  "gpus_per_node": cfg.gpus_per_run, "cpus_per_task": cfg.cpus_per_run}
        if cfg.mem_gb is not None:
            params["mem_gb"] = cfg.mem_gb
        if cfg.cluster == "slurm":
            slurm = {"partition": cfg.partition, "array_parallelism": cfg.jobs, "account": cfg.account, "qos": cfg.qos,
                     "constraint": cfg.constraint, "setup": list(cfg.setup) or None, "additional_parameters": dict(cfg.extra) or None}
            params.update({f"slurm_{k}": v for k, v in slurm.items() if v is not None})
        elif cfg.setup:
            params["local_setup"] = list(cfg.setup)
        executor.update_parameters(**params)
        return executor

    def launch(self, tasks: Sequence[RunTask], events: LaunchEvents) -> None:
        from mixframe.tools.sweep import run_task

        tasks = [attrs.evolve(t, threads=self.config.cpus_per_run) for t in tasks]
        jobs = self.executor().map_array(run_task, tasks)
        print(f"slurm launcher ({self.config.cluster}): array job {jobs[0].job_id.split('_')[0] if jobs else '-'} of {len(jobs)} run(s), "
              f"each {self.config.cpus_per_run} CPU(s), {self.config.gpus_per_run} GPU(s), {self.config.time} min", flush=True)
        waiting = list(zip(jobs, tasks))
        started: set[str] = set()
        try:
            while waiting:
                for job, task in list(waiting):
                    done = job.done()
                    if task.key not in started and (done or job.state in ("RUNNING", "COMPLETING")):
                        started.add(task.key)
                        events.started(task, f"Slurm job {job.job_id}")
                    if done:
                        waiting.remove((job, task))
                        events.finished(task, self.outcome(job))
                if waiting:
                    time.sleep(self.config.poll)
        except BaseException:
            for job, _ in waiting:
                job.cancel(check=False)
            raise

    @staticmethod
    def outcome(job: Any) -> dict[str, Any]:
        try:
            return job.result()
        except Exception as err:  # noqa: BLE001 - a job killed, out of time or memory: the run's outcome
            lines = [line for line in str(err).strip().splitlines() if line.strip()]
            why = lines[-1] if lines else type(err).__name__
            return {"status": "failed", "message": f"Slurm job {job.job_id} failed ({type(err).__name__}): {why[:300]}"}


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="launcher", name="slurm", implementation=SlurmLauncher, config=SlurmConfig,
                      summary="one Slurm array job per sweep through submitit: partition, time, GPUs per run (mixframe[slurm])")]
