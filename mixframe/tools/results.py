"""Results as data: a study's or a sweep's runs as a pandas DataFrame, and the comparison table made from it.

:func:`results` reads a study folder (study.json) or a sweep folder (sweep.json), or a folder holding
several of them: one row per run, with ``method``, ``phase`` (``tune``, ``table`` or ``sweep``),
``seed``, ``split`` (``val`` or ``test``), ``trial``, ``settings`` (the tuned or swept values),
``run`` (its folder), ``eval_seeds`` (evaluation seed -> the metrics computed again with it) and
``critic_probe_auc`` (each critic's last probe AUC, averaged; NaN without a critic) and one column per metric.

:func:`compare` turns the table runs (or a sweep's runs) into the comparison: per method the mean,
standard deviation and per-seed values; the evaluation noise (the SD over evaluation seeds of one
trained model, averaged over the runs) beside the SD over training seeds; and each method's difference
to the baseline paired by seed, with a t interval (the primary test), its p value, the p value
Holm-adjusted over the table's comparisons, and the percentile bootstrap interval as a second column.
The verdict says what the test shows: **shown** (adjusted p below 0.05; "better" or "worse" by the
metric's direction) or **not shown to differ** (which is not "no difference"). Reference rows (a
no-learning value or a real-against-real floor measured on the same evaluation set, when the metric
plugin names them) show their value only.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mixframe.errors import MixframeError, suggest

ALPHA = 0.05
LEVEL = 0.95


def direction_of(metric: str, plugins: Sequence[Any]) -> str | None:
    """``"max"`` or ``"min"`` for ``metric`` from the metric plugins' ``directions``, None when none says."""
    for plugin in plugins:
        if metric in getattr(plugin, "directions", {}):
            return plugin.directions[metric]
    return None


def reference_of(metric: str, plugins: Sequence[Any]) -> tuple[str, ...]:
    """The keys of ``metric``'s reference rows (no learning, a real-against-real floor), from the metric plugins'
    ``references`` (a key or a tuple of keys)."""
    for plugin in plugins:
        if metric in getattr(plugin, "references", {}):
            refs = plugin.references[metric]
            return (refs,) if isinstance(refs, str) else tuple(refs)
    return ()


def read_study(folder: str | Path) -> dict[str, Any]:
    """A study folder's study.json, or a MixframeError saying why ``folder`` is not one."""
    from mixframe.runs.folder import read_json

    folder = Path(folder)
    if not (folder / "study.json").is_file():
        what = "does not exist" if not folder.exists() else "is not a study folder (no study.json)"
        raise MixframeError(f"{folder} {what}; pass a folder made by 'mixframe study'")
    return read_json(folder / "study.json")


def critic_probe_auc(run: str | None) -> float:
    """The mean over a run's critics of each one's last probe AUC (real data against data-space blends; 0.5: blind),
    NaN for a run without critics."""
    from mixframe.runs.folder import RunFolder

    if not run or not Path(run).is_dir():
        return math.nan
    curves = RunFolder(Path(run)).epoch_curves()
    last = [points[-1][1] for key, points in curves.items() if key.endswith("/probe_auc") and points]
    return statistics.fmean(last) if last else math.nan


