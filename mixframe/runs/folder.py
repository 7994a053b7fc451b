"""The run store: one class owns a run folder, its file names, its record and its checkpoints.

A run folder holds::

    recipe.yaml        the resolved recipe (re-runnable as is), written before training
    run.json           command line, overrides, start time, status (running, complete, diverged, ...)
    environment.json   Python, platform, package versions, device
    plugins.json       the plugins and components that were loaded
    data.json          the data's shape, value range and labels: a run loads without its data
    checkpoint.pt      the latest checkpoint (weights, optimizers, position), written atomically
    checkpoint_best.pt the checkpoint of the lowest validation loss (the validation callback)
    train.log          everything training printed (the epoch lines, warnings), without the progress bar
    metrics.csv        step, epoch, name, value (one row per logged scalar)
    warnings.log       every warning printed during training
    evaluation.json    metrics computed by ``mixframe evaluate``
    tb/                TensorBoard event files (tb/hparams: the run's HParams session, with its evaluations)
    grids/             interpolation grids saved during training
    loss_curves.png    the loss curves, with each critic's blind-guess level
    grid.png           the final interpolation grid
    .lock              the write lock (empty unless a process holds it: then its pid, host, command)

Every command, plugin and the Python API read and write run folders through :class:`RunFolder` only: the
records, the checkpoints (one :class:`Checkpoint` format for the last and the best), and every other file by
name (``write_artifact``, ``write_picture``), atomically. One process writes a folder at a time
(:class:`FolderLock` on ``.lock``: train, resume, evaluate). A run folder is absent or resumable at every moment: it is written as a hidden
``.NAME.partial-XXXXXXXX`` folder and renamed once its record is complete; every file in it is
replaced atomically (temporary file, rename) with the user's umask, and ``metrics.csv`` is repaired
on resume.
"""

from __future__ import annotations

import csv
import datetime as _dt
import errno
import io
import json
import os
import platform
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from mixframe.errors import MixframeError

if TYPE_CHECKING:  # imported where used: the run store is read by commands that do not need torch
    from mixframe.kernel.interfaces import DataSpec

CHECKPOINT_KEYS = ("model", "epoch", "step")
SCALAR_LINE_END = "\n"  # metrics.csv line ends, whoever writes it (csv.writer would write \r\n)
STALE_PARTIAL_SECONDS = 24 * 3600  # a folder still being created after a day was left by a killed process


class NotSaved(MixframeError):
    """A result was computed but could not be written into the run folder (the message says where and why)."""


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a kill never leaves half a file.

    The temporary file is created with mode 0666 less the user's umask, like any other file
    (``tempfile.mkstemp`` would make it 0600, and colleagues could not read the run).
    """
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_file(path: Path, data: bytes) -> Path:
    """:func:`atomic_write_bytes` (its folder created) whose failure is :class:`NotSaved` naming the path and the fix."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as err:
        raise not_written(path, err) from None
    return path


def png_bytes(picture: Any, dpi: int = 120) -> bytes:
    """A PIL image's or a matplotlib figure's PNG bytes (the figure is closed): what :func:`write_file` then writes atomically."""
    buffer = io.BytesIO()
    if hasattr(picture, "savefig"):
        import matplotlib.pyplot as plt

        try:
            picture.savefig(buffer, format="png", dpi=dpi)
        finally:
            plt.close(picture)
    else:
        picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file ``.NAME.XXXXXXXX`` beside ``path``, opened for writing, permissions from the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _fsync_folder(path: Path) -> None:
    """Make a rename inside ``path`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def read_json(path: Path) -> dict[str, Any]:
    """A run folder's JSON record, or {} when missing; a damaged one is a MixframeError naming it."""
    if not path.is_file():
        return {}
    from mixframe.kernel.files import load_user_json

    data = load_user_json(path, what=f"run record {path.name}", max_bytes=64 * 2**20)
    if not isinstance(data, dict):
        raise MixframeError(f"{path} does not hold a JSON object; the run folder is damaged")
    return data


