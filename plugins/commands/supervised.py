"""Supervised AMR: the class mixer's masks (the paper's Figure 6), supervised mix grids, and the
attribute-accuracy measurement.

Sub-commands (registered by the light module ``supervised_commands.py``, which imports this one when
one of them runs); they serve any mixer implementing :class:`mixframe.PredictsMasks` (the built-in
class mixer does):

``mixframe masks RUN``
    p = masks_for(c) and sampled masks m for every combination c of the mask network's input (y_mix,
    or for ``condition: sources`` which parent each attribute comes from), as a picture (masks.png),
    a table on stdout and masks.json.
``mixframe supervised-grid RUN``
    for test pairs (x1, x2), the decoded mix g(m h1 + (1 - m) h2) for every such combination.
``mixframe attribute-accuracy RUN...``
    an attribute classifier trained on the run's real training images judges decoded mixes: how
    often does x_mix show y_mix? The measurement is the metric plugin ``attribute_accuracy``
    (``mixframe_plugins.metrics.attribute_accuracy``); the protocol is in docs/supervised.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from mixframe import MixframeError, PredictsMasks, RunFolder, blend
from mixframe.cli.arguments import (
    MAX_MEASURED_PAIRS,
    MAX_PICTURE_PAIRS,
    MAX_PICTURE_SAMPLES,
    add_device,
    add_run_dirs,
    add_seed,
    at_least_one,
    at_most,
    check_device,
    check_output_path,
    check_writable_folder,
)
from mixframe.kernel.interfaces import DataBundle
from mixframe_plugins.metrics.attribute_accuracy import attribute_accuracy, sample_masks

MAX_ATTRIBUTES = 6


# -- attribute combinations and masks -----------------------------------------------------------------
def combinations(num_attributes: int) -> Tensor:
    """All 2^k attribute vectors (2^k, k) as floats, in binary order: row r has bit i = attribute i,
    attribute 0 the most significant (row 1 of k = 3 is 001: only the last attribute set)."""
    if num_attributes < 1:
        raise MixframeError("the data has no binary attributes; use a dataset with label_kind attributes (e.g. dsprites labels: attributes)")
    if num_attributes > MAX_ATTRIBUTES:
        raise MixframeError(f"the data has {num_attributes} attributes, i.e. {2 ** num_attributes} combinations: too many to draw "
                            f"(at most {MAX_ATTRIBUTES}); train with fewer attributes (e.g. celeba attributes: [Male, Smiling, Eyeglasses])")
    rows = torch.arange(2 ** num_attributes)
    shifts = torch.arange(num_attributes - 1, -1, -1)
    return ((rows[:, None] >> shifts) & 1).float()


def bits(y: Tensor) -> str:
    """'101' for an attribute vector (1, 0, 1)."""
    return "".join(str(int(v)) for v in y.round().tolist())


def class_mixer_of(run: Any) -> PredictsMasks:
    """The run's mixer when it predicts masks from attributes (implements ``mixframe.PredictsMasks``), else a MixframeError."""
    mixer = run.mixer
    if not isinstance(mixer, PredictsMasks):
        kind = run.recipe.mixer.name if run.recipe.mixer is not None else "none"
        raise MixframeError(f"run {run.dir} uses mixer {kind!r}, which predicts no masks from attributes; "
                            "masks and supervised grids need a supervised run (mixer: {kind: class_mixer})")
    return mixer


def condition_label(condition: str) -> str:
    return "y_mix" if condition == "y_mix" else "from x1"


@torch.no_grad()
def mask_table(run: Any, samples: int = 1, seed: int = 0) -> dict[str, Any]:
    """p (2^k, C) and ``samples`` sampled masks (samples, 2^k, C) for every attribute combination."""
    mixer = class_mixer_of(run)
    names = tuple(run.spec.attribute_names)
    combos = combinations(len(names))
    p = mixer.masks_for(combos.to(run.device)).float().cpu()
    gen = torch.Generator().manual_seed(seed)
    m = torch.stack([sample_masks(p, gen) for _ in range(samples)])
    return {"attributes": names, "combinations": combos, "p": p, "m": m, "condition": mixer.mask_condition}


