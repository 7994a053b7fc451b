"""Time the full-size MNIST recipe on a GPU, in one go, with stand-in data of the right shape.

    .venv/bin/python benchmarks/gpu_full_size.py                      # a CUDA machine: about 3 to 5 minutes
    .venv/bin/python benchmarks/gpu_full_size.py --json out.json      # also write the numbers as JSON
    .venv/bin/python benchmarks/gpu_full_size.py --device cpu --steps 3 --warmup 2 --variants fp32   # check it runs, on CPU

The recipe is ``recipes/full/mnist_amr_mixup.yaml`` (32x32 images, the ACAI/AMR conv networks of
depth 16, batch 64, the critic stepped every minibatch and the autoencoder every 5th). The data are
stand-ins: 55,000 random 1x32x32 images in [-1, 1] with labels 0-9, the size and shape of MNIST's
training split after 5,000 are held out, so no dataset is needed (a step's cost does not depend on
the pixel values).

Each variant is a fresh Trainer with the recipe's seed; after ``--warmup`` minibatches (timed apart:
they include cuDNN's and torch.compile's first-call work) it runs ``--steps`` minibatches from a
fixed list already on the device, between device syncs. Reported: ms per minibatch, images per
second, the estimated time of one epoch (859 minibatches) and of the recipe's 500 epochs, and peak
memory. Variants:

* ``fp32``: ``train.amp: false``, ``train.channels_last: false``
* ``bf16``: bfloat16 autocast (``train.amp: true``), contiguous (NCHW) images
* ``bf16+cl``: bfloat16 and channels-last (the default on CUDA: ``channels_last: null``)
* ``bf16+cl+cudnn``: the same with ``torch.backends.cudnn.benchmark`` (cuDNN picks its fastest kernels)
* ``bf16+cl+compile``: the same with ``train.compile: true`` (the spectral-norm critic stays eager)

Then, for ``bf16+cl``: ``loader``, the same minibatches through the recipe's DataLoader (``num_workers``,
pinned memory, non-blocking copies), to see whether loading keeps up; and a synchronisation check:
``--sync-steps`` ordinary minibatches under ``torch.cuda.set_sync_debug_mode("error")``, which raises
at the first operation that waits for the GPU (none should: logged values stay on the device until
``log_every``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mixframe.kernel.engine import Trainer  # noqa: E402
from mixframe.kernel.interfaces import DataBundle, DataSpec  # noqa: E402
from mixframe.kernel.recipe import load_recipe  # noqa: E402

RECIPE = ROOT / "recipes" / "full" / "mnist_amr_mixup.yaml"
TRAIN, EPOCHS = 55_000, 500
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {"overrides": ["train.amp=false", "train.channels_last=false"]},
    "bf16": {"overrides": ["train.amp=true", "train.channels_last=false"]},
    "bf16+cl": {"overrides": ["train.amp=true", "train.channels_last=true"]},
    "bf16+cl+cudnn": {"overrides": ["train.amp=true", "train.channels_last=true"], "cudnn_benchmark": True},
    "bf16+cl+compile": {"overrides": ["train.amp=true", "train.channels_last=true", "train.compile=true"]},
}


def stand_in_data(n: int = TRAIN, seed: int = 0) -> DataBundle:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 32, 32, generator=gen) * 2 - 1
    y = torch.randint(10, (n,), generator=gen)
    small = TensorDataset(x[:512], y[:512])
    return DataBundle(spec=DataSpec(shape=(1, 32, 32), value_range=(-1.0, 1.0), num_classes=10), train=TensorDataset(x, y), val=small,
                      test=small)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer_for(variant: str, args: argparse.Namespace, data: DataBundle) -> Trainer:
    spec = VARIANTS[variant]
    torch.backends.cudnn.benchmark = bool(spec.get("cudnn_benchmark"))
    recipe = load_recipe(RECIPE, [f"train.device={args.device}", *spec["overrides"], *args.set])
    trainer = Trainer(recipe, data=data)
    trainer.model.train()
    return trainer


def time_variant(variant: str, args: argparse.Namespace, data: DataBundle) -> dict[str, Any]:
    trainer = trainer_for(variant, args, data)
    device = trainer.device
    batches, it = [], iter(trainer.loader)
    for _ in range(16):
        batches.append(trainer.to_device(*next(it)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    start = time.perf_counter()
    for i in range(args.warmup):
        trainer.train_step(*batches[i % len(batches)])
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(args.steps):
        trainer.train_step(*batches[i % len(batches)])
    sync(device)
    per_step = (time.perf_counter() - start) / args.steps
    batch = trainer.cfg.batch_size
    steps_per_epoch = TRAIN // batch
    return {"variant": variant, "ms_per_step": per_step * 1e3, "images_per_s": batch / per_step, "warmup_s": warm,
            "epoch_s": per_step * steps_per_epoch, "recipe_h": per_step * steps_per_epoch * EPOCHS / 3600,
            "peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            "eager": trainer.parallel.eager}


def time_loader(variant: str, args: argparse.Namespace, data: DataBundle) -> dict[str, Any]:
    """The same variant fed by the recipe's DataLoader (workers, pinned memory, non-blocking copies)."""
    trainer = trainer_for(variant, args, data)
    device = trainer.device
    it = iter(trainer.loader)
    for _ in range(args.warmup):
        trainer.train_step(*trainer.to_device(*next(it)))
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(*trainer.to_device(*next(it)))
    sync(device)
    per_step = (time.perf_counter() - start) / args.steps
    batch = trainer.cfg.batch_size
    return {"variant": f"{variant} loader", "ms_per_step": per_step * 1e3, "images_per_s": batch / per_step, "warmup_s": None,
            "epoch_s": per_step * (TRAIN // batch), "recipe_h": per_step * (TRAIN // batch) * EPOCHS / 3600, "peak_mib": None,
            "num_workers": trainer.cfg.num_workers}


def sync_check(variant: str, args: argparse.Namespace, data: DataBundle) -> str:
    """Ordinary minibatches under set_sync_debug_mode("error"): the first device synchronisation raises."""
    trainer = trainer_for(variant, args, data)
    if trainer.device.type != "cuda":
        return "skipped (not on CUDA)"
    batches = [trainer.to_device(*b) for _, b in zip(range(4), trainer.loader)]
    for i in range(2 * trainer.cfg.update_g_every):  # first calls (cuDNN set-up) outside the check
        trainer.train_step(*batches[i % len(batches)])
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(args.sync_steps):
            trainer.train_step(*batches[i % len(batches)])
    except RuntimeError as err:
        return f"a step synchronised with the host: {str(err).splitlines()[0]}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return f"no synchronisation in {args.sync_steps} ordinary minibatches"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--steps", type=int, default=200, help="timed minibatches per variant")
    p.add_argument("--warmup", type=int, default=20, help="untimed minibatches first (compilation included)")
    p.add_argument("--sync-steps", type=int, default=20, help="minibatches under the synchronisation check")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more recipe overrides")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; run on a GPU machine, or pass --device cpu to check the script", file=sys.stderr)
        return 2
    data = stand_in_data()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"{RECIPE.relative_to(ROOT)} with stand-in data (55,000 x 1x32x32) on {name}, torch {torch.__version__}", flush=True)
    rows = []
    for variant in args.variants:
        if args.device == "cpu" and "bf16" in variant:
            print(f"  {variant}: skipped (bfloat16 autocast is on CUDA only)")
            continue
        rows.append(time_variant(variant, args, data))
        r = rows[-1]
        print(f"  {variant:<16} {r['ms_per_step']:8.2f} ms  {r['images_per_s']:8.0f} img/s  warm-up {r['warmup_s']:6.1f} s"
              + (f"  peak {r['peak_mib']:.0f} MiB" if r["peak_mib"] is not None else "")
              + (f"  (eager: {', '.join(r['eager'])})" if r["eager"] else ""), flush=True)
    default = "bf16+cl" if args.device == "cuda" else "fp32"
    rows.append(time_loader(default, args, data))
    print(f"  {rows[-1]['variant']:<16} {rows[-1]['ms_per_step']:8.2f} ms  {rows[-1]['images_per_s']:8.0f} img/s  "
          f"(num_workers {rows[-1]['num_workers']})", flush=True)
    check = sync_check(default, args, data)
    print(f"\n{'variant':<22} {'ms/step':>8} {'img/s':>8} {'epoch s':>8} {'500 ep. h':>9} {'peak MiB':>9}")
    for r in rows:
        peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
        print(f"{r['variant']:<22} {r['ms_per_step']:8.2f} {r['images_per_s']:8.0f} {r['epoch_s']:8.1f} {r['recipe_h']:9.2f} {peak:>9}")
    print(f"synchronisation check ({default}): {check}")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows, "sync_check": check}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
