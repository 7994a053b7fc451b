"""``mixframe evaluate`` (metrics of one run) and ``mixframe sweep`` (a grid of recipes, several seeds each)."""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mixframe.cli import _add_set, command, extension
from mixframe.config import Problems, structure
from mixframe.errors import MixframeError
from mixframe.interfaces import BuildContext
from mixframe.recipe import ComponentSpec, RecipeError, load_recipe
from mixframe.registry import get_registry
from mixframe.runs import TrainedRun, write_json

EVALUATION = "evaluation.json"


@extension
def _parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="compute metrics of a trained run; writes evaluation.json into the run folder")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--metric", action="append", default=[], metavar="NAME",
                   help="a metric to compute (repeatable); default: the recipe's 'metrics' section")
    p.add_argument("--device", default="cpu", help="torch device for encoding and decoding (default cpu)")
    p = sub.add_parser("sweep", help="train a grid of recipe values, several seeds each, and tabulate the metrics")
    p.add_argument("recipe", type=Path)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", help="values to sweep (repeatable: the product is trained)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point (seed, seed+1, ...)")
    p.add_argument("--metric", action="append", default=[], metavar="NAME", help="metrics to compute; default: the recipe's")
    p.add_argument("--out", type=Path, default=Path("runs"), help="folder that receives the sweep folder")
    p.add_argument("--no-progress", action="store_true")
    _add_set(p)


def metric_specs(run: TrainedRun, names: Sequence[str]) -> list[ComponentSpec]:
    """The metrics to compute: those named (default configs) or, if none, the recipe's own."""
    if not names:
        if not run.recipe.metrics:
            choices = ", ".join(get_registry().names("metric"))
            raise MixframeError(f"the recipe of {run.dir} names no metrics; pass --metric NAME (choices: {choices})")
        return list(run.recipe.metrics)
    specs, problems = [], Problems()
    own = {m.name: m for m in run.recipe.metrics}
    for name in names:
        if name in own:
            specs.append(own[name])
            continue
        try:
            comp = get_registry().get("metric", name)
        except MixframeError as err:
            raise MixframeError(f"--metric: {err}") from None
        config = structure(comp.config, {}, f"metric {name}", problems)
        if config is not None:
            specs.append(ComponentSpec(kind="metric", name=name, config=config))
    if problems:
        raise RecipeError("--metric", problems.items)
    return specs