def mask_summary(table: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per combination: mean p and the fraction of maps the sampled masks take from the first parent."""
    rows = []
    for i, y in enumerate(table["combinations"]):
        p, m = table["p"][i], table["m"][:, i]
        rows.append({"bits": bits(y), table["condition"]: {a: int(v) for a, v in zip(table["attributes"], y.tolist())},
                     "mean_p": float(p.mean()), "first_parent_fraction": float(m.mean()),
                     "maps_p_over_half": int((p > 0.5).sum()), "p": [round(float(v), 5) for v in p],
                     "m": [[int(v) for v in draw] for draw in m.tolist()]})
    return rows


def format_summary(table: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    names = ", ".join(table["attributes"])
    lines = [f"{condition_label(table['condition'])} = ({names})   mean p   first parent (sampled m)   "
             f"maps with p > 0.5 (of {table['p'].shape[1]})"]
    for row in rows:
        lines.append(f"{row['bits']:>{max(5, len(row['bits']))}}         {row['mean_p']:6.3f}   {row['first_parent_fraction']:10.3f}"
                     f"                 {row['maps_p_over_half']:4d}")
    return "\n".join(lines)


def save_masks_picture(table: dict[str, Any], path: Path, title: str = "") -> None:
    """Figure 6: rows = combinations, columns = feature maps; p as a viridis heat map, then each sampled m."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, m, combos = table["p"].numpy(), table["m"].numpy(), table["combinations"]
    labels = [bits(y) for y in combos]
    label = condition_label(table["condition"])
    panels = [(f"p = masks_for({label})", p, "viridis")] + [
        (f"sampled m{'' if len(m) == 1 else f' #{j + 1}'} (1 = first parent)", m[j], "gray") for j in range(len(m))]
    rows, cols = p.shape
    width = max(2.5, 0.22 * cols + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels) + 0.8, 0.3 * rows + 1.6), squeeze=False)
    for ax, (name, values, cmap) in zip(axes[0], panels):
        image = ax.imshow(values, cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_yticks(range(rows), labels, fontsize=7, family="monospace")
        ax.set_xticks(range(0, cols, max(1, cols // 16)))
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("feature map index", fontsize=8)
        ax.set_ylabel(f"{label} = ({', '.join(table['attributes'])})", fontsize=8)
        if cmap == "viridis":
            fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from mixframe.runs.folder import png_bytes, write_file

    write_file(path, png_bytes(fig, dpi=120))  # atomic: never half a picture


# -- supervised grids ---------------------------------------------------------------------------------
@torch.no_grad()
def supervised_mixes(run: Any, x1: Tensor, x2: Tensor, mask: str = "sample", seed: int = 0) -> tuple[Tensor, Tensor]:
    """(pairs, 2^k, *shape) decoded mixes g(m h1 + (1 - m) h2) for each combination of the mask network's
    input (y_mix, or which parent each attribute comes from), and the combinations.

    ``mask``: "soft" uses m = p, "sample" a Bernoulli draw seeded by ``seed`` (one per pair and target).
    """
    if mask not in ("soft", "sample"):
        raise MixframeError(f"mask must be 'soft' or 'sample', got {mask!r}")
    mixer = class_mixer_of(run)
    combos = combinations(len(run.spec.attribute_names))
    h1, h2 = run.encode(x1), run.encode(x2)
    p = mixer.masks_for(combos.to(run.device)).float()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(len(h1)):
        m = p if mask == "soft" else sample_masks(p, gen)
        weights = torch.stack([m, 1 - m], dim=1).to(h1.dtype)
        out.append(run.decode(blend([h1[i : i + 1].expand(len(m), *h1.shape[1:]), h2[i : i + 1].expand(len(m), *h2.shape[1:])], weights)))
    return torch.stack(out), combos


def save_labelled_grid(rows: list[Tensor], column_labels: list[str], row_labels: list[str], data: DataBundle, path: Path, title: str) -> None:
    """Rows of images as one picture with column and row labels (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    from mixframe.kernel.interfaces import to_unit

    images = to_unit(torch.cat(rows).cpu().float(), data.spec)
    if images.shape[-1] < 48:
        images = F.interpolate(images, scale_factor=48 // images.shape[-1], mode="nearest")
    pad, side = 2, images.shape[-1]
    grid = make_grid(images, nrow=len(column_labels), padding=pad, pad_value=1.0).permute(1, 2, 0).numpy()
    fig, ax = plt.subplots(figsize=(0.75 * len(column_labels) + 1.2, 0.75 * len(rows) + 1.0))
    ax.imshow(grid, interpolation="nearest")
    centres = [pad + i * (side + pad) + side / 2 for i in range(max(len(column_labels), len(rows)))]
    ax.set_xticks(centres[: len(column_labels)], column_labels, fontsize=7, family="monospace", rotation=90)
    ax.set_yticks(centres[: len(rows)], row_labels, fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=9, pad=4, y=-0.08 if len(rows) > 1 else -0.2)
    fig.tight_layout()
    from mixframe.runs.folder import png_bytes, write_file

    write_file(path, png_bytes(fig, dpi=120))  # atomic: never half a picture


# -- commands -----------------------------------------------------------------------------------------
def masks_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dirs(p, many=False)
    p.add_argument("--out", type=Path, default=None, help="picture file (default: RUN_DIR/masks.png; masks.json beside it)")
    p.add_argument("--samples", type=int, default=1, help="sampled masks m to draw per combination (default 1)")
    add_seed(p, "the sampled masks")
    add_device(p)


def grid_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dirs(p, many=False)
    p.add_argument("--pairs", type=int, default=4, help="test pairs, one row each (default 4)")
    p.add_argument("--out", type=Path, default=None, help="picture file (default: RUN_DIR/supervised_grid.png)")
    p.add_argument("--mask", choices=["sample", "soft"], default="sample", help="m sampled from p (default, seeded) or m = p")
    add_seed(p, "the sampled masks")
    add_device(p)


def accuracy_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dirs(p)
    p.add_argument("--pairs", type=int, default=2000, help="random test pairs, one target y_mix each (default 2000)")
    add_seed(p, "the classifier, the pairs, the targets and the masks")
    p.add_argument("--classifier-epochs", type=int, default=4, help="epochs of classifier training on the real training split")
    add_device(p)


def _default_out(run_dir: Path, name: str) -> Path:
    return RunFolder.open(run_dir).file(name)  # a message when run_dir is not a run, before its writability is checked


def _load(run_dir: Path, device: str) -> Any:
    from mixframe import load_run

    return load_run(run_dir, device=device)


def cmd_masks(args: argparse.Namespace) -> int:
    from mixframe.runs.folder import write_json

    at_most(args.samples, MAX_PICTURE_SAMPLES, "--samples", "rows of masks per combination in the picture")
    check_device(args.device)
    out = check_output_path(args.out or _default_out(args.run_dir, "masks.png"))
    check_output_path(out.with_suffix(".json"))
    run = _load(args.run_dir, args.device)
    table = mask_table(run, samples=args.samples, seed=args.seed)
    rows = mask_summary(table)
    save_masks_picture(table, out, title=f"{run.name}: class mixer masks ({run.recipe.data.name}, epoch {run.epoch})")
    write_json(out.with_suffix(".json"), {"run": str(run.dir), "attributes": list(table["attributes"]), "samples": args.samples,
                                          "seed": args.seed, "maps": int(table["p"].shape[1]), "combinations": rows})
    print(format_summary(table, rows))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def cmd_supervised_grid(args: argparse.Namespace) -> int:
    at_most(args.pairs, MAX_PICTURE_PAIRS, "--pairs", "rows of the picture")
    check_device(args.device)
    out = check_output_path(args.out or _default_out(args.run_dir, "supervised_grid.png"))
    run = _load(args.run_dir, args.device)
    class_mixer_of(run)
    from mixframe.tools.pictures import first_pairs

    x1, x2 = first_pairs(run.data, args.pairs, split="test")
    if len(x1) == 0:
        raise MixframeError("the test split has fewer than two examples; no pairs to mix")
    mixes, combos = supervised_mixes(run, x1.to(run.device), x2.to(run.device), mask=args.mask, seed=args.seed)
    n = len(x1)
    ys = [run.data.test[i][1] for i in range(2 * n)]
    rows = [torch.cat([x1[i : i + 1].to(mixes.device), x2[i : i + 1].to(mixes.device), mixes[i]]) for i in range(n)]
    columns = ["x1", "x2", *(bits(y) for y in combos)]
    row_labels = [f"{bits(ys[i])} + {bits(ys[n + i])}" for i in range(n)]
    names = ", ".join(run.spec.attribute_names)
    aim = ("the mix aimed at y_mix" if run.mixer.mask_condition == "y_mix"
           else "the mix taking each attribute from x1 (1) or x2 (0)")
    save_labelled_grid(rows, columns, row_labels, run.data, out,
                       f"columns: x1, x2, then {aim} = ({names}); rows: y(x1) + y(x2); m {args.mask}")
    print(f"wrote {out}")
    return 0


def cmd_attribute_accuracy(args: argparse.Namespace) -> int:
    at_most(args.pairs, MAX_MEASURED_PAIRS, "--pairs", "the pairs' images are decoded and held in memory at once")
    at_least_one(args.classifier_epochs, "--classifier-epochs")
    check_device(args.device)
    for run_dir in args.run_dirs:
        check_writable_folder(RunFolder.open(run_dir).path, f"the results of {run_dir} (its attribute_accuracy.json)")
    results = []
    for run_dir in args.run_dirs:  # runs on the same data share one classifier
        run = _load(run_dir, args.device)
        result = attribute_accuracy(run, pairs=args.pairs, seed=args.seed, classifier_epochs=args.classifier_epochs)
        mixer = run.recipe.mixer.name if run.recipe.mixer is not None else "none"
        with run.folder.lock():  # one writer per run folder
            run.folder.write_json_artifact("attribute_accuracy.json", {"run": str(run.dir), "mixer": mixer, "pairs": args.pairs, "seed": args.seed,
                                                                       "classifier_epochs": args.classifier_epochs, **result})
        results.append((run, mixer, result))
    print(f"{'run':<44} {'mixer':<12} {'classifier':>10} {'mix attr':>9} {'mix vector':>10} {'x1 attr':>8} {'x1 vector':>9} {'recon attr':>10}")
    for run, mixer, r in results:
        print(f"{run.name[:44]:<44} {mixer:<12} {r['classifier_test_attribute_accuracy']:10.3f} {r['mix_attribute_accuracy']:9.3f} "
              f"{r['mix_vector_accuracy']:10.3f} {r['first_parent_attribute_accuracy']:8.3f} {r['first_parent_vector_accuracy']:9.3f} "
              f"{r['reconstruction_attribute_accuracy']:10.3f}")
    print("mix: the classifier reads y_mix in the decoded mix; x1: in the real first parent (a copy-one-parent reference); "
          "recon: reconstructions read as their own labels. Written to RUN_DIR/attribute_accuracy.json")
    return 0

