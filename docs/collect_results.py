"""Print the markdown tables of docs/results.md from sweep folders: mean ± std over seeds, per-seed values,
and each method's paired difference to a baseline (and to a no-learning reference) with a bootstrap 95%
interval (mixframe.tools.stats.paired_difference; a difference is called real only when the interval excludes 0).

    python docs/collect_results.py RUNS_ROOT --metric on_manifold_fraction --baseline spiral_ae \\
        --reference data_mix_on_manifold_fraction "data-space averaging" --columns mix_distance_mean rec_mse

Every ``sweep-*`` folder under the RUNS_ROOT folders (one or more; a sweep folder itself also counts) gives one row per grid point (``RECIPE_STEM`` or ``RECIPE_STEM: POINT``,
followed by the sweep's ``--set`` values other than the seed, in parentheses). Numbers come from the sweep's
record, a later ``mixframe evaluate`` and ``mixframe attribute-accuracy``. ``--baseline`` names the row the
others are compared with, seed by seed.
``--reference KEY LABEL`` adds a row for a metric key that does not depend on training (identical in
every run, since metrics draw their evaluation sets from a fixed seed) and compares every row with it.
``--settings KEY...`` shows each row's resolved recipe values (e.g. ``train.lr``), read from its runs' recipe.yaml.
Each critic's last probe AUC (how well it tells held-out real data from data-space blends; 0.5 =
blind; see the stall_watch callback) is shown, and runs that ended with a blind critic (AUC at or
below 0.6) are flagged in the notes column, not dropped. The runs' thread counts, commits and torch versions are
printed under the table: numbers depend on them.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

from mixframe.kernel.files import load_user_yaml
from mixframe.runs.folder import RunFolder
from mixframe.tools.stats import paired_difference
from mixframe.tools.sweep import finished, point_label, run_dir

BLIND_AUC = 0.6


def rows_from(roots: list[Path]) -> dict[str, dict[int, dict[str, Any]]]:
    """Row label -> seed -> {"metrics": ..., "run": path}, from every sweep folder under the ``roots`` (a later sweep's
    run of the same row and seed replaces an earlier one)."""
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    sweeps = [[root / "sweep.json"] if (root / "sweep.json").is_file() else sorted(root.glob("**/sweep-*/sweep.json")) for root in roots]
    for path in [path for paths in sweeps for path in paths]:
        data = json.loads(path.read_text())
        stem = Path(data["recipe"]).stem
        for rec in finished(data["runs"]):  # a failed or unfinished run has no numbers (its sweep's summary.md names it)
            run = run_dir(path.parent, rec)
            if run is None:
                continue
            evaluation = run / RunFolder.EVALUATION  # a later `mixframe evaluate` of the run wins over the sweep's record
            metrics = {**rec["metrics"], **(json.loads(evaluation.read_text()).get("metrics", {}) if evaluation.is_file() else {})}
            measured = run / "attribute_accuracy.json"  # `mixframe attribute-accuracy` (supervised mixes)
            if measured.is_file():
                metrics |= {k: v for k, v in json.loads(measured.read_text()).items() if isinstance(v, float)}
            label = stem if not rec["point"] else f"{stem}: {point_label(rec['point'])}"
            if settings := [o for o in data.get("overrides", []) if not o.startswith("seed=")]:
                label += f" ({', '.join(settings)})"
            rows.setdefault(label, {})[int(rec["seed"])] = {**rec, "run": str(run), "metrics": metrics}
    return rows


def last_probe_auc(run_dir: str) -> list[float]:
    """Each critic's last probe AUC (real vs data-space blends) in a run, from its metrics.csv."""
    curves = RunFolder(Path(run_dir)).epoch_curves()
    return [points[-1][1] for key, points in sorted(curves.items()) if key.endswith("/probe_auc") and points]


def blind_critics(run_dir: str) -> list[str]:
    """``NAME (AUC x)`` for each critic whose last probe AUC is at or below BLIND_AUC."""
    curves = RunFolder(Path(run_dir)).epoch_curves()
    return [f"{key.split('/')[2]} (AUC {points[-1][1]:.2f})" for key, points in curves.items()
            if key.endswith("/probe_auc") and points and points[-1][1] <= BLIND_AUC]


def recipe_setting(run_dir: str, key: str) -> str:
    """The value of the dotted ``key`` (``train.lr``, ``regularizers.0.weight``) in a run's resolved recipe.yaml."""
    value: Any = load_user_yaml(Path(run_dir) / RunFolder.RECIPE, what="run recipe")
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) and part.isdigit() and int(part) < len(value) else \
            value.get(part) if isinstance(value, dict) else None
    return f"{value:g}" if isinstance(value, float) else str(value)


def environment_line(records: list[dict[str, Any]]) -> str:
    threads, commits, torches = set(), set(), set()
    for rec in records:
        path = Path(rec["run"]) / RunFolder.ENVIRONMENT
        env = json.loads(path.read_text()) if path.is_file() else {}
        threads.add(env.get("threads"))
        commits.add(env.get("commit"))
        torches.add((env.get("packages") or {}).get("torch"))
    fmt = lambda values: ", ".join(sorted(str(v) for v in values))  # noqa: E731
    return f"threads: {fmt(threads)}; commit: {fmt(commits)}; torch: {fmt(torches)}"