def _study_rows(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    record = read_study(folder)
    rows = []
    for run in record["runs"]:
        if run["status"] != "complete":
            continue
        rows.append({"method": run["method"], "phase": run["phase"], "seed": int(run["seed"]), "split": run["split"],
                     "trial": run.get("trial"), "settings": dict(run.get("settings") or {}), "run": run.get("run"),
                     "eval_seeds": {int(k): v for k, v in (run.get("eval_seeds") or {}).items()}, "source": str(folder),
                     "critic_probe_auc": critic_probe_auc(run.get("run")), **run["metrics"]})
    attrs = {"metric": record.get("metric"), "baseline": record.get("baseline"), "direction": record.get("direction"),
             "methods": list(record.get("methods", {}))}
    return rows, attrs


def _sweep_rows(folder: Path) -> list[dict[str, Any]]:
    from mixframe.runs.folder import RunFolder
    from mixframe.tools.sweep import finished, point_label, read_sweep, run_dir

    record = read_sweep(folder)
    stem = Path(record.get("recipe_path") or record["recipe"]).stem
    rows = []
    for rec in finished(record["runs"]):
        run = run_dir(folder, rec)
        metrics = dict(rec.get("metrics") or {})
        if run is not None and (run / RunFolder.EVALUATION).is_file():  # a later `mixframe evaluate` of the run wins
            metrics |= json.loads((run / RunFolder.EVALUATION).read_text()).get("metrics", {})
        label = stem if not rec["point"] else f"{stem}: {point_label(rec['point'])}"
        rows.append({"method": label, "phase": "sweep", "seed": int(rec["seed"]), "split": "test", "trial": None,
                     "settings": dict(rec["point"]), "run": str(run) if run else None, "eval_seeds": {}, "source": str(folder),
                     "critic_probe_auc": critic_probe_auc(str(run) if run else None), **metrics})
    return rows


def results(path: str | Path) -> Any:
    """A study folder, a sweep folder, or a folder holding several, as a pandas DataFrame with one row per finished run.

    ``frame.attrs`` holds the study's ``metric``, ``baseline`` and ``direction`` (for :func:`compare`'s defaults).
    """
    import pandas as pd

    folder = Path(path)
    if not folder.is_dir():
        raise MixframeError(f"{folder} does not exist; pass a study folder (mixframe study) or a sweep folder (mixframe sweep)")
    rows: list[dict[str, Any]] = []
    attrs: dict[str, Any] = {}
    if (folder / "study.json").is_file():
        rows, attrs = _study_rows(folder)
    elif (folder / "sweep.json").is_file():
        rows = _sweep_rows(folder)
    else:
        found = sorted(folder.glob("**/study.json")) + sorted(folder.glob("**/sweep.json"))
        if not found:
            raise MixframeError(f"{folder} holds no study (study.json) or sweep (sweep.json); pass a folder made by mixframe study or sweep")
        for file in found:
            if file.name == "study.json":
                more, attrs = _study_rows(file.parent)
                rows += more
            else:
                rows += _sweep_rows(file.parent)
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(["method", "phase", "seed", "split", "trial", "settings", "run",
                                                           "eval_seeds", "source", *(k for r in rows for k in r)])))
    frame["trial"] = frame["trial"].astype("Int64")  # a tuning trial's number; none for table and sweep runs
    frame.attrs.update(attrs)
    return frame


IDENTITY = ("method", "phase", "seed", "split", "trial", "settings", "run", "eval_seeds", "source", "critic_probe_auc")
"""The columns of :func:`results` that say which run a row is, rather than what it measured."""


