"""Child processes for tests that never outlive their test: each runs in its own process group, which is
killed whole when the test's time limit passes (torchrun's ranks included), and torchrun takes a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence


def run_group(cmd: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` whose timeout kills the child's whole process group, then fails the test with its output."""
    proc = subprocess.Popen(list(cmd), env=dict(env) if env is not None else None, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{' '.join(cmd[:6])}... did not finish within {timeout:g} s; its process group was killed.\n"
                             f"stdout:\n{out[-2000:]}\nstderr:\n{err[-3000:]}") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def torchrun(args: Sequence[str], *, nproc: int = 2, timeout: float = 300, collective_timeout_s: int = 180) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone`` (a rendezvous on a free port: suites sharing a machine do not collide), one thread
    a process, collectives that give up after ``collective_timeout_s`` instead of gloo's 30 minutes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MIXFRAME_DIST_TIMEOUT": str(collective_timeout_s)}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return run_group([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args],
                     timeout=timeout, env=env)
