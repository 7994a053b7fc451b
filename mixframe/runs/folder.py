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
    tb/                TensorBoard event files
    grids/             interpolation grids saved during training
    loss_curves.png    the loss curves, with each critic's blind-guess level
    grid.png           the final interpolation grid

Every command and the Python API read and write run folders through :class:`RunFolder` only.
A run folder is absent or resumable at every moment: it is written as a hidden
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


def spec_to_dict(spec: DataSpec, label_kind: str) -> dict[str, Any]:
    return {**attrs.asdict(spec), "label_kind": label_kind}


def spec_from_dict(data: dict[str, Any]) -> DataSpec:
    from mixframe.kernel.interfaces import DataSpec

    fields = {f.name for f in attrs.fields(DataSpec)}
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
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


def environment(device: Any) -> dict[str, Any]:
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
        "threads": torch.get_num_threads(),
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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tensorboard_purge_step: int | None = None  # set when a run resumes: its events from that step on are replaced
        self._tensorboard: Any = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    # -- creating and opening --------------------------------------------------------------------------
    @classmethod
    def create(cls, parent: str | Path, stem: str, write: Callable[[RunFolder], None] | None = None) -> RunFolder:
        """A fresh folder ``parent/stem-TIME`` (``-2``, ``-3``... when taken), complete or absent.

        ``write`` fills it (the record: recipe, run.json, ...) while it is a hidden
        ``.stem-TIME.partial-XXXXXXXX`` folder beside its final place; it is then renamed to the first
        free name, never over an existing run. A kill before the rename leaves only that hidden folder
        (a later ``create`` in the same parent removes it once it is a day old); after the rename the
        folder is a run that ``mixframe resume`` continues.
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
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
            if write is not None:
                write(cls(tmp))
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
                return cls(path)
            raise MixframeError(f"could not find a free run folder name under {parent}")
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise MixframeError(f"cannot write a new run folder in {parent}: {err.strerror or err}") from None
        except BaseException:
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
                     recipe_file: str | None, overrides: list[str]) -> None:
        """What ran, written before training starts: recipe, run.json, environment, plugins, data description."""
        atomic_write_bytes(self.file(self.RECIPE), recipe.to_yaml().encode())
        write_json(self.file(self.RUN), {"status": "running", "recipe_file": recipe_file, "overrides": list(overrides),
                                         "started": now(), "world_size": world})
        write_json(self.file(self.ENVIRONMENT), environment(device))
        write_json(self.file(self.PLUGINS), plugin_record())
        write_json(self.file(self.DATA), spec_to_dict(spec, label_kind))

    # -- TensorBoard --------------------------------------------------------------------------------------
    def tensorboard(self) -> Any:
        """The run's one TensorBoard writer on tb/, shared by every callback (scalars, pictures, hyperparameters), so
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

    def update_info(self, **fields: Any) -> None:
        write_json(self.file(self.RUN), {**self.info(), **fields})

    @property
    def status(self) -> str:
        return str(self.info().get("status", "unknown (no run.json)"))

    # -- checkpoints ---------------------------------------------------------------------------------
    @property
    def has_checkpoint(self) -> bool:
        return self.file(self.CHECKPOINT).is_file()

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically (temporary file, fsync, rename); on failure the previous checkpoint stays and the error says so."""
        save_checkpoint(self.file(self.CHECKPOINT), state)

    def load_checkpoint(self) -> dict[str, Any]:
        return load_checkpoint(self.file(self.CHECKPOINT))

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
        """Per-epoch means from metrics.csv: name (without ``epoch/``) -> [(epoch, value)]."""
        curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for row in self.scalar_rows():
            if row["name"].startswith("epoch/"):
                curves[row["name"].removeprefix("epoch/")].append((int(row["epoch"]), float(row["value"])))
        return dict(curves)

    def scalar_rows(self) -> list[dict[str, str]]:
        path = self.file(self.METRICS)
        if not path.is_file():
            return []
        with path.open(newline="") as f:
            return [row for row in csv.DictReader(f) if row.get("name") and row.get("value") not in (None, "")]

    def truncate_scalars(self, step: int) -> None:
        """Drop rows logged after ``step`` (the checkpoint's position), so that a resumed run logs each step once.

        Also drops a row cut short by a kill, and writes ``\n`` line ends, as :class:`ScalarLog` does.
        """
        path = self.file(self.METRICS)
        if not path.is_file():
            return
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:  # killed after creating the file, before its header
            path.unlink()
            return
        keep = [rows[0]] + [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit() and int(r[0]) <= step]
        text = io.StringIO()
        csv.writer(text, lineterminator=SCALAR_LINE_END).writerows(keep)
        atomic_write_bytes(path, text.getvalue().encode())

    # -- evaluation --------------------------------------------------------------------------------------
    def evaluation(self) -> dict[str, Any]:
        return read_json(self.file(self.EVALUATION))

    def write_evaluation(self, results: dict[str, dict[str, float]], epoch: int, step: int) -> None:
        """Merge ``results`` (metric -> values) into evaluation.json."""
        by_metric = {**self.evaluation().get("by_metric", {}), **results}
        try:
            write_json(self.file(self.EVALUATION), {"run": self.name, "epoch": epoch, "step": step, "evaluated": now(),
                                                    "by_metric": by_metric, "metrics": {k: v for m in by_metric.values() for k, v in m.items()}})
        except OSError as err:
            raise NotSaved(f"could not save {self.file(self.EVALUATION)}: {err.strerror or err}") from None

    def pictures(self) -> list[Path]:
        """loss_curves.png and grid.png first, then every other PNG in the folder (masks.png, ...)."""
        first = [self.file(n) for n in (self.LOSS_CURVES, self.GRID) if self.file(n).is_file()]
        return first + [p for p in sorted(self.path.glob("*.png")) if p.is_file() and p not in first]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to a temporary file beside ``path``, then rename: a kill never leaves half a file."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as err:
        kept = "the previous checkpoint is kept" if path.is_file() else "no earlier checkpoint exists"
        raise MixframeError(f"could not write the checkpoint {path}: {err.strerror or err}; {kept}. "
                            "Free some space (or fix the folder's permissions), then resume the run") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint that would run code when loaded is refused."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MixframeError(f"no checkpoint at {path}; train or resume the run first") from None
    except Exception as err:  # noqa: BLE001 - pickle errors come in many types
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "Weights only load failed" in str(err):
            raise MixframeError(f"checkpoint {path} holds objects that would run code when loaded; refused "
                                "(mixframe checkpoints hold tensors and plain data only)") from None
        raise MixframeError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); it may be truncated or not a checkpoint") from None
    if not isinstance(state, dict) or any(k not in state for k in CHECKPOINT_KEYS) or not isinstance(state["model"], dict):
        raise MixframeError(f"{path} is a torch file but not a mixframe checkpoint (it lacks {', '.join(CHECKPOINT_KEYS)}); "
                            "pass a run folder made by 'mixframe train'")
    return state