def mean_std(values: list[float], fixed: bool = True) -> str:
    """``mean ± std`` (3 decimals, or 3 significant digits when ``fixed`` is False, for small values such as an MSE)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    mean, std = statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else 0.0)
    return f"{mean:.3f} ± {std:.3f}" if fixed else f"{mean:.3g} ± {std:.2g}"


def table(roots: list[Path], metric: str, baseline: str | None, reference: tuple[str, str] | None, columns: list[str],
          settings: list[str] = ()) -> str:  # type: ignore[assignment]
    rows = rows_from(roots)
    if not rows:
        raise SystemExit(f"no finished runs in any sweep folder under {', '.join(map(str, roots))}")
    if baseline is not None and baseline not in rows:
        raise SystemExit(f"--baseline {baseline!r} is not a row; rows: {', '.join(rows)}")
    base_values = {s: r["metrics"][metric] for s, r in rows[baseline].items() if metric in r["metrics"]} if baseline else None
    ref_value = None
    if reference is not None:
        found = {r["metrics"][reference[0]] for seeds in rows.values() for r in seeds.values() if reference[0] in r["metrics"]}
        if len(found) > 1:
            raise SystemExit(f"--reference {reference[0]} differs between runs ({sorted(found)}): it is not a fixed reference")
        ref_value = found.pop() if found else None
    head = ["row", *settings, "seeds", metric, "per seed"]
    if baseline:
        head.append(f"minus {baseline} [95% CI]")
    if ref_value is not None:
        head.append(f"minus {reference[1]} [95% CI]")  # type: ignore[index]
    head += [*columns, "critic probe AUC (last)", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    if ref_value is not None:
        cells = [f"{reference[1]} (no learning)", *["-"] * len(settings), "-", f"{ref_value:.3f}", "-"] + ["-"] * (bool(baseline) + 1)  # type: ignore[index]
        lines.append("| " + " | ".join(cells + [""] * (len(columns) + 1) + ["no learning, on the same evaluation set"]) + " |")
    for label, seeds in rows.items():
        values = {s: r["metrics"][metric] for s, r in sorted(seeds.items()) if metric in r["metrics"]}
        shown = [", ".join(sorted({recipe_setting(r["run"], key) for r in seeds.values()})) for key in settings]
        cells = [label, *shown, str(len(seeds)), mean_std(list(values.values())), " ".join(f"{v:.3f}" for v in values.values())]
        if baseline:
            cells.append("(baseline)" if label == baseline else paired_difference(values, base_values).format())  # type: ignore[arg-type]
        if ref_value is not None:
            cells.append(paired_difference(values, ref_value).format())
        cells += [mean_std([r["metrics"][c] for r in seeds.values() if c in r["metrics"]], fixed=False) for c in columns]
        cells.append(mean_std([a for r in seeds.values() for a in last_probe_auc(r["run"])]))
        notes = [f"seed {s}: blind critic {', '.join(b)}" for s, r in sorted(seeds.items()) if (b := blind_critics(r["run"]))]
        cells.append("; ".join(notes))
        lines.append("| " + " | ".join(cells) + " |")
    records = [r for seeds in rows.values() for r in seeds.values()]
    return "\n".join(lines) + "\n\nRuns: " + environment_line(records) + "\n"


def panels(roots: list[Path], metric: str, out: Path, seed: int = 0) -> None:
    """For 2-D data: one panel per row, decoded random mixes (orange) over real test points (blue) of its run with ``seed``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixframe.runs.api import load_run
    from mixframe.tools.pictures import draw_mix_scatter, random_mix_weights

    chosen = {label: seeds[seed] for label, seeds in rows_from(roots).items() if seed in seeds}
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.0 * len(chosen), 3.3), squeeze=False)
    for ax, (label, rec) in zip(axes[0], chosen.items()):
        run = load_run(rec["run"])
        x, _ = run.split("test")
        perm, alpha = random_mix_weights(len(x))
        h = run.encode(x).cpu()
        draw_mix_scatter(ax, x, run.decode(alpha * h + (1 - alpha) * h[perm]), f"{label}\n{metric}: {rec['metrics'][metric]:.3f}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"decoded random mixes (orange) over real test points (blue), seed {seed}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", type=Path, nargs="+", metavar="ROOT", help="sweep folders, or folders holding them (searched recursively)")
    parser.add_argument("--metric", required=True, help="the metric compared (a key of evaluation.json)")
    parser.add_argument("--baseline", help="row label of the baseline, e.g. spiral_ae")
    parser.add_argument("--reference", nargs=2, metavar=("KEY", "LABEL"), help="a no-learning reference metric key and its row label")
    parser.add_argument("--columns", nargs="*", default=[], help="further metrics shown as mean ± std")
    parser.add_argument("--settings", nargs="*", default=[], help="recipe values shown per row, e.g. train.lr")
    parser.add_argument("--panels", type=Path, metavar="PNG", help="2-D data: also draw each row's seed-0 run's decoded mixes into PNG")
    args = parser.parse_args(argv)
    if args.panels:
        panels(args.roots, args.metric, args.panels)
    print(table(args.roots, args.metric, args.baseline, tuple(args.reference) if args.reference else None, args.columns, args.settings), end="")


if __name__ == "__main__":
    main()
