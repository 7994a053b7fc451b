"""Sub-commands that train and resume runs; they register themselves with the CLI."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
from pathlib import Path

import torch
import torch.distributed as dist

from mixframe.cli import _add_set, command, extension
from mixframe.errors import MixframeError
from mixframe.recipe import Recipe, load_recipe
from mixframe.runs import RECIPE, environment, new_run_dir, plugin_record, read_run_recipe, write_json
from mixframe.train import ScalarLog, Trainer, TrainingDiverged, load_resume_state, pick_device


@extension
def _parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe into a new run folder")
    p.add_argument("recipe", type=Path)
    _add_set(p)
    p.add_argument("--out", type=Path, default=Path("runs"), help="folder that receives the new run folder (default: runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = sub.add_parser("resume", help="continue a stopped run (also one that was killed) from its last checkpoint")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def init_distributed(recipe: Recipe) -> tuple[int, int]:
    """(rank, world size): under torchrun, join the process group (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        device = pick_device(recipe.train.device, int(os.environ.get("LOCAL_RANK", 0)))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def _share_path(path: Path | None, world: int) -> Path:
    if world == 1:
        assert path is not None
        return path
    box = [str(path) if path is not None else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def _run_info(run_dir: Path, **update: object) -> None:
    path = run_dir / "run.json"
    info = json.loads(path.read_text()) if path.exists() else {}
    info.update(update)
    write_json(path, info)


def _fit(trainer: Trainer, run_dir: Path, log: ScalarLog | None, progress: bool) -> None:
    try:
        summary = trainer.fit(run_dir, progress=progress)
    except TrainingDiverged as err:
        if log is not None:
            _run_info(run_dir, status="diverged", error=str(err))
        raise
    except KeyboardInterrupt:
        if log is not None:
            _run_info(run_dir, status="interrupted", epoch=trainer.epoch)
        raise
    finally:
        if log is not None:
            log.close()
    identical = True
    if trainer.world > 1:
        flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in trainer.model.state_dict().values()])
        sums = [None] * trainer.world
        dist.all_gather_object(sums, (float(flat.sum()), float((flat * torch.arange(len(flat), dtype=torch.float64)).sum())))
        identical = all(s == sums[0] for s in sums)
    if trainer.rank == 0:
        from mixframe.pictures import plot_loss_curves

        plot_loss_curves(run_dir / "metrics.csv", run_dir / "loss_curves.png")
        grids = sorted((run_dir / "grids").glob("*.png"))
        if grids:
            shutil.copyfile(grids[-1], run_dir / "grid.png")
        _run_info(run_dir, status="complete", finished=_dt.datetime.now().isoformat(timespec="seconds"), epoch=trainer.epoch,
                  step=trainer.step, world_size=trainer.world, ranks_identical=identical,
                  final={k: round(v, 6) for k, v in summary.items()})
        print(f"run complete: {run_dir}  (checkpoint.pt, loss_curves.png, grid.png, metrics.csv)")
    if not identical:
        raise MixframeError("the processes ended with different weights; the gradient synchronisation failed")


def train_new_run(recipe: Recipe, recipe_file: Path, overrides: list[str], out: Path, progress: bool = True) -> Path:
    """Train ``recipe`` into a new run folder under ``out`` (under torchrun: rank 0 makes it); return the folder."""
    rank, world = init_distributed(recipe)
    trainer = Trainer(recipe, rank=rank, world=world)  # data and model first: a mistake leaves no run folder
    run_dir = None
    if rank == 0:
        run_dir = new_run_dir(out, recipe_file.stem)
        (run_dir / RECIPE).write_text(recipe.to_yaml())
        write_json(run_dir / "run.json", {"status": "running", "recipe_file": str(recipe_file), "overrides": overrides,
                                           "started": _dt.datetime.now().isoformat(timespec="seconds"), "world_size": world})
        write_json(run_dir / "environment.json", environment(trainer.device))
        write_json(run_dir / "plugins.json", plugin_record())
        print(f"run folder: {run_dir}")
    run_dir = _share_path(run_dir, world)
    log = ScalarLog(run_dir) if rank == 0 else None
    trainer.logger = log
    _fit(trainer, run_dir, log, progress=progress)
    return run_dir


@command("train")
def cmd_train(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe, args.overrides)
    train_new_run(recipe, args.recipe, args.overrides, args.out, progress=not args.no_progress)
    return 0


@command("resume")
def cmd_resume(args: argparse.Namespace) -> int:
    run_dir = args.run_dir
    recipe = read_run_recipe(run_dir)
    rank, world = init_distributed(recipe)
    state = load_resume_state(run_dir)
    trainer = Trainer(recipe, rank=rank, world=world)
    if state is not None:
        trainer.load_state(state)
    if trainer.epoch >= recipe.train.epochs or trainer.step >= trainer.total_steps:
        if rank == 0:
            print(f"{run_dir} is already complete ({trainer.epoch} epochs); nothing to do")
        return 0
    log = None
    if rank == 0:
        print(f"resuming {run_dir} at epoch {trainer.epoch}, minibatch {trainer.step}" if state else f"no checkpoint in {run_dir}: starting it from the beginning")
        log = ScalarLog(run_dir, resume_step=trainer.step)
        _run_info(run_dir, status="running", resumed=_dt.datetime.now().isoformat(timespec="seconds"))
    trainer.logger = log
    _fit(trainer, run_dir, log, progress=not args.no_progress)
    return 0