def metric_column(frame: Any, metric: str | None) -> Any:
    """``frame`` (from :func:`results`) cut to the columns that say which run each row is and ``metric``'s column:
    how a reader follows a running study trial by trial. ``metric=None`` returns ``frame`` unchanged."""
    if metric is None:
        return frame
    if metric not in frame.columns:
        have = [c for c in frame.columns if c not in IDENTITY]
        raise MixframeError(f"no run measured {metric!r}{suggest(metric, have)} (the runs have: {', '.join(have)})")
    return frame[[c for c in IDENTITY if c in frame.columns] + [metric]]


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` (NaN left out and returned as NaN): controls the chance of any
    false "shown" over the table's comparisons."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def paired_t(diffs: list[float], level: float = LEVEL) -> tuple[float, float, float]:
    """The t interval of the mean paired difference and the two-sided p value of a zero mean (NaN under two pairs)."""
    from scipy import stats

    n = len(diffs)
    if n < 2:
        return math.nan, math.nan, math.nan
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    if sd == 0:
        return mean, mean, (1.0 if mean == 0 else 0.0)
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    p = float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return mean - half, mean + half, p


def _direction(metric: str, frame: Any) -> str | None:
    if frame.attrs.get("direction") and frame.attrs.get("metric") == metric:
        return frame.attrs["direction"]
    from mixframe.kernel.registry import get_registry

    plugins = [get_registry().get("metric", name).implementation for name in get_registry().names("metric")]
    return direction_of(metric, plugins)


def _reference(metric: str) -> tuple[str, ...]:
    from mixframe.kernel.registry import get_registry

    return reference_of(metric, [get_registry().get("metric", name).implementation for name in get_registry().names("metric")])


def compare(frame_or_path: Any, metric: str | None = None, baseline: str | None = None) -> Any:
    """The comparison table (a DataFrame, one row per method, reference rows first) of ``metric`` (default: the
    study's) against ``baseline`` (default: the study's), paired by seed; from a study's table runs, or every
    run of a sweep. Columns: method, role, seeds, mean, sd, per_seed, eval_sd, diff, t_low, t_high, p, p_holm,
    boot_low, boot_high, verdict."""
    import numpy as np
    import pandas as pd

    from mixframe.tools.stats import bootstrap_interval

    frame = frame_or_path if isinstance(frame_or_path, pd.DataFrame) else results(frame_or_path)
    metric = metric or frame.attrs.get("metric")
    if not metric:
        raise MixframeError("name the metric to compare (metric=KEY, --metric KEY): this is not a study with a headline metric")
    rows = frame[frame["phase"] == "table"] if (frame["phase"] == "table").any() else frame[frame["phase"] != "tune"]
    if rows.empty:
        raise MixframeError("no finished table runs to compare (a study still tuning? mixframe study --resume finishes it)")
    if metric not in rows.columns:
        measured = [c for c in rows.columns if c not in ("method", "phase", "seed", "split", "trial", "settings", "run", "eval_seeds", "source",
                                                          "critic_probe_auc")]
        raise MixframeError(f"no run measured {metric!r}; measured: {', '.join(measured)}")
    methods = list(dict.fromkeys(rows["method"]))
    baseline = baseline or frame.attrs.get("baseline")
    if baseline is not None and baseline not in methods:
        raise MixframeError(f"baseline {baseline!r} is not a method of these runs ({', '.join(methods)})")
    direction = _direction(metric, frame)
    by_method = {m: {int(r["seed"]): float(r[metric]) for _, r in rows[rows["method"] == m].iterrows() if pd.notna(r[metric])}
                 for m in methods}
    methods = [m for m in methods if by_method[m]]  # a method that does not measure it (no mixer for an own-mix key) has no row
    unmeasured = baseline if baseline is not None and baseline not in methods else None
    baseline = None if unmeasured else baseline
    base = by_method.get(baseline, {}) if baseline else {}
    out: list[dict[str, Any]] = []
    for ref_key in _reference(metric):
        values = sorted({float(v) for v in rows[ref_key] if pd.notna(v)}) if ref_key in rows.columns else []
        if len(values) == 1:  # identical in every run: measured on the same evaluation set, by no trained model
            out.append({"method": f"{ref_key} (reference)", "role": "reference", "seeds": 0, "mean": values[0]})
    compared: list[int] = []
    for m in methods:
        per_seed = by_method[m]
        seeds = sorted(per_seed)
        evals = []
        for _, r in rows[rows["method"] == m].iterrows():
            again = [float(v[metric]) for v in (r["eval_seeds"] or {}).values() if metric in v]
            if again and pd.notna(r[metric]):
                evals.append(statistics.stdev([float(r[metric]), *again]))
        row: dict[str, Any] = {"method": m, "role": "baseline" if m == baseline else "method", "seeds": len(seeds),
                               "mean": statistics.fmean(per_seed.values()) if per_seed else math.nan,
                               "sd": statistics.stdev(per_seed.values()) if len(per_seed) > 1 else math.nan,
                               "per_seed": " ".join(f"{per_seed[s]:.4g}" for s in seeds),
                               "eval_sd": statistics.fmean(evals) if evals else math.nan}
        if baseline and m != baseline:
            pairs = [s for s in seeds if s in base]
            diffs = [per_seed[s] - base[s] for s in pairs]
            low, high, p = paired_t(diffs)
            blow, bhigh = bootstrap_interval(np.asarray(diffs)) if len(diffs) > 1 else (math.nan, math.nan)
            row.update(pairs=len(pairs), diff=statistics.fmean(diffs) if diffs else math.nan, t_low=low, t_high=high, p=p,
                       boot_low=blow, boot_high=bhigh)
            compared.append(len(out))
        out.append(row)
    for i, adjusted in zip(compared, holm([out[i]["p"] for i in compared])):
        out[i]["p_holm"] = adjusted
        out[i]["verdict"] = _verdict(out[i], direction)
    table = pd.DataFrame(out, columns=["method", "role", "seeds", "mean", "sd", "per_seed", "eval_sd", "pairs", "diff", "t_low", "t_high",
                                       "p", "p_holm", "boot_low", "boot_high", "verdict"])
    table.attrs.update(metric=metric, baseline=baseline, direction=direction, unmeasured_baseline=unmeasured)
    return table


def _verdict(row: dict[str, Any], direction: str | None) -> str:
    if row.get("pairs", 0) < 2 or not math.isfinite(row.get("p_holm", math.nan)):
        return "too few pairs"
    if row["p_holm"] >= ALPHA:
        return "not shown to differ"
    higher = row["diff"] > 0
    if direction is None:
        return f"shown {'higher' if higher else 'lower'}"
    return f"shown {'better' if higher == (direction == 'max') else 'worse'}"


def _cell(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def comparison_cells(table: Any) -> tuple[list[str], list[list[str]], str]:
    """A comparison table (from :func:`compare`) as text: the header, one row of cells per table row, and the note that
    names the test; what :func:`markdown` and the HTML report (``mixframe report STUDY``) both show."""
    metric, baseline = table.attrs.get("metric"), table.attrs.get("baseline")
    better = {"max": "higher is better", "min": "lower is better"}.get(table.attrs.get("direction") or "", "")
    head = ["method", "seeds", f"{metric} mean ± SD", "per seed", "eval SD", (f"minus {baseline} [95% t CI]" if baseline else "difference"), "p", "p (Holm)",
            "bootstrap 95%", "verdict"]
    rows = []
    for _, r in table.iterrows():
        if r["role"] == "reference":
            rows.append([str(r["method"]), "-", _cell(r["mean"]), *[""] * 7])
            continue
        mean = f"{_cell(r['mean'])} ± {_cell(r['sd'], 2)}" if math.isfinite(r["sd"]) else _cell(r["mean"])
        diff = "(baseline)" if r["role"] == "baseline" else (f"{r['diff']:+.4g} [{r['t_low']:+.4g}, {r['t_high']:+.4g}]"
                                                            if math.isfinite(r["t_low"]) else _cell(r["diff"]))
        boot = f"[{r['boot_low']:+.4g}, {r['boot_high']:+.4g}]" if r["role"] != "baseline" and math.isfinite(r["boot_low"]) else ""
        rows.append([str(r["method"]), str(r["seeds"]), mean, str(r["per_seed"]), _cell(r["eval_sd"], 2), diff,
                     _cell(r["p"], 3), _cell(r["p_holm"], 3), boot, _cell(r["verdict"])])
    tested = (f"Differences are paired by seed; p from a paired t test, Holm-adjusted over the {int((table['role'] == 'method').sum())} "
              f"comparison(s) with {baseline}; \"shown\" needs an adjusted p below {ALPHA}." if baseline else
              (f"The baseline {table.attrs['unmeasured_baseline']} does not measure {metric}, so nothing is compared."
               if table.attrs.get("unmeasured_baseline") else "No baseline among these runs, so nothing is compared."))
    note = (f"{metric}: {better}. {tested} "
            "eval SD: the SD over evaluation seeds of one trained model (mean over runs), beside the SD over training seeds.")
    return head, rows, note


def markdown(table: Any) -> str:
    """A comparison table (from :func:`compare`) as markdown, with the test named in the header."""
    head, rows, note = comparison_cells(table)
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + note
