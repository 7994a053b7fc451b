"""Sweeps: a grid of recipe values, several seeds each, trained one after the other and tabulated."""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mixframe.errors import MixframeError
from mixframe.registry import get_registry


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
    from mixframe.files import UserFileError, parse_user_yaml

    try:
        return [parse_user_yaml(p, source="--grid", what="sweep value") for p in parts if p.strip()]
    except UserFileError as err:
        raise MixframeError(f"--grid value in {text!r}: {'; '.join(problem for _, problem in err.problems)}") from None


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


def sweep(recipe: str | Path, grid: Sequence[str] = (), *, seeds: int = 1, metrics: Sequence[str] = (), overrides: Sequence[str] = (),
          out: str | Path = "runs", progress: bool = True) -> Path:
    """Train every point of ``grid`` (``KEY=V1,V2,...`` items; their product) with ``seeds`` seeds each, evaluate
    each run, and write the sweep folder (sweep.json, summary.md, panels.png for 2-D data); returns its path."""
    from mixframe.api import train
    from mixframe.evaluation import evaluate, format_table
    from mixframe.recipe import load_recipe
    from mixframe.runs import write_json

    recipe = Path(recipe)
    parsed = parse_grid(grid)
    if seeds < 1:
        raise MixframeError("--seeds must be at least 1")
    base = load_recipe(recipe, list(overrides))
    points = [dict(zip([k for k, _ in parsed], combo)) for combo in itertools.product(*[v for _, v in parsed])]
    runs: list[tuple[dict[str, Any], int, list[str]]] = []
    for point in points:  # check every point's recipe before training anything
        for i in range(seeds):
            point_overrides = [*overrides, *(f"{k}={_dump(v)}" for k, v in point.items()), f"seed={base.seed + i}"]
            load_recipe(recipe, point_overrides)
            runs.append((point, base.seed + i, point_overrides))
    sweep_dir = Path(out) / f"sweep-{recipe.stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    sweep_dir.mkdir(parents=True, exist_ok=False)
    record = {"recipe": str(recipe), "grid": parsed, "seeds": seeds, "overrides": list(overrides), "runs": []}
    write_json(sweep_dir / "sweep.json", record)
    records = []
    for n, (point, seed, point_overrides) in enumerate(runs, 1):
        print(f"[{n}/{len(runs)}] {point_label(point)} seed={seed}")
        label = re.sub(r"[^A-Za-z0-9_.=-]+", "_", point_label(point))
        run = train(recipe, point_overrides, out=sweep_dir / label, progress=progress)
        records.append({"point": point, "seed": seed, "run": str(run.dir), "metrics": evaluate(run, metrics)})
        write_json(sweep_dir / "sweep.json", {**record, "runs": records})
    summary = summarise(records)
    command_line = " ".join(["mixframe sweep", str(recipe), *(f"--grid {g}" for g in grid), f"--seeds {seeds}",
                             *(f"--set {s}" for s in overrides), *(f"--metric {m}" for m in metrics)])
    (sweep_dir / "summary.md").write_text(summary_markdown(summary, command_line, seeds))
    print()
    print(format_table({label: {k: f"{m:.4g} ± {s:.2g}" for k, (m, s) in row.items()} for label, row in summary.items()}))
    _sweep_panels(records, sweep_dir)
    return sweep_dir


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per grid point: metric -> (mean, standard deviation over seeds)."""
    by_point: dict[str, list[dict[str, float]]] = {}
    for rec in records:
        by_point.setdefault(point_label(rec["point"]), []).append(rec["metrics"])
    return {label: {k: mean_spread([m[k] for m in ms if k in m]) for k in dict.fromkeys(k for m in ms for k in m)}
            for label, ms in by_point.items()}


def summary_markdown(summary: dict[str, dict[str, tuple[float, float]]], command_line: str, seeds: int) -> str:
    columns = list(dict.fromkeys(k for row in summary.values() for k in row))
    lines = [f"Command: `{command_line}`", "", f"Mean ± standard deviation over {seeds} seed(s).", "",
             "| point | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, row in summary.items():
        lines.append(f"| {label} | " + " | ".join(f"{row[c][0]:.4g} ± {row[c][1]:.2g}" if c in row else "" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _sweep_panels(records: list[dict[str, Any]], sweep_dir: Path) -> None:
    """For 2-D data: one panel per grid point (its first seed) of decoded mixes over real points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixframe.api import load_run
    from mixframe.pictures import draw_mix_scatter, random_mix_weights

    firsts: dict[str, dict[str, Any]] = {}
    for rec in records:
        firsts.setdefault(point_label(rec["point"]), rec)
    first = load_run(next(iter(firsts.values()))["run"])
    if first.spec.shape != (2,):
        return
    headlines = [h for m in first.recipe.metrics if (h := getattr(get_registry().get("metric", m.name).implementation, "headline", None))]
    fig, axes = plt.subplots(1, len(firsts), figsize=(3.2 * len(firsts), 3.4), squeeze=False)
    for ax, (label, rec) in zip(axes[0], firsts.items()):
        run = load_run(rec["run"])
        x, _ = run.split("test")
        perm, alpha = random_mix_weights(len(x))
        h = run.encode(x).cpu()
        mixes = run.decode(alpha * h + (1 - alpha) * h[perm])
        numbers = [f"{k}: {rec['metrics'][k]:.2f}" for k in headlines if k in rec["metrics"]]
        draw_mix_scatter(ax, x, mixes, "\n".join([label, *numbers]))
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("decoded random mixes (orange) over real samples (blue)", fontsize=9)
    fig.tight_layout()
    fig.savefig(sweep_dir / "panels.png", dpi=120)
    plt.close(fig)
