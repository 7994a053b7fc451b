"""Run folders: what ran (recipe, environment, plugins), checkpoints written atomically, loading a run back.

A run folder holds::

    recipe.yaml        the resolved recipe (re-runnable as is), written before training
    run.json           command line, overrides, start time, status
    environment.json   Python, platform, package versions, device
    plugins.json       the plugins and components that were loaded
    checkpoint.pt      the latest checkpoint (weights, optimizers, RNG, position)
    metrics.csv        step, epoch, name, value (one row per logged scalar)
    tb/                TensorBoard event files
    grids/             interpolation grids saved during training
    loss_curves.png    the loss curves, with each critic's blind-guess level
    grid.png           the final interpolation grid
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mixframe.errors import MixframeError
from mixframe.interfaces import DataBundle
from mixframe.recipe import Recipe, load_recipe
from mixframe.registry import get_registry

CHECKPOINT = "checkpoint.pt"
RECIPE = "recipe.yaml"


def new_run_dir(parent: Path, stem: str) -> Path:
    """A fresh folder under ``parent``; an existing run is never reused or overwritten."""
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise MixframeError(f"could not create a new run folder under {parent}")


def write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to a temporary file beside ``path``, then rename: a kill never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load with ``weights_only=True``: a checkpoint that would run code when loaded is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MixframeError(f"no checkpoint at {path}") from None
    except Exception as err:  # noqa: BLE001 - pickle errors come in many types
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "Weights only load failed" in str(err):
            raise MixframeError(f"checkpoint {path} holds objects that would run code when loaded; refused "
                                "(mixframe checkpoints hold tensors and plain data only)") from None
        raise MixframeError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); it may be truncated or not a checkpoint") from None


def environment(device: torch.device) -> dict[str, Any]:
    packages = {}
    for name in ("mixframe", "torch", "torchvision", "pluggy", "attrs", "PyYAML", "kornia", "numpy", "scikit-learn", "scipy", "matplotlib"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "executable": sys.executable,
        "argv": sys.argv,
        "packages": packages,
        "device": str(device),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "time": _dt.datetime.now().isoformat(timespec="seconds"),
    }


def plugin_record() -> dict[str, Any]:
    reg = get_registry()
    return {
        "plugins": [{"name": p.name, "distribution": p.distribution, "version": p.version,
                     "components": [f"{k}:{n}" for k, n in p.components]} for p in reg.plugins()],
        "failures": [f.describe() for f in reg.failures],
    }


def read_run_recipe(run_dir: Path) -> Recipe:
    path = Path(run_dir) / RECIPE
    if not path.is_file():
        raise MixframeError(f"{run_dir} is not a mixframe run folder (no {RECIPE}); pass a folder made by 'mixframe train'")
    return load_recipe(path)


class TrainedRun:
    """A trained run loaded for evaluation and pictures (implements ``mixframe.TrainedRun``)."""

    def __init__(self, run_dir: str | Path, device: str | torch.device = "cpu", batch_size: int = 256) -> None:
        from mixframe.model import Model, build_data

        self.dir = Path(run_dir)
        self.recipe = read_run_recipe(self.dir)
        self.seed = self.recipe.seed
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.data: DataBundle = build_data(self.recipe)
        self.model = Model(self.recipe, self.data)
        state = load_checkpoint(self.dir / CHECKPOINT)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:
            first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
            raise MixframeError(f"the checkpoint of {self.dir} does not fit the model its recipe builds now ({first}); "
                                "the networks changed since it was trained: train it again") from None
        self.model.to(self.device).eval()
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.encoder, self.decoder, self.mixer = self.model.encoder, self.model.decoder, self.model.mixer
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def name(self) -> str:
        return self.dir.name

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return torch.cat([self.encoder(b.to(self.device)) for b in x.split(self.batch_size)])

    @torch.no_grad()
    def decode(self, h: Tensor) -> Tensor:
        return torch.cat([self.decoder.to_data(self.decoder(b.to(self.device))) for b in h.split(self.batch_size)])

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """All examples and labels of a split, stacked."""
        dataset = getattr(self.data, name)
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=False)
        xs, ys = zip(*loader)
        return torch.cat(xs), torch.cat(ys)

    def codes(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._codes:
            x, y = self.split(split)
            h = self.encode(x).flatten(1).cpu().numpy()
            self._codes[split] = (h, y.numpy())
        return self._codes[split]