# -- one writer per folder ---------------------------------------------------------------------------------
class FolderLock:
    """One writing process per folder: an exclusive ``fcntl.flock`` on a lock file, holding who holds it.

    The kernel releases a flock when its holder exits however it exits (SIGKILL included), so a lock
    left by a dead process is free at once: it is taken over, never waited for. The file records the
    holder (pid, host, command, since) for the message a second writer gets. Locks are counted per
    process: the holder may lock the same folder again (evaluate inside a sweep's run, say).

    Network file systems: on NFS (Linux maps flock to NFS byte-range locks) and CIFS the lock works
    across machines where the server supports locking; where it does not (``ENOLCK``, ``EOPNOTSUPP``:
    NFS without lockd, some FUSE file systems) the recorded holder decides: a live process on this
    host keeps the folder, a dead one's record is taken over, and a holder on another host is
    respected until its record is removed by hand (the message says so).
    """

    _held: dict[str, tuple[Any, int]] = {}  # real path of the lock file -> (open file, count) in this process

    def __init__(self, path: Path, what: str, command: str = "") -> None:
        self.path, self.what, self.command = Path(path), what, command or " ".join(Path(sys.argv[0]).name.split()[:1] + sys.argv[1:3])
        self.key = ""

    def holder(self) -> dict[str, Any]:
        """Who holds (or last held) the lock: {pid, host, command, since}, or {} when unknown."""
        try:
            data = json.loads(self.path.read_text(errors="replace") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def held_elsewhere(self) -> dict[str, Any] | None:
        """The holder when another live process holds the lock, else None (nothing is changed)."""
        if str(self.path.resolve()) in self._held:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            return None if self._try_flock(fd, shared=True) else (self.holder() or {"pid": "?", "host": "?"})
        finally:
            os.close(fd)  # closing releases the shared lock taken to look

    def _try_flock(self, fd: int, shared: bool = False) -> bool:
        import fcntl

        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return self._holder_gone()  # no locking on this file system: the record decides
            raise

    def _try_exclusive(self, fd: int) -> bool:
        """The exclusive lock, asked for a few times over a fifth of a second: a reader looking at the lock
        (:meth:`held_elsewhere` holds it shared for an instant) does not make a writer fail."""
        for attempt in range(5):
            if self._try_flock(fd):
                return True
            time.sleep(0.05 * (attempt < 4))
        return False

    def _holder_gone(self) -> bool:
        held = self.holder()
        if not held or held.get("pid") == os.getpid() and held.get("host") == socket.gethostname():
            return True
        if held.get("host") != socket.gethostname():
            return False
        return not _alive(held.get("pid"))

    def acquire(self) -> FolderLock:
        """Take the lock, or raise a MixframeError naming the holder (pid, host, command) and what to do."""
        key = str(self.path.resolve())
        if key in self._held:
            handle, count = self._held[key]
            self._held[key] = (handle, count + 1)
            self.key = key
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as err:
            raise not_written(self.path, err, f"{self.what} cannot be locked for writing") from None
        try:
            if not self._try_exclusive(fd):
                held = self.holder()
                since = f" since {held['since']}" if held.get("since") else ""
                command = f" ({held['command']})" if held.get("command") else ""
                remote = held.get("host") not in (None, socket.gethostname())
                raise MixframeError(
                    f"{self.what} is being written by another process: pid {held.get('pid', '?')} on {held.get('host', '?')}"
                    f"{command}{since}. Wait for it to end (or stop it), then try again"
                    + (f"; if that process is gone and the lock file system does not support locks, delete {self.path}" if remote else ""))
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                                     "since": now()}).encode())
        except OSError as err:
            os.close(fd)
            raise not_written(self.path, err, f"{self.what} cannot be locked for writing") from None
        except BaseException:
            os.close(fd)
            raise
        self._held[key] = (fd, 1)
        self.key = key
        return self

    def adopt(self, other: FolderLock) -> None:
        """Take over ``other``'s held lock after its folder was renamed to this lock's folder."""
        if other.key in self._held:
            self.key = str(self.path.resolve())
            self._held[self.key] = self._held.pop(other.key)
            other.key = ""

    def release(self) -> None:
        if not self.key or self.key not in self._held:
            return
        fd, count = self._held[self.key]
        if count > 1:
            self._held[self.key] = (fd, count - 1)
            return
        del self._held[self.key]
        try:
            os.ftruncate(fd, 0)  # no holder recorded: a later reader without locks sees the folder free
        except OSError:
            pass
        os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def not_written(path: Path, err: OSError, what: str | None = None) -> NotSaved:
    """The message for a write that failed: the path, why, and the fix (free space, a writable folder)."""
    fixes = {errno.ENOSPC: "free some space on that disk", errno.EDQUOT: "free some space (the disk quota is reached)",
             errno.EROFS: "the disk is read-only: copy the run folder to a writable disk (cp -r) or remount it read-write",
             errno.EACCES: "make the folder writable for you (chmod u+w) or copy it somewhere writable",
             errno.EPERM: "make the folder writable for you (chmod u+w) or copy it somewhere writable"}
    fix = fixes.get(err.errno or 0, "check the disk and the folder's permissions")
    return NotSaved(f"{what or f'could not write {path}'}: {err.strerror or err} ({path}); {fix}, then run the command again")


