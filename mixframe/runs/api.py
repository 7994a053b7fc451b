"""The Python API: train a recipe into a run folder, resume it, load it back, and use the model.

    import mixframe
    run = mixframe.train("recipes/digits_amr_mixup.yaml", overrides=["train.epochs=2"])
    run = mixframe.load_run("runs/digits_amr_mixup-20261129-101500")
    x = run.to_input(["a.png", "b.png"])
    run.to_images(run.interpolate(x[:1], x[1:], steps=8)[0])[3].save("middle.png")

The command line calls these same functions; it holds no logic of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mixframe.errors import MixframeError
from mixframe.kernel.interfaces import (
    BuildContext,
    Callback,
    DataBundle,
    DataSpec,
    Mixer,
    MixResult,
    blend,
    interpolation_weights,
    to_images,
)
from mixframe.kernel.randomness import kept_random_state
from mixframe.kernel.recipe import Recipe
from mixframe.runs.folder import RunFolder, not_written

logger = logging.getLogger("mixframe.runs")
RecipeLike = str | Path | Recipe
ImageLike = Any  # a PIL image, a path to an image file, a numpy array (H, W[, C]) or a tensor ((C, H, W) or (N, C, H, W))
MAX_IMAGE_PIXELS = 50_000_000


def load(recipe: RecipeLike, overrides: Sequence[str] = ()) -> Recipe:
    """A checked recipe from a path or a recipe, with ``--set``-style overrides applied."""
    from mixframe.kernel.recipe import apply_overrides, check, load_recipe
    from mixframe.kernel.registry import get_registry

    if isinstance(recipe, Recipe):
        if not overrides:
            return recipe
        return check(apply_overrides(recipe.to_dict(), overrides, get_registry()), "recipe (with overrides)")
    return load_recipe(Path(recipe), list(overrides))


def train(recipe: RecipeLike, overrides: Sequence[str] = (), *, out: str | Path = "runs", name: str | None = None,
          callbacks: Sequence[Callback] = (), progress: bool = True) -> Run:
    """Train ``recipe`` into a new run folder under ``out`` and return the trained :class:`Run`.

    Exactly what ``mixframe train`` does: the folder (``NAME-TIME``, never an existing one) gets the
    resolved recipe, run.json, environment, plugins and data description before training starts,
    then logs, checkpoints and pictures. ``callbacks`` are your own :class:`mixframe.Callback`
    objects, run beside the recipe's. Under ``torchrun`` every process calls this; rank 0 writes.
    """
    from mixframe.kernel.engine import distributed
    from mixframe.kernel.engine.loop import Trainer
    from mixframe.kernel.files import check_output_path
    from mixframe.runs.callbacks import recipe_callbacks, run_folder_callbacks

    checked = load(recipe, overrides)
    rank, world = distributed.join(checked.train.device)
    if rank == 0:
        check_output_path(Path(out), folder=True, option=None)  # before the data is read (the CLI checked --out already)
    trainer = Trainer(checked, rank=rank, world=world)  # data, model and callbacks first: a mistake leaves no run folder
    own = recipe_callbacks(checked, _context(trainer))
    folder = None
    if rank == 0:
        stem = name or (Path(str(recipe).removeprefix("shipped:")).stem if not isinstance(recipe, Recipe) else "run")
        # complete or absent: the record is written into a hidden folder that is then renamed
        folder = RunFolder.create(out, stem, lock=True, write=lambda new: new.write_record(
            checked, trainer.data.spec, trainer.data.label_kind, device=trainer.device, world=world,
            recipe_file=None if isinstance(recipe, Recipe) else str(recipe), overrides=list(overrides),
            threads_source=trainer.threads_source))
        logger.info(f"run folder: {folder.path}")
    try:
        path = distributed.share(str(folder.path) if folder else None, world)
        trainer.run = folder
        try:
            trainer.callbacks = [*own, *callbacks, *run_folder_callbacks(folder, progress=progress)]
        except BaseException as err:
            if folder is not None:
                folder.close_record("failed", str(err) or type(err).__name__)
            raise
        _fit(trainer, RunFolder(path))
    finally:
        if folder is not None:
            folder.lock().release()
    return Run(RunFolder(path), trainer.model.eval(), data=trainer.data, epoch=trainer.epoch, step=trainer.step)


def resume(run_dir: str | Path, overrides: Sequence[str] = (), *, callbacks: Sequence[Callback] = (), progress: bool = True) -> Run:
    """Continue a stopped (even SIGKILLed) run from its last checkpoint, in its own folder.

    ``overrides`` may change the ``train`` section only (a lower ``train.lr`` after a divergence, more
    ``train.epochs`` for a finished run); the recipe.yaml of the run is updated and run.json records them.
    """
    from mixframe.kernel.engine import distributed

    folder = RunFolder.open(run_dir)
    outside = [o for o in overrides if not o.strip().startswith("train.")]
    if outside:
        raise MixframeError(f"resume changes only the train section (train.lr, train.epochs, ...), not {', '.join(outside)}; "
                            "for another recipe, train a new run")
    recipe = folder.read_recipe(list(overrides))
    rank, world = distributed.join(recipe.train.device)
    if rank == 0:
        folder.lock().acquire()  # one writer: a second resume (or train, evaluate) of this folder is refused
    try:
        return _resume(folder, recipe, overrides, rank, world, callbacks, progress)
    finally:
        if rank == 0:
            folder.lock().release()


def _resume(folder: RunFolder, recipe: Recipe, overrides: Sequence[str], rank: int, world: int, callbacks: Sequence[Callback],
            progress: bool) -> Run:
    from mixframe.kernel.engine.loop import Trainer
    from mixframe.runs.callbacks import recipe_callbacks, run_folder_callbacks

    try:
        state = folder.checkpoint().load() if folder.has_checkpoint else None
        trainer = Trainer(recipe, rank=rank, world=world)
    except KeyboardInterrupt:
        raise RunInterrupted(folder) from None
    if state is not None:
        trainer.load_state(state, str(folder.checkpoint().path))
    if trainer.done and folder.status == "complete":
        if rank == 0:
            logger.info(f"{folder.path} is already complete ({trainer.epoch} epochs); nothing to do (raise train.epochs with --set to go on)")
        return Run(folder, trainer.model.eval(), data=trainer.data, epoch=trainer.epoch, step=trainer.step)
    # (done but not marked complete: stopped after its last checkpoint; fit() runs no step and closes the record)
    if rank == 0:
        try:  # the records repaired before any callback reads them: a metrics.csv row cut by a kill, stray temporaries
            folder.repair(trainer.step)
            if overrides:
                folder.write_artifact(RunFolder.RECIPE, recipe.to_yaml().encode())
            info = folder.info()
            stopped = {k: info[k] for k in ("status", "stopped", "error") if k in info}  # how the run had stopped: kept here, not on top
            history = [*info.get("resumes", []), {"at_epoch": trainer.epoch, "overrides": list(overrides), "after": stopped,
                                                  "threads": trainer.threads, "threads_source": trainer.threads_source}]
            folder.update_info(status="running", resumes=history, drop=STOP_FIELDS)
        except OSError as err:
            raise not_written(folder.path, err, f"cannot resume {folder.path}") from None
        if state is None:
            logger.info(f"no checkpoint in {folder.path}: starting it from the beginning")
    trainer.run = folder if rank == 0 else None
    resume_step = trainer.step if rank == 0 else None
    try:
        trainer.callbacks = [*recipe_callbacks(recipe, _context(trainer)), *callbacks,
                             *run_folder_callbacks(trainer.run, progress=progress, resume_step=resume_step)]
    except BaseException as err:
        if rank == 0:
            folder.close_record("failed", str(err) or type(err).__name__)
        raise
    _fit(trainer, folder)
    return Run(folder, trainer.model.eval(), data=trainer.data, epoch=trainer.epoch, step=trainer.step)


STOP_FIELDS = ("stopped", "error")  # run.json's record of a stop, true only until the run is resumed


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C once a run folder exists: a KeyboardInterrupt whose message says how to continue the run."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        kept = "its last checkpoint is kept" if folder.has_checkpoint else "it has no checkpoint yet"
        super().__init__(f"interrupted; the run is in {folder.path} ({kept}). Continue it with: mixframe resume {folder.path}")


def _fit(trainer: Any, folder: RunFolder) -> None:
    """``trainer.fit()``, with Ctrl-C turned into :class:`RunInterrupted` (how to continue), then the ranks' check.
    Whatever stops it, run.json is not left saying "running" (:meth:`RunFolder.close_record`)."""
    def close(status: str, error: str) -> None:
        if trainer.rank == 0:
            folder.close_record(status, error)

    try:
        trainer.fit()
    except RunInterrupted:
        close("interrupted", "interrupted")
        raise
    except KeyboardInterrupt:
        close("interrupted", "interrupted")
        raise RunInterrupted(folder) from None
    except BaseException as err:
        close("failed", str(err) or type(err).__name__)
        raise
    _check_identical(trainer)


def _context(trainer: Any) -> BuildContext:
    return BuildContext(data=trainer.data.spec, code_shape=tuple(trainer.model.encoder.code_shape))


def _check_identical(trainer: Any) -> None:
    if not trainer.ranks_identical:
        raise MixframeError("the processes ended with different weights; the gradient synchronisation failed")


def load_run(path: str | Path, device: str | torch.device = "cpu", *, best: bool = False) -> Run:
    """Open a finished or stopped run: its recipe, data description and last checkpoint (with ``best``,
    checkpoint_best.pt: the epoch of the lowest validation loss logged).

    Needs no training data on disk (the data's shape and scaling were recorded in data.json);
    ``run.data`` reads the data on first use, for evaluation. Loading, encoding and decoding leave the
    caller's random state (torch, ``random``, numpy) as it was.
    """
    from mixframe.kernel.model import Model, load_states

    folder = RunFolder.open(path)
    recipe = folder.read_recipe(for_training=False)
    spec = folder.read_spec()
    data = None
    if spec is None:  # a run from before data.json was recorded: the data tells its shape
        from mixframe.kernel.model import build_data

        with kept_random_state():
            data = build_data(recipe)
        spec = data.spec
    model = Model(recipe, spec)
    checkpoint = folder.checkpoint(best=best)
    if best and not checkpoint.exists:
        raise MixframeError(f"{folder.path} has no {RunFolder.CHECKPOINT_BEST}: no validation loss was logged while it trained "
                            "(the default callback validation logs one: callbacks: [{kind: validation, best_checkpoint: true}]); "
                            "load its last checkpoint instead")
    state = checkpoint.load()
    load_states(str(checkpoint.path), [(model, state["model"])])
    return Run(folder, model.to(device).eval(), data=data, epoch=int(state["epoch"]), step=int(state["step"]))


class Run:
    """A trained model with its run folder: encode, decode, mix, interpolate, evaluate, and turn images in and out.

    Every method works in eval mode without gradients, batch by batch, on ``device``. Codes and
    decoded outputs are tensors in the data's value range (``spec.value_range``); ``to_images``
    turns them into pictures and ``to_input`` turns pictures into model input.
    """

    def __init__(self, folder: RunFolder, model: Any, *, data: DataBundle | None = None, epoch: int = 0, step: int = 0,
                 batch_size: int = 256) -> None:
        self.folder, self.model = folder, model
        self.recipe: Recipe = model.recipe
        self.spec: DataSpec = model.spec
        self.encoder, self.decoder, self.mixer = model.encoder, model.decoder, model.mixer
        self.epoch, self.step, self.batch_size = epoch, step, batch_size
        self.seed = self.recipe.seed
        self._data = data
        self._codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"<mixframe.Run {self.name}: epoch {self.epoch}, {self.recipe.mixer.name if self.recipe.mixer else 'no'} mixer>"

    @property
    def dir(self) -> Path:
        return self.folder.path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def data(self) -> DataBundle:
        """The run's dataset, read on first use (a MixframeError names what is missing when it is not on disk)."""
        if self._data is None:
            from mixframe.kernel.model import build_data

            with kept_random_state():
                self._data = build_data(self.recipe)
        return self._data

    def to(self, device: str | torch.device) -> Run:
        self.model.to(device)
        return self

    # -- the model ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Codes ``(N, *code_shape)`` of data ``(N, *spec.shape)``."""
        return torch.cat([self.encoder(b.to(self.device)) for b in x.split(self.batch_size)])

    @torch.no_grad()
    def decode(self, h: Tensor) -> Tensor:
        """Data ``(N, *spec.shape)`` (in ``spec.value_range``) decoded from codes."""
        return torch.cat([self.decoder.to_data(self.decoder(b.to(self.device))) for b in h.split(self.batch_size)])

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def mix(self, *codes: Tensor, mixer: str | Mixer | None = None, labels: Sequence[Tensor] | None = None,
            seed: int | None = None, **params: Any) -> MixResult:
        """Mix batches of codes with the run's own mixer, or any registered one by name (``params`` are its
        recipe parameters), or a Mixer instance. ``seed`` makes the mixer's random draws repeatable."""
        chosen = self._mixer(mixer, params)
        if len(codes) != chosen.num_sources:
            raise MixframeError(f"this mixer mixes {chosen.num_sources} batches of codes; {len(codes)} were given")
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            return chosen([c.to(self.device) for c in codes], labels)

    def _mixer(self, mixer: str | Mixer | None, params: dict[str, Any]) -> Mixer:
        if isinstance(mixer, Mixer):
            return mixer
        if mixer is None and not params:
            if self.mixer is None:
                raise MixframeError(f"run {self.name} was trained without a mixer; name one, e.g. run.mix(h1, h2, mixer='mixup')")
            return self.mixer
        from mixframe.kernel.registry import get_registry

        name = mixer or self.recipe.mixer.name  # type: ignore[union-attr]
        built: Mixer = get_registry().build("mixer", name, params, BuildContext(data=self.spec, code_shape=tuple(self.encoder.code_shape)))
        return built.to(self.device).eval()

    def interpolate(self, x1: Tensor, x2: Tensor, steps: int = 8, mode: str = "linear", seed: int = 0) -> Tensor:
        """``(pairs, steps, *spec.shape)``: decoded codes moving from f(x1) (first) to f(x2) (last), linearly or
        by swapping progressively more feature maps (``mode="bernoulli"``)."""
        x1, x2 = self._batch(x1), self._batch(x2)
        h1, h2 = self.encode(x1), self.encode(x2)
        weights = interpolation_weights(h1.shape[1], steps, mode, seed).to(h1.device, h1.dtype)  # (steps, 2, C)
        codes = torch.stack([blend([h1, h2], w.expand(len(h1), -1, -1)) for w in weights], dim=1)
        return self.decode(codes.flatten(0, 1)).reshape(len(x1), steps, *x1.shape[1:]).cpu()

    def _batch(self, x: Tensor) -> Tensor:
        return x[None] if x.dim() == len(self.spec.shape) else x

    # -- data --------------------------------------------------------------------------------------------
    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """All examples and labels of a split (train, val or test), stacked."""
        dataset = getattr(self.data, name)
        with kept_random_state():  # a DataLoader draws its workers' seed from torch's stream
            xs, ys = zip(*torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=False))
        return torch.cat(xs), torch.cat(ys)

    def codes(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Flattened codes ``(N, D)`` and labels of a whole split, as numpy arrays (cached)."""
        if split not in self._codes:
            x, y = self.split(split)
            self._codes[split] = (self.encode(x).flatten(1).cpu().numpy(), y.numpy())
        return self._codes[split]

    def evaluate(self, metrics: Sequence[str] = (), *, split: str = "test", seed: int | None = None, write: bool = True) -> dict[str, float]:
        """Compute metrics (default: the recipe's ``metrics``) on ``split`` (test or val), with an evaluation
        ``seed`` in place of the metrics' own when given; test-split numbers at the metrics' own seeds are merged
        into the run's evaluation.json when ``write``."""
        from mixframe.runs.evaluation import evaluate

        return evaluate(self, metrics, split=split, seed=seed, write=write)

    def logged(self) -> dict[str, list[tuple[int, float]]]:
        """The per-epoch means logged during training: name -> [(epoch, value)], under the names of metrics.csv, TensorBoard's
        tags and the callbacks' ``means`` (``epoch/ae/reconstruction``, ``epoch/val/reconstruction``, ...)."""
        return self.folder.epoch_curves()

    # -- images in and out -------------------------------------------------------------------------------
    def to_input(self, images: ImageLike | Sequence[ImageLike]) -> Tensor:
        """Model input ``(N, *spec.shape)`` from images: PIL images, file paths, arrays or tensors.

        Pictures are prepared exactly as the run's training pictures were: converted to its channels, then the
        dataset's own steps recorded in data.json (``spec.preprocess``: stretched, or resized by the shorter
        side and center-cropped with ``keep_aspect``; scaled to ``spec.value_range``). A run whose data were
        not picture files (or recorded before the steps were) stretches to its height and width. Tensors are
        taken as already scaled.
        """
        if not self.spec.is_image:
            raise MixframeError(f"run {self.name} models data of shape {self.spec.shape}, not images; pass a tensor")
        if isinstance(images, Tensor):
            return self._batch(images).float()
        if not isinstance(images, (list, tuple)):
            images = [images]
        return torch.stack([self._one_input(im) for im in images])

    def _one_input(self, image: ImageLike) -> Tensor:
        from PIL import Image

        channels, height, width = self.spec.shape
        if isinstance(image, Tensor):
            return image.float()
        if isinstance(image, (str, Path)):
            image = open_image(Path(image))
        if isinstance(image, np.ndarray):
            array = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
            image = Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8).squeeze())
        if not isinstance(image, Image.Image):
            raise MixframeError(f"cannot read {type(image).__name__} as an image; pass PIL images, file paths, arrays or tensors")
        from mixframe.kernel.files import convert_image

        image = convert_image(image, "L" if channels == 1 else "RGB", getattr(image, "filename", "") or "image")
        if self.spec.preprocess is not None:
            return self.spec.preprocess(image)
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        unit = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        unit = unit[None] if unit.dim() == 2 else unit.permute(2, 0, 1)
        low, high = self.spec.value_range
        return unit * (high - low) + low

    def to_images(self, x: Tensor) -> list[Any]:
        """PIL images of data ``(N, C, H, W)`` (or one ``(C, H, W)``) in the run's value range."""
        return to_images(x, self.spec)


def open_image(path: Path) -> Any:
    """A user's image file through the guarded path: it exists, is an image, and is not a decompression bomb."""
    from mixframe.kernel.files import open_user_image

    return open_user_image(path, what="image", max_pixels=MAX_IMAGE_PIXELS)