def evaluate_run(run_dir: Path, names: Sequence[str] = (), device: str = "cpu") -> dict[str, float]:
    """Compute the metrics, merge them into the run's evaluation.json, and return them."""
    from threadpoolctl import threadpool_limits

    run = TrainedRun(run_dir, device=device)
    context = BuildContext(data=run.data.spec, code_shape=tuple(run.encoder.code_shape))
    results: dict[str, dict[str, float]] = {}
    for spec in metric_specs(run, names):
        metric = get_registry().get("metric", spec.name).implementation(spec.config, context)
        with threadpool_limits(limits=1):  # BLAS threads fight over a shared CPU; one is faster here
            results[spec.name] = {k: float(v) for k, v in metric.evaluate(run).items()}
        print(f"  {spec.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in results[spec.name].items()))
    path = run.dir / EVALUATION
    old = json.loads(path.read_text()) if path.exists() else {"by_metric": {}}
    by_metric = {**old.get("by_metric", {}), **results}
    write_json(path, {"run": run.name, "epoch": run.epoch, "step": run.step, "evaluated": _dt.datetime.now().isoformat(timespec="seconds"),
                      "by_metric": by_metric, "metrics": {k: v for m in by_metric.values() for k, v in m.items()}})
    return {k: v for m in results.values() for k, v in m.items()}


@command("evaluate")
def cmd_evaluate(args: argparse.Namespace) -> int:
    table = {}
    for run_dir in args.run_dirs:
        print(f"{run_dir}:")
        table[run_dir.name] = evaluate_run(run_dir, args.metric, args.device)
    print()
    print(format_table(table))
    return 0


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """A plain-text table: one row per key of ``rows``, one column per metric."""
    columns = list(dict.fromkeys(k for r in rows.values() for k in r))
    header = ["run", *columns]
    body = [[name, *(_fmt(r.get(c)) for c in columns)] for name, r in rows.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in [header, *body]]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# -- sweeps ---------------------------------------------------------------------------------------
def split_values(text: str) -> list[Any]:
    """``v1,v2,[a, b]`` -> YAML-parsed values; commas inside brackets or braces do not split."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [yaml.safe_load(p) for p in parts if p.strip()]


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    grid = []
    for item in items:
        if "=" not in item:
            raise MixframeError(f"--grid {item!r}: write KEY=V1,V2,..., for example regularizers.1.weight=0,0.1,10")
        key, values = item.split("=", 1)
        parsed = split_values(values)
        if not parsed:
            raise MixframeError(f"--grid {key}: no values given")
        grid.append((key.strip(), parsed))
    return grid


def point_label(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items()) or "recipe"


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def mean_spread(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else 0.0)


@command("sweep")
def cmd_sweep(args: argparse.Namespace) -> int:
    from mixframe.commands import train_new_run

    grid = parse_grid(args.grid)
    if args.seeds < 1:
        raise MixframeError("--seeds must be at least 1")
    base = load_recipe(args.recipe, args.overrides)
    points = [dict(zip([k for k, _ in grid], combo)) for combo in itertools.product(*[v for _, v in grid])]
    runs: list[tuple[dict[str, Any], int, list[str]]] = []
    for point in points:  # check every point's recipe before training anything
        for i in range(args.seeds):
            overrides = [*args.overrides, *(f"{k}={_dump(v)}" for k, v in point.items()), f"seed={base.seed + i}"]
            load_recipe(args.recipe, overrides)
            runs.append((point, base.seed + i, overrides))
    sweep_dir = args.out / f"sweep-{args.recipe.stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    sweep_dir.mkdir(parents=True, exist_ok=False)
    write_json(sweep_dir / "sweep.json", {"recipe": str(args.recipe), "grid": grid, "seeds": args.seeds, "overrides": args.overrides, "runs": []})
    records = []
    for n, (point, seed, overrides) in enumerate(runs, 1):
        print(f"[{n}/{len(runs)}] {point_label(point)} seed={seed}")
        recipe = load_recipe(args.recipe, overrides)
        label = re.sub(r"[^A-Za-z0-9_.=-]+", "_", point_label(point))
        run_dir = train_new_run(recipe, args.recipe, overrides, sweep_dir / label, progress=not args.no_progress)
        metrics = evaluate_run(run_dir, args.metric)
        records.append({"point": point, "seed": seed, "run": str(run_dir), "metrics": metrics})
        write_json(sweep_dir / "sweep.json", {"recipe": str(args.recipe), "grid": grid, "seeds": args.seeds, "overrides": args.overrides, "runs": records})
    summary = summarise(records)
    (sweep_dir / "summary.md").write_text(summary_markdown(summary, args))
    print()
    print(format_table({label: {k: f"{m:.4g} ± {s:.2g}" for k, (m, s) in row.items()} for label, row in summary.items()}))
    _sweep_panels(records, sweep_dir)
    print(f"\nsweep folder: {sweep_dir} (summary.md, sweep.json)")
    return 0


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per grid point: metric -> (mean, standard deviation over seeds)."""
    by_point: dict[str, list[dict[str, float]]] = {}
    for rec in records:
        by_point.setdefault(point_label(rec["point"]), []).append(rec["metrics"])
    return {label: {k: mean_spread([m[k] for m in ms if k in m]) for k in dict.fromkeys(k for m in ms for k in m)}
            for label, ms in by_point.items()}


def summary_markdown(summary: dict[str, dict[str, tuple[float, float]]], args: argparse.Namespace) -> str:
    columns = list(dict.fromkeys(k for row in summary.values() for k in row))
    command_line = " ".join(["mixframe sweep", str(args.recipe), *(f"--grid {g}" for g in args.grid), f"--seeds {args.seeds}",
                             *(f"--set {s}" for s in args.overrides), *(f"--metric {m}" for m in args.metric)])
    lines = [f"Command: `{command_line}`", "", f"Mean ± standard deviation over {args.seeds} seed(s).", "",
             "| point | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, row in summary.items():
        lines.append(f"| {label} | " + " | ".join(f"{row[c][0]:.4g} ± {row[c][1]:.2g}" if c in row else "" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _sweep_panels(records: list[dict[str, Any]], sweep_dir: Path) -> None:
    """For 2-D data: one panel per grid point (its first seed) of decoded mixes over real points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixframe.pictures import draw_mix_scatter, random_mix_weights

    firsts: dict[str, dict[str, Any]] = {}
    for rec in records:
        firsts.setdefault(point_label(rec["point"]), rec)
    first = TrainedRun(next(iter(firsts.values()))["run"])
    if first.data.spec.is_image or first.data.spec.shape != (2,):
        return
    fig, axes = plt.subplots(1, len(firsts), figsize=(3.2 * len(firsts), 3.4), squeeze=False)
    for ax, (label, rec) in zip(axes[0], firsts.items()):
        run = TrainedRun(rec["run"])
        x, _ = run.split("test")
        perm, alpha = random_mix_weights(len(x))
        h = run.encode(x).cpu()
        mixes = run.decode(alpha * h + (1 - alpha) * h[perm])
        frac = rec["metrics"].get("on_manifold_fraction")
        draw_mix_scatter(ax, x, mixes, label + (f"\non spiral: {frac:.2f}" if frac is not None else ""))
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("decoded random mixes (orange) over real samples (blue)", fontsize=9)
    fig.tight_layout()
    fig.savefig(sweep_dir / "panels.png", dpi=120)
    plt.close(fig)