def spec_to_dict(spec: DataSpec, label_kind: str) -> dict[str, Any]:
    return {**attrs.asdict(spec), "label_kind": label_kind}


def spec_from_dict(data: dict[str, Any]) -> DataSpec:
    from mixframe.kernel.interfaces import DataSpec, ImagePreprocess

    fields = {f.name for f in attrs.fields(DataSpec)}
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
    if isinstance(values.get("preprocess"), dict):
        known = {f.name for f in attrs.fields(ImagePreprocess)}
        steps: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values["preprocess"].items() if k in known}
        values["preprocess"] = ImagePreprocess(**steps)
    return DataSpec(**values)


def git_commit() -> str | None:
    """The mixframe checkout's ``git rev-parse HEAD`` (with ``+dirty`` for uncommitted changes), or None
    outside a git checkout: numbers are tied to the code that made them."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), or what ``platform`` knows of it elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: Any, threads_source: str | None = None) -> dict[str, Any]:
    """Python, platform, package versions and device: enough to say what ran where."""
    import torch

    packages: dict[str, str | None] = {}
    for name in ("mixframe", "torch", "torchvision", "pluggy", "attrs", "PyYAML", "kornia", "numpy", "scikit-learn", "scipy", "matplotlib"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    device = torch.device(device)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "executable": sys.executable,
        "argv": sys.argv,
        "packages": packages,
        "device": str(device),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        # the float kernels torch picks depend on the CPU: the same run gives slightly different numbers on another kind
        "cpu": {"model": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability()},
        "threads": torch.get_num_threads(),
        "threads_source": threads_source,  # train.threads, MIXFRAME_THREADS or torch's default
        "commit": git_commit(),
        "time": now(),
    }


def plugin_record() -> dict[str, Any]:
    from mixframe.kernel.registry import get_registry

    reg = get_registry()
    return {
        "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                     "components": [f"{k}:{n}" for k, n in p.components]} for p in reg.plugins()],
        "failures": [f.describe() for f in reg.failures],
    }


class RunFolder:
    """One run folder: its file names, creation (never overwriting), record, status, checkpoints, logs."""

    RECIPE = "recipe.yaml"
    RUN = "run.json"
    ENVIRONMENT = "environment.json"
    PLUGINS = "plugins.json"
    DATA = "data.json"
    CHECKPOINT = "checkpoint.pt"
    CHECKPOINT_BEST = "checkpoint_best.pt"
    TRAIN_LOG = "train.log"
    METRICS = "metrics.csv"
    WARNINGS = "warnings.log"
    EVALUATION = "evaluation.json"
    TENSORBOARD = "tb"
    GRIDS = "grids"
    LOSS_CURVES = "loss_curves.png"
    GRID = "grid.png"
    PARTIAL = ".partial-"  # a folder being created: .NAME.partial-XXXXXXXX, renamed to NAME when its record is written
    LOCK = ".lock"  # held by the one process writing the folder (train, resume, evaluate): FolderLock

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tensorboard_purge_step: int | None = None  # set when a run resumes: its events from that step on are replaced
        self._tensorboard: Any = None
        self._lock: FolderLock | None = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # -- one writer ------------------------------------------------------------------------------------------
    def lock(self) -> FolderLock:
        """The folder's write lock (``with folder.lock():``); a second writer is refused with the holder's pid and host."""
        if self._lock is None:
            self._lock = FolderLock(self.file(self.LOCK), f"the run folder {self.path}")
        return self._lock

    def writer(self) -> dict[str, Any] | None:
        """The live process writing this folder ({pid, host, command, since}), or None when no one is."""
        return self.lock().held_elsewhere() if self.file(self.LOCK).is_file() else None

    def file(self, name: str) -> Path:
        return self.path / name

    # -- creating and opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, parent: str | Path, stem: str, write: Callable[[RunFolder], None] | None = None, *, lock: bool = False) -> RunFolder:
        """A fresh folder ``parent/stem-TIME`` (``-2``, ``-3``... when taken), complete or absent.

        ``write`` fills it (the record: recipe, run.json, ...) while it is a hidden
        ``.stem-TIME.partial-XXXXXXXX`` folder beside its final place; it is then renamed to the first
        free name, never over an existing run. A kill before the rename leaves only that hidden folder
        (a later ``create`` in the same parent removes it once it is a day old); after the rename the
        folder is a run that ``mixframe resume`` continues. With ``lock`` the folder is returned locked
        (taken before the rename, so no other process can write it for a moment): release it with ``folder.lock().release()``.
        """
        parent = Path(parent)
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise MixframeError(f"cannot create the output folder {parent}: {err.strerror or err}") from None
        cls.remove_stale_partials(parent)
        base = f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{base}{cls.PARTIAL}", dir=parent))
        except OSError as err:
            raise MixframeError(f"cannot create a run folder in {parent}: {err.strerror or err}") from None
        hidden = cls(tmp)
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
            if lock:
                hidden.lock().acquire()
            if write is not None:
                write(hidden)
            for n in range(1, 1000):
                path = parent / (base if n == 1 else f"{base}-{n}")
                if path.exists() or path.is_symlink():
                    continue
                try:
                    os.rename(tmp, path)  # fails on a non-empty folder: an existing run is never replaced
                except OSError as err:
                    if err.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                        continue
                    raise
                _fsync_folder(parent)
                made = cls(path)
                if lock:  # the open lock file moved with the folder: the lock is kept under the new name
                    made.lock().adopt(hidden.lock())
                return made
            raise MixframeError(f"could not find a free run folder name under {parent}")
        except OSError as err:
            hidden.lock().release()
            shutil.rmtree(tmp, ignore_errors=True)
            raise not_written(parent, err, f"cannot write a new run folder in {parent}") from None
        except BaseException:
            hidden.lock().release()
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def remove_stale_partials(cls, parent: Path, older_than: float = STALE_PARTIAL_SECONDS) -> list[Path]:
        """Hidden ``.NAME.partial-*`` folders of creations killed more than ``older_than`` seconds ago; removed, and returned."""
        stale = []
        for p in parent.glob(f".*{cls.PARTIAL}*"):
            try:
                if p.is_dir() and not p.is_symlink() and time.time() - p.stat().st_mtime > older_than:
                    shutil.rmtree(p)
                    stale.append(p)
            except OSError:
                continue  # someone else's, or gone meanwhile: leave it
        return stale

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """An existing run folder, or a MixframeError saying why ``path`` is not one."""
        path = Path(path)
        if not path.exists():
            raise MixframeError(f"{path} does not exist; pass a run folder made by 'mixframe train'")
        if not path.is_dir():
            raise MixframeError(f"{path} is a file, not a run folder; pass a folder made by 'mixframe train'")
        if path.name.startswith(".") and cls.PARTIAL in path.name:
            raise MixframeError(f"{path} is a run folder whose creation was stopped before it was complete (it holds no training); "
                                "delete it and train again")
        if not (path / cls.RECIPE).is_file():
            raise MixframeError(f"{path} is not a mixframe run folder (no {cls.RECIPE}); pass a folder made by 'mixframe train'")
        return cls(path)

    def write_record(self, recipe: Any, spec: DataSpec, label_kind: str, *, device: Any, world: int,
                     recipe_file: str | None, overrides: list[str], threads_source: str | None = None) -> None:
        """What ran, written before training starts: recipe, run.json, environment, plugins, data description."""
        atomic_write_bytes(self.file(self.RECIPE), recipe.to_yaml().encode())
        write_json(self.file(self.RUN), {"status": "running", "recipe_file": recipe_file, "overrides": list(overrides),
                                         "started": now(), "world_size": world})
        write_json(self.file(self.ENVIRONMENT), environment(device, threads_source))
        write_json(self.file(self.PLUGINS), plugin_record())
        write_json(self.file(self.DATA), spec_to_dict(spec, label_kind))

    # -- TensorBoard --------------------------------------------------------------------------------------
    def tensorboard(self) -> Any:
        """The run's one TensorBoard writer on tb/, shared by every callback (scalars, pictures, the recipe's text), so
        that a training session adds one event file; opened on first use, purging from ``tensorboard_purge_step``."""
        if self._tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.file(self.TENSORBOARD)), purge_step=self.tensorboard_purge_step)
        return self._tensorboard

    def close_tensorboard(self) -> None:
        if self._tensorboard is not None:
            writer, self._tensorboard = self._tensorboard, None
            writer.close()

    # -- reading the record --------------------------------------------------------------------------
    def read_recipe(self, overrides: list[str] | tuple[str, ...] = (), *, for_training: bool = True) -> Any:
        """The run's checked recipe. Callbacks act only while training: with ``for_training=False`` (loading a run
        to use or evaluate it) callbacks whose plugin is no longer installed are left out instead of refusing the run."""
        from mixframe.kernel.recipe import apply_overrides, check, load_recipe, resolve_file
        from mixframe.kernel.registry import get_registry

        if for_training:
            return load_recipe(self.file(self.RECIPE), list(overrides))
        registry = get_registry()
        raw = apply_overrides(resolve_file(self.file(self.RECIPE)), list(overrides), registry)
        known = set(registry.names("callback"))
        if isinstance(raw.get("callbacks"), list):
            raw["callbacks"] = [c for c in raw["callbacks"] if not isinstance(c, dict) or str(c.get("kind", "")).split(":")[-1] in known]
        return check(raw, str(self.file(self.RECIPE)), registry)

    def read_spec(self) -> DataSpec | None:
        """The data description recorded at training time (None for a run made before it was recorded)."""
        data = read_json(self.file(self.DATA))
        return spec_from_dict(data) if data else None

    def info(self) -> dict[str, Any]:
        return read_json(self.file(self.RUN))

    def update_info(self, *, drop: tuple[str, ...] = (), **fields: Any) -> None:
        """Set ``fields`` in run.json and remove the keys in ``drop`` (those that would no longer be true)."""
        write_json(self.file(self.RUN), {k: v for k, v in {**self.info(), **fields}.items() if k not in drop})

    def close_record(self, status: str, error: str) -> None:
        """run.json says ``status`` (with ``error``) if it still says "running": a process that stops never leaves it so.
        Best effort: on a full or read-only disk the error that stopped the run is the one to report."""
        try:
            if self.info().get("status") == "running":
                self.update_info(status=status, stopped=now(), error=error)
        except (OSError, MixframeError):
            pass

    @property
    def status(self) -> str:
        """run.json's status; "running" only while a live process holds the folder's lock (else "stopped": its
        process ended without recording how, e.g. killed; ``mixframe resume`` continues it)."""
        status = str(self.info().get("status", "unknown (no run.json)"))
        if status == "running" and self.file(self.LOCK).is_file() and self.writer() is None:
            return "stopped"
        return status

    # -- checkpoints ---------------------------------------------------------------------------------
    def checkpoint(self, best: bool = False) -> Checkpoint:
        """The last checkpoint (``checkpoint.pt``), or with ``best`` the one of the lowest validation loss."""
        return Checkpoint(self.file(self.CHECKPOINT_BEST if best else self.CHECKPOINT))

    @property
    def has_checkpoint(self) -> bool:
        return self.checkpoint().exists

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        self.checkpoint().save(state)

    def load_checkpoint(self) -> dict[str, Any]:
        return self.checkpoint().load()

    def remove_stale_temporaries(self) -> list[Path]:
        """Temporary files left by a kill during an atomic write (``.checkpoint.pt.XXXX``); removed, and returned."""
        stale = [p for p in self.path.glob(".*.*") if p.is_file() and p.name.startswith(tuple(f".{n}." for n in (
            self.CHECKPOINT, self.CHECKPOINT_BEST, self.RUN, self.RECIPE, self.EVALUATION, self.DATA, self.METRICS, self.ENVIRONMENT, self.PLUGINS)))]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # -- logs ------------------------------------------------------------------------------------------
    def warnings(self) -> list[str]:
        path = self.file(self.WARNINGS)
        return [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path.is_file() else []

    def add_warning(self, message: str) -> None:
        with self.file(self.WARNINGS).open("a") as f:
            f.write(message + "\n")

    def epoch_curves(self) -> dict[str, list[tuple[int, float]]]:
        """Per-epoch means from metrics.csv: name -> [(epoch, value)], named as everywhere else (``epoch/ae/reconstruction``:
        the callbacks' ``means``, metrics.csv and TensorBoard's tags use the same names)."""
        curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for row in self.scalar_rows():
            if row["name"].startswith("epoch/"):
                curves[row["name"]].append((int(row["epoch"]), float(row["value"])))
        return dict(curves)

    def scalar_rows(self) -> list[dict[str, str]]:
        """metrics.csv's rows that are whole (a row cut by a kill or a full disk is left out, as a repair would drop it)."""
        from mixframe.kernel.files import UserFileError, read_user_text

        path = self.file(self.METRICS)
        if not path.is_file():
            return []
        try:
            text = read_user_text(path, what="scalar log", max_bytes=MAX_SCALAR_LOG_BYTES)
        except UserFileError as err:
            raise MixframeError(f"{err}; the run's scalar log is damaged: delete it (the run loses its curves, not its weights)") from None
        return [row for row in csv.DictReader(io.StringIO(_whole_lines(text), newline="")) if _whole_row(row)]

    def repair(self, step: int) -> None:
        """Make the records consistent with the checkpoint at ``step`` before anything reads them (on resume):
        stray temporary files removed, metrics.csv cut back to ``step`` (and rid of a row cut short)."""
        self.remove_stale_temporaries()
        self.truncate_scalars(step)

    def truncate_scalars(self, step: int) -> None:
        """Drop rows logged after ``step`` (the checkpoint's position), so that a resumed run logs each step once.

        Also drops a row cut short by a kill, and writes ``\n`` line ends, as :class:`ScalarLog` does.
        """
        path = self.file(self.METRICS)
        if not path.is_file():
            return
        from mixframe.kernel.files import read_user_text

        rows = list(csv.reader(io.StringIO(_whole_lines(read_user_text(path, what="scalar log", max_bytes=MAX_SCALAR_LOG_BYTES)),
                                           newline="")))
        if not rows:  # killed after creating the file, before its header
            path.unlink()
            return
        header = rows[0]
        keep = [header] + [r for r in rows[1:] if len(r) == len(header) and _whole_row(dict(zip(header, r))) and int(r[0]) <= step]
        text = io.StringIO()
        csv.writer(text, lineterminator=SCALAR_LINE_END).writerows(keep)
        atomic_write_bytes(path, text.getvalue().encode())

    # -- evaluation --------------------------------------------------------------------------------------
    def evaluation(self) -> dict[str, Any]:
        """evaluation.json ({} when missing); one of the wrong shape is a MixframeError saying how to remake it."""
        data = read_json(self.file(self.EVALUATION))
        by_metric = data.get("by_metric", {})
        if not isinstance(by_metric, dict) or not all(
                isinstance(values, dict) and all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for k, v in values.items()) for values in by_metric.values()):
            raise MixframeError(f"{self.file(self.EVALUATION)} is damaged (its by_metric is not metric -> {{name: number}}); "
                                f"delete it and run 'mixframe evaluate {self.path}' again")
        return data

    def write_evaluation(self, results: dict[str, dict[str, float]], epoch: int, step: int) -> None:
        """Merge ``results`` (metric -> values) into evaluation.json (a damaged one is replaced by ``results``)."""
        try:
            earlier = self.evaluation()
        except MixframeError:
            earlier = {}
        by_metric = {**earlier.get("by_metric", {}), **results}
        self.write_json_artifact(self.EVALUATION, {"run": self.name, "epoch": epoch, "step": step, "evaluated": now(), "by_metric": by_metric,
                                                   "metrics": {k: v for m in by_metric.values() for k, v in m.items()}})

    # -- artifacts ----------------------------------------------------------------------------------------
    def write_artifact(self, name: str, data: bytes) -> Path:
        """Write the run's file ``name`` (``grid.png``, ``grids/epoch_0003.png``, ``masks.png``, ...) atomically: a kill or a full
        disk leaves the previous version or none, never half a file. A failure is :class:`NotSaved` naming the path and the fix."""
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"{name!r} is not a name inside the run folder")
        return write_file(self.file(name), data)

    def write_json_artifact(self, name: str, data: Any) -> Path:
        return self.write_artifact(name, (json.dumps(data, indent=2, default=str) + "\n").encode())

    def write_picture(self, name: str, picture: Any, dpi: int = 120) -> Path:
        """A PIL image or a matplotlib figure (closed) saved as PNG through :meth:`write_artifact`."""
        return self.write_artifact(name, png_bytes(picture, dpi))

    def copy_artifact(self, source: str, name: str) -> Path:
        """The run's file ``source`` (a name inside the folder, like ``grids/epoch_0030.png``) copied to ``name``, atomically."""
        path = self.file(source)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise not_written(path, err, f"could not read {path}") from None
        return self.write_artifact(name, data)

    def pictures(self) -> list[Path]:
        """loss_curves.png and grid.png first, then every other PNG in the folder (masks.png, ...)."""
        first = [self.file(n) for n in (self.LOSS_CURVES, self.GRID) if self.file(n).is_file()]
        return first + [p for p in sorted(self.path.glob("*.png")) if p.is_file() and p not in first]


MAX_SCALAR_LOG_BYTES = 4 * 2**30
"""metrics.csv grows by a few KB an epoch; 4 GiB bounds what a damaged file can make us read."""


def _whole_lines(text: str) -> str:
    """``text`` without a last line that lacks its line end: a row cut short (mid-number, say) by a kill or a full disk."""
    return text if text.endswith("\n") else text[:text.rfind("\n") + 1]


def _whole_row(row: dict[str, Any]) -> bool:
    """A metrics.csv row with every field, as written: step and epoch integers, a name, a number (nan and inf included)."""
    try:
        int(row["step"]), int(row["epoch"]), float(row["value"])
    except (KeyError, TypeError, ValueError):
        return False
    return bool(row.get("name")) and None not in row


class Checkpoint:
    """The one checkpoint format, saved and loaded through one path (the last and the best alike).

    A checkpoint is a dict written by ``torch.save``: ``model`` (a state dict of tensors), ``epoch`` and
    ``step`` (integers), and whatever else the trainer adds (optimizer states, ``val_reconstruction``, the
    callbacks' and components' state): keys this class does not know are kept as they are. It is read
    through the guarded reader (a regular file of at most :data:`MAX_CHECKPOINT_BYTES`: a FIFO or a link to
    a device is refused, never waited on) and unpickled with ``weights_only=True``, so loading runs no code.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r})"

    @property
    def exists(self) -> bool:
        """Something is at the checkpoint's path (a FIFO or a link there too: loading it is then refused with a message)."""
        return self.path.exists() or self.path.is_symlink()

    def save(self, state: dict[str, Any]) -> None:
        """Write atomically (temporary file, fsync, rename); on failure the previous checkpoint stays and the error says so."""
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        try:
            atomic_write_bytes(self.path, buffer.getvalue())
        except OSError as err:
            kept = "the previous checkpoint is kept" if self.path.is_file() else "no earlier checkpoint exists"
            raise MixframeError(f"could not write the checkpoint {self.path}: {err.strerror or err}; {kept}. "
                                "Free some space (or fix the folder's permissions), then resume the run") from None

    def load(self) -> dict[str, Any]:
        """The checkpoint's dict, checked; a missing, special, oversized, unsafe or damaged file is a MixframeError."""
        import pickle

        import torch

        from mixframe.kernel.files import UserFileError, open_user_file

        if not self.path.exists() and not self.path.is_symlink():
            raise MixframeError(f"no checkpoint at {self.path}; train or resume the run first")
        try:
            with open_user_file(self.path, what="checkpoint", max_bytes=MAX_CHECKPOINT_BYTES) as f:
                state = torch.load(f, map_location="cpu", weights_only=True)
        except UserFileError:
            raise
        except pickle.UnpicklingError as err:
            if "weights_only" in str(err) or "Unsupported global" in str(err) or "Weights only load failed" in str(err):
                raise MixframeError(f"checkpoint {self.path} holds objects that would run code when loaded; refused "
                                    "(mixframe checkpoints hold tensors and plain data only)") from None
            raise self._damaged(f"it cannot be unpickled ({err})") from None
        except Exception as err:  # noqa: BLE001 - a damaged zip or tensor record fails in many types
            raise self._damaged(f"it cannot be read ({type(err).__name__}: {err})") from None
        problem = checkpoint_problem(state)
        if problem:
            raise self._damaged(problem)
        return state

    def _damaged(self, problem: str) -> MixframeError:
        return MixframeError(f"checkpoint {self.path} is damaged or not a mixframe checkpoint: {problem}. Restore it, "
                             "or delete it and train the run again")


MAX_CHECKPOINT_BYTES = 64 * 2**30
"""A checkpoint of the shipped networks is a few MB; 64 GiB bounds what a damaged or hostile file can make us read."""


def checkpoint_problem(state: Any) -> str | None:
    """What is wrong with a loaded checkpoint's fields (wrong types, missing keys), or None when it is usable."""
    import torch

    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a dict"
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if not isinstance(state["model"], dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        return "its 'model' is not a state dict of named tensors"
    for key in ("epoch", "step"):
        if not isinstance(state[key], int) or isinstance(state[key], bool) or state[key] < 0:
            return f"its {key!r} is {state[key]!r}, not a count (an integer >= 0)"
    for key in ("ae_opt", "critic_opts"):
        if key in state and not isinstance(state[key], dict):
            return f"its {key!r} is a {type(state[key]).__name__}, not a dict"
    if isinstance(state.get("critic_opts"), dict) and not all(isinstance(v, dict) for v in state["critic_opts"].values()):
        return "its 'critic_opts' holds something other than optimizer states"
    return None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """:meth:`Checkpoint.save` of the checkpoint at ``path``."""
    Checkpoint(path).save(state)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """:meth:`Checkpoint.load` of the checkpoint at ``path``."""
    return Checkpoint(path).load()
