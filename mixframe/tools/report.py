"""Reports: one self-contained HTML page comparing finished runs (``mixframe report``): run folders, or the runs of
one study or sweep folder, named by method and seed or by grid point and seed.

The page needs nothing but itself: pictures are embedded as base64 PNG data URIs, the style sheet is
inline, and there is no script. Everything read from a run folder is escaped, so a run name or a
recipe description cannot inject markup. The tables and the per-run sections read the run folders'
files only; the interpolation pictures (one per dataset, every run in it) load the models.

Laid out for a laptop screen (1280 px wide, no horizontal scrolling of the page): one row per run
in the overview; the metrics as rows, grouped by the metric plugin that computed them, each with its
one-line meaning (``Metric.meanings``), and one narrow column per run (``#1``, ``#2``: the overview's
numbers). A table wider than the screen scrolls inside its own box, its first column held in place.
A run without evaluation.json is named with the command that computes its metrics. In each metric's row the best
value is marked, by the direction its metric plugin gives (``Metric.directions``).

A study folder's page adds the comparison (:func:`mixframe.tools.results.compare`) and the tuning trials; a sweep
folder's names the runs that did not finish. :func:`write_report` writes a page atomically.
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mixframe.errors import MixframeError
from mixframe.kernel.interfaces import VALIDATION_LOSS
from mixframe.runs.folder import RunFolder

SEVERE = "warning:"  # a warning that needs acting on starts so; "note:" is information (TrainerView.warn)

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; vertical-align: top; }
th { background: #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.desc { min-width: 12em; max-width: 22em; }
td.seeds { text-align: right; font-variant-numeric: tabular-nums; min-width: 8em; max-width: 14em; }
td.name { min-width: 12em; max-width: 20em; overflow-wrap: break-word; }
@media (max-width: 1000px) {  /* a narrow window: each run a card of labelled lines, so no column is squeezed */
  table.runs, table.runs tbody, table.runs tr, table.runs td { display: block; }
  table.runs tr:first-child { display: none; }
  table.runs tr { display: grid; grid-template-columns: 1fr 1fr; border: 1px solid #bbb; margin-bottom: 0.8em; }
  table.runs td.name, table.runs td.desc { grid-column: 1 / -1; }
  table.runs td { border: none; border-bottom: 1px solid #eee; max-width: none; text-align: left; white-space: normal; }
  table.runs td::before { content: attr(data-label) ": "; font-weight: bold; color: #555; }
  table.runs .small { display: inline; margin-left: 0.5em; }
}
.small { display: block; font-size: 0.8em; color: #555; }
.scroll { max-width: 100%; overflow-x: auto; margin-bottom: 1.5em; }
table.metrics th.value, table.metrics td.value { position: sticky; left: 0; background: #fff; min-width: 14em; max-width: 30em; }
table.metrics th.value { background: #eee; }
table.metrics tr.group th { background: #dde6f0; }
.meaning { display: block; font-size: 0.85em; color: #555; }
.missing { color: #888; }
td.best { background: #dcf2dc; font-weight: bold; }
th .runname { font-weight: normal; max-width: 9em; overflow-wrap: anywhere; }
tr.reference td { color: #555; font-style: italic; }
.note { background: #eef4fb; border-left: 4px solid #4a7ab5; padding: 6px 10px; margin: 0.5em 0 1em 0; }
code { background: #f2f2f2; padding: 0 3px; overflow-wrap: anywhere; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 0.85em; }
section.run { border-top: 2px solid #888; margin-top: 2em; }
.warning { background: #fff3b0; border-left: 4px solid #e0a800; padding: 4px 8px; margin: 2px 0; font-family: monospace;
           overflow-wrap: anywhere; }
.warning.severe { background: #ffd6d6; border-left-color: #c00; }
.status-complete { color: #070; } .status-other { color: #b00; font-weight: bold; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }
"""


# ---------------------------------------------------------------------------------------------
# Reading a run folder (files only)


class RunInfo:
    """What the report shows of one run, read from its folder's files (no model is loaded)."""

    def __init__(self, run_dir: Path, label: str | None = None) -> None:
        self.label = label  # the run's name in a study or sweep ("amr seed 0"); None: its folder's name
        self.folder = RunFolder.open(run_dir)
        self.dir = self.folder.path
        recipe_path = self.folder.file(RunFolder.RECIPE)
        self.recipe_text = recipe_path.read_text(errors="replace")
        from mixframe.kernel.files import load_user_yaml

        try:
            recipe = load_user_yaml(recipe_path, what="the run's recipe")
        except MixframeError as err:
            raise MixframeError(f"{recipe_path} cannot be read ({err}); the run folder is damaged") from None
        if not isinstance(recipe, dict):
            raise MixframeError(f"{recipe_path} does not hold a recipe (a mapping); the run folder is damaged")
        self.recipe: dict[str, Any] = recipe
        self.run = self._json(self.folder.info)
        self.evaluation = self._json(self.folder.evaluation)
        self.warnings = self.folder.warnings()

    @staticmethod
    def _json(read: Any) -> dict[str, Any]:
        try:
            return read()
        except MixframeError as err:
            return {"status": f"unreadable ({err})"}

    @property
    def name(self) -> str:
        return self.label or self.dir.name

    @property
    def description(self) -> str:
        return str(self.recipe.get("description") or "")

    @property
    def data(self) -> Any:
        return self.recipe.get("data")

    @property
    def mixer(self) -> str:
        mixer = self.recipe.get("mixer")
        return _kind(mixer) if mixer else "none"

    @property
    def regularizers(self) -> str:
        return ", ".join(_kind(r) for r in self.recipe.get("regularizers") or []) or "none"

    @property
    def status(self) -> str:
        return str(self.run.get("status", "unknown (no run.json)"))

    @property
    def epochs(self) -> str:
        planned = (self.recipe.get("train") or {}).get("epochs")
        done = self.run.get("epoch")
        if done is None:
            return "" if planned is None else f"? of {planned}"
        return f"{done}" if planned in (None, done) else f"{done} of {planned}"

    @property
    def reconstruction(self) -> float | None:
        """The last logged reconstruction loss: run.json's final summary, else metrics.csv."""
        final = self.run.get("final") or {}
        for key in ("epoch/ae/reconstruction", "ae/reconstruction"):  # the second: runs recorded before names were one scheme
            if isinstance(final, dict) and key in final:
                return _number(final[key])
        curve = self.folder.epoch_curves().get("epoch/ae/reconstruction")
        return curve[-1][1] if curve else None

    @property
    def validation(self) -> tuple[float, float, int] | None:
        """(last, best, best epoch) of the validation loss (``trainer.log_validation``), or None."""
        curve = self.folder.epoch_curves().get(f"epoch/{VALIDATION_LOSS}")
        if not curve:
            return None
        best_epoch, best = min(curve, key=lambda point: point[1])
        return curve[-1][1], best, best_epoch

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = self.evaluation.get("metrics") if isinstance(self.evaluation, dict) else None
        return metrics if isinstance(metrics, dict) else {}

    @property
    def evaluated(self) -> bool:
        return bool(self.metrics)

    def by_metric(self) -> dict[str, dict[str, Any]]:
        """Values by the metric plugin that computed them; values of unknown origin under "" (older files)."""
        groups = self.evaluation.get("by_metric") if isinstance(self.evaluation, dict) else None
        out = {str(k): dict(v) for k, v in groups.items() if isinstance(v, dict)} if isinstance(groups, dict) else {}
        known = {key for values in out.values() for key in values}
        rest = {k: v for k, v in self.metrics.items() if k not in known}
        if rest:
            out[""] = rest
        return out

    def pictures(self) -> list[Path]:
        return self.folder.pictures()


def _kind(section: Any) -> str:
    return str(section.get("kind", "?")) if isinstance(section, dict) else str(section)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# HTML pieces


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def format_value(value: Any) -> str:
    """Numbers to at most 4 significant digits (scientific when tiny or huge); missing -> blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(png: bytes, caption: str) -> str:
    return f'<figure><img alt="{esc(caption)}" src="{data_uri(png)}"><figcaption>{esc(caption)}</figcaption></figure>'


def comparison_table(runs: Sequence[RunInfo]) -> str:
    """The overview: one row per run, numbered as the metrics table's columns are."""
    heads = ["#", "run", "description", "status", "mixer", "regularizers", "epochs", "final reconstruction loss",
             "validation reconstruction loss", "metrics"]
    lines = ['<div class="scroll"><table class="runs">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr>"]
    for i, run in enumerate(runs, 1):
        val = run.validation
        val_text = (f'{esc(format_value(val[0]))}<span class="small">best {esc(format_value(val[1]))}, epoch {val[2]}</span>'
                    if val else "")
        evaluated = "yes" if run.evaluated else '<span class="missing">not evaluated</span>'
        cells = [str(i), f'<a href="#{_anchor(run)}">{breakable(run.name)}</a>', esc(run.description), esc(run.status), esc(run.mixer),
                 esc(run.regularizers), esc(run.epochs), esc(format_value(run.reconstruction)), val_text, evaluated]
        classes = ["", "name", "desc", "", "", "", "", "num", "num", ""]
        tds = [f'<td{cls(c)} data-label="{esc(h)}">{cell}</td>' for h, c, cell in zip(heads, classes, cells)]
        lines.append("<tr>" + "".join(tds) + "</tr>")
    lines.append("</table></div>")
    return "\n".join(lines)


def cls(name: str) -> str:
    return f' class="{name}"' if name else ""


def breakable(name: str) -> str:
    """``name`` escaped, with line-break opportunities after its - and _ (a narrow column breaks it there, not mid-word)."""
    return "".join(f"{esc(c)}<wbr>" if c in "-_" else esc(c) for c in name)


def metric_meanings(metrics: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each metric plugin's ``meanings`` (``Metric.meanings``) by metric name; {} for one that is not installed."""
    return _plugin_tables(metrics, "meanings")


def metric_directions(metrics: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each metric plugin's ``directions`` (``Metric.directions``: value -> "max" or "min") by metric name; {} for one
    that is not installed."""
    return _plugin_tables(metrics, "directions")


def _plugin_tables(metrics: Iterable[str], attribute: str) -> dict[str, dict[str, str]]:
    from mixframe.kernel.registry import get_registry

    registry = get_registry()
    out: dict[str, dict[str, str]] = {}
    for name in metrics:
        try:
            table = getattr(registry.get("metric", name).implementation, attribute, None)
        except MixframeError:
            table = None
        out[name] = dict(table) if isinstance(table, dict) else {}
    return out


def best_of(values: Sequence[Any], direction: str | None) -> set[int]:
    """The positions of the best of ``values`` (higher for ``"max"``, lower for ``"min"``), ties included; none without a
    direction, with fewer than two numbers, or when all are equal (then no run is better)."""
    numbers = {i: float(v) for i, v in enumerate(values)
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    if direction not in ("max", "min") or len(numbers) < 2 or len(set(numbers.values())) == 1:
        return set()
    best = (max if direction == "max" else min)(numbers.values())
    return {i for i, v in numbers.items() if v == best}


BETTER = {"max": "higher is better", "min": "lower is better"}


def meaning_of(key: str, meanings: dict[str, str]) -> str:
    """The meaning of the value ``key``: its own entry, or a family's: ``{n}`` stands for a number (``probe_acc_{n}``
    for probe_acc_10), ``{name}`` for a word (``mix_accuracy_{name}`` for mix_accuracy_large); "" if none."""
    if key in meanings:
        return meanings[key]
    for pattern, text in meanings.items():
        for hole, fits in (("{n}", str.isdigit), ("{name}", str.isidentifier)):
            if hole not in pattern:
                continue
            head, _, tail = pattern.partition(hole)
            middle = key[len(head):len(key) - len(tail)] if key.startswith(head) and key.endswith(tail) else ""
            if fits(middle) and hole not in tail:
                return text.replace(hole, middle)
    return ""


def evaluate_command(runs: Sequence[RunInfo]) -> str:
    """The command that evaluates these runs, ready to paste into a shell."""
    import shlex

    return "mixframe evaluate " + " ".join(shlex.quote(str(run.dir)) for run in runs)


def metrics_section(runs: Sequence[RunInfo], directions: dict[str, str] | None = None) -> str:
    """The metrics as rows (grouped by metric plugin, each with its meaning), one column per run, the best of each row
    marked (by the plugin's ``directions``, or ``directions``: value -> "max"/"min", for values no plugin ranks); or,
    when no run was evaluated, the command that evaluates them."""
    parts = ["<h2>metrics</h2>"]
    missing = [run for run in runs if not run.evaluated]
    if len(missing) == len(runs):
        parts.append(f'<p class="note">No run has been evaluated yet. <code>{esc(evaluate_command(runs))}</code> computes each recipe\'s '
                     "metrics into the run folder (evaluation.json); then write this report again.</p>")
        return "\n".join(parts)
    if missing:
        names = ", ".join(f"#{runs.index(run) + 1} {run.name}" for run in missing)
        parts.append(f'<p class="note">Not evaluated: {esc(names)}. Their metrics: <code>{esc(evaluate_command(missing))}</code>, '
                     "then write this report again.</p>")
    groups: dict[str, list[str]] = {}
    for run in runs:
        for metric, values in run.by_metric().items():
            keys = groups.setdefault(metric, [])
            keys += [key for key in values if key not in keys]
    meanings = metric_meanings(m for m in groups if m)
    ranks = metric_directions(m for m in groups if m)
    heads = "".join(f'<th title="{esc(run.name)}"><a href="#{_anchor(run)}">#{i}</a>'  # a study's or sweep's run: its name too
                    + (f'<span class="small runname">{esc(run.label)}</span>' if run.label else "") + "</th>"
                    for i, run in enumerate(runs, 1))
    lines = ['<div class="scroll"><table class="metrics">', f'<tr><th class="value">value (what it means)</th>{heads}</tr>']
    marked = False
    for metric, keys in groups.items():
        title = f"metric {metric}" if metric else "values of unrecorded origin"
        lines.append(f'<tr class="group"><th class="value">{esc(title)}</th><th colspan="{len(runs)}"></th></tr>')
        for key in keys:
            meaning = meaning_of(key, meanings.get(metric, {})) or "(its plugin gives no meaning)"
            row = [run.by_metric().get(metric, {}).get(key) if run.evaluated else None for run in runs]
            direction = ranks.get(metric, {}).get(key) or (directions or {}).get(key)
            best = best_of(row, direction)
            marked = marked or bool(best)
            cells = []
            for i, (run, value) in enumerate(zip(runs, row)):
                if not run.evaluated:
                    cells.append('<td class="num missing">&ndash;</td>')
                elif i in best:
                    cells.append(f'<td class="num best" title="the best of these runs ({BETTER[direction or "max"]})">'
                                 f"{esc(format_value(value))}&nbsp;&#9733;</td>")
                else:
                    cells.append(f'<td class="num">{esc(format_value(value))}</td>')
            lines.append(f'<tr><td class="value"><code>{esc(key)}</code><span class="meaning">{esc(meaning)}</span></td>{"".join(cells)}</tr>')
    lines.append("</table></div>")
    if marked:
        parts.append('<p class="small">&#9733; on green: the best value of its row, higher or lower as the metric plugin says is '
                     "better; a row whose plugin gives no direction is not marked.</p>")
    parts.append("\n".join(lines))
    return "\n".join(parts)


def _anchor(run: RunInfo) -> str:
    """The run's section id: its name made safe; a labelled run's also carries its folder's digest, since two grid points'
    labels (``a=1.5``, ``a=1_5``) may be made safe alike."""
    import hashlib

    safe = "run-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in run.name)
    return f"{safe}-{hashlib.sha1(str(run.dir).encode()).hexdigest()[:8]}" if run.label else safe


PICTURE_CAPTIONS = {
    RunFolder.LOSS_CURVES: f"{RunFolder.LOSS_CURVES}: the losses per epoch, training and validation reconstruction together; "
                           "dashed: the level of outputting the mean image, and each critic's blind guess",
    RunFolder.GRID: f"{RunFolder.GRID}: validation pairs at the end of training; each row the real x1 (orange frame), the decoded "
                    "interpolation from f(x1) to f(x2), the real x2 (orange frame)",
}


def run_section(run: RunInfo, index: int) -> str:
    status_class = "status-complete" if run.status == "complete" else "status-other"
    parts = [f'<section class="run" id="{_anchor(run)}">', f"<h2>{index}. {esc(run.name)}</h2>"]
    if run.label:
        parts.append(f'<p class="small">run folder: <code>{esc(run.dir)}</code></p>')
    if run.description:
        parts.append(f"<p>{esc(run.description)}</p>")
    parts.append(f'<p>status: <span class="{status_class}">{esc(run.status)}</span></p>')
    notes = [line for line in run.warnings if line.lower().startswith("note:")]
    warnings = [line for line in run.warnings if line not in notes]
    if warnings:
        parts.append(f"<h3>warnings ({len(warnings)})</h3>")
        for line in warnings:
            severe = " severe" if line.lower().startswith(SEVERE) else ""
            parts.append(f'<div class="warning{severe}">{esc(line)}</div>')
    if notes:  # what training noticed that needs no action (a fooled critic): apart from the warnings, not in their colours
        parts.append(f"<h3>notes ({len(notes)})</h3>")
        parts += [f'<div class="note">{esc(line.removeprefix("note:").strip())}</div>' for line in notes]
    pictures = run.pictures()
    if pictures:
        parts.append("<h3>pictures</h3>")
        parts += [figure(p.read_bytes(), PICTURE_CAPTIONS.get(p.name, p.name)) for p in pictures]
    parts.append("<h3>recipe (resolved)</h3>")
    parts.append(f"<pre>{esc(run.recipe_text)}</pre>")
    if run.run:
        parts.append("<details><summary>run.json</summary>")
        parts.append(f"<pre>{esc(json.dumps(run.run, indent=2, default=str))}</pre></details>")
    if run.evaluation:
        parts.append("<details><summary>evaluation.json</summary>")
        parts.append(f"<pre>{esc(json.dumps(run.evaluation, indent=2, default=str))}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def same_data_groups(runs: Sequence[RunInfo]) -> list[list[RunInfo]]:
    """Runs grouped by identical data sections, in the order first seen."""
    groups: list[tuple[Any, list[RunInfo]]] = []
    for run in runs:
        for data, members in groups:
            if data == run.data:
                members.append(run)
                break
        else:
            groups.append((run.data, [run]))
    return [members for _, members in groups]


def interpolation_section(runs: Sequence[RunInfo], pairs: int, steps: int) -> str:
    """A picture per group of runs that share a dataset (a run alone on its dataset gets its own); a note
    instead when a group cannot be drawn."""
    from mixframe.tools.interpolate import interpolation_png, load_runs, paper_figure_png

    parts = ["<h2>interpolations</h2>",
             "<p>The same test pairs for every run. For images, in the paper's layout (its Figures 7 to 11): each pair's "
             "two real images at the ends, then linear interpolation in pixel space, then one row per run.</p>"]
    for group in same_data_groups(runs):
        names = ", ".join(run.name for run in group)
        try:
            loaded = load_runs([run.dir for run in group])
            # a mixer that swaps whole feature maps (Mixer.interpolation == "bernoulli") is shown that way too
            modes = list(dict.fromkeys(["linear", *(run.mixer.interpolation for run in loaded if run.mixer is not None)]))
            draw = paper_figure_png if loaded[0].spec.is_image else interpolation_png
            labels = [run.name for run in group]  # a study's or sweep's runs by method or grid point, not by folder
            pngs = [(mode, draw(loaded, pairs=pairs, steps=steps, mode=mode, labels=labels)) for mode in modes]
        except MixframeError as err:
            parts.append(f'<div class="warning severe">interpolation of {esc(names)} could not be drawn: {esc(err)}</div>')
            continue
        parts += [figure(png, f"{mode} interpolation: {names}") for mode, png in pngs]
    return "\n".join(parts)


def folder_kind(path: Path) -> str:
    """What ``mixframe report`` was given: ``"study"`` (study.json), ``"sweep"`` (sweep.json) or ``"run"``; anything
    else is a MixframeError naming the path and the folders the report takes."""
    takes = "a run folder (mixframe train), a study folder (mixframe study) or a sweep folder (mixframe sweep)"
    path = Path(path)
    if (path / "study.json").is_file():
        return "study"
    if (path / "sweep.json").is_file():
        return "sweep"
    if not path.exists():
        raise MixframeError(f"{path} does not exist; pass {takes}")
    if path.is_dir() and not (path / RunFolder.RECIPE).is_file() and RunFolder.PARTIAL not in path.name:
        inside = sorted({str(p.parent) for name in ("study.json", "sweep.json") for p in path.glob(f"*/{name}")})
        hint = (f"; it holds {len(inside)} such folder(s) ({', '.join(inside[:3])}{', ...' if len(inside) > 3 else ''}): "
                "report one of them" if inside else "")
        raise MixframeError(f"{path} is not a mixframe run folder (no {RunFolder.RECIPE}), nor a study folder (no study.json) or a "
                            f"sweep folder (no sweep.json); pass {takes}{hint}")
    RunFolder.open(path)  # a file, or a run folder whose creation was stopped: its own message
    return "run"


def build_report(paths: Iterable[str | Path], pairs: int = 4, steps: int = 8, interpolation: bool = True, *,
                 metric: str | None = None, baseline: str | None = None) -> str:
    """The HTML page for run folders, or for one study or sweep folder (every folder is checked first).

    A study folder (``mixframe study``, finished) gives its table runs, named ``METHOD seed S``, the comparison of
    ``metric`` against ``baseline`` (:func:`mixframe.tools.results.compare`; defaults: the study's), and its tuning
    trials by method (``METHOD trial N``, each tuning seed's value on the validation split). A sweep folder gives its
    finished runs, named by grid point and seed (``KEY=VALUE seed S``), the others listed, and with ``metric`` the
    comparison of the grid points. ``interpolation`` draws the runs (of a study or sweep: the first of each method or
    grid point) on the same test pairs; it loads the models.
    """
    folders = [Path(p) for p in paths]
    if not folders:
        raise MixframeError("no folders given; pass run folders (mixframe train), or a study or sweep folder")
    kinds = [folder_kind(p) for p in folders]
    if "study" in kinds or "sweep" in kinds:
        if len(folders) > 1:
            which = next(p for p, k in zip(folders, kinds) if k != "run")
            raise MixframeError(f"{which} is a {kinds[folders.index(which)]} folder, which is reported alone; "
                                f"got {len(folders)} folders: write one report per study or sweep")
        build = study_page if kinds[0] == "study" else sweep_page
        return build(folders[0], metric=metric, baseline=baseline, pairs=pairs, steps=steps, interpolation=interpolation)
    if metric is not None or baseline is not None:
        raise MixframeError("a metric and a baseline to compare are for a study or sweep folder; run folders are shown side by side")
    runs = [RunInfo(p) for p in folders]
    title = "mixframe report: " + ", ".join(run.name for run in runs)
    return page(title, [f"<p>{len(runs)} run{'s' if len(runs) != 1 else ''}.</p>"], runs, pairs=pairs, steps=steps,
                interpolation=interpolation)


def page(title: str, intro: Sequence[str], runs: Sequence[RunInfo], *, after: Sequence[str] = (), pictured: Sequence[RunInfo] | None = None,
         directions: dict[str, str] | None = None, pairs: int = 4, steps: int = 8, interpolation: bool = True) -> str:
    """The page every report is: ``intro``, the runs' overview and metrics, ``after``, the interpolations of ``pictured``
    (default: every run), and a section per run."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
             f"<style>{STYLE}</style></head><body>", "<h1>mixframe report</h1>", *intro,
             "<h2>runs</h2>", comparison_table(runs), metrics_section(runs, directions), *after]
    if interpolation:
        parts.append(interpolation_section(pictured if pictured is not None else runs, pairs, steps))
    parts += [run_section(run, i + 1) for i, run in enumerate(runs)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(paths: Iterable[str | Path], out: str | Path, pairs: int = 4, steps: int = 8, interpolation: bool = True, *,
                 metric: str | None = None, baseline: str | None = None) -> Path:
    """:func:`build_report` written to ``out`` (its folder made when missing), atomically: the page is built before
    anything is written, and a kill or a full disk leaves the previous file or none, never half a page."""
    from mixframe.kernel.files import check_output_path
    from mixframe.runs.folder import atomic_write_bytes

    out = check_output_path(Path(out), option=None)
    html_page = build_report(paths, pairs, steps, interpolation, metric=metric, baseline=baseline)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, html_page.encode("utf-8"))
    except OSError as err:
        raise MixframeError(f"{out} cannot be written: {err.strerror or err}") from None
    return out


# ---------------------------------------------------------------------------------------------
# Study and sweep folders


def _first_of_each(runs: Sequence[RunInfo], groups: Sequence[str]) -> list[RunInfo]:
    seen: dict[str, RunInfo] = {}
    for run, group in zip(runs, groups):
        seen.setdefault(group, run)
    return list(seen.values())


def _located(folder: Path, recorded: Any, label: str, *, under: Path) -> Path:
    """A run folder as its study or sweep recorded it, or (the folder moved) the same name ``under`` it."""
    path = Path(str(recorded)) if recorded else None
    if path is not None and not path.is_dir() and (under / path.name).is_dir():
        path = under / path.name
    if path is None or not path.is_dir():
        raise MixframeError(f"the run folder of {label} in {folder} is missing ({path or 'none recorded'}); "
                            "it was moved or deleted: put it back, or report the run folders that remain")
    return path


def comparison_section(table: Any) -> str:
    """A comparison (:func:`mixframe.tools.results.compare`) as an HTML table, the best mean marked, the test named below."""
    from mixframe.tools.results import comparison_cells

    head, rows, note = comparison_cells(table)
    direction = table.attrs.get("direction")
    roles = list(table["role"])
    best = best_of([None if role == "reference" else mean for role, mean in zip(roles, table["mean"])], direction)
    lines = ["<h2>comparison</h2>", '<div class="scroll"><table class="compare">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for i, (row, role) in enumerate(zip(rows, roles)):
        cells = []
        for j, cell in enumerate(row):
            kind = "" if j in (0, 9) else "seeds" if j == 3 else "num"  # per-seed values wrap, so the verdict stays in view
            if j == 2 and i in best:
                cells.append(f'<td class="num best" title="the best mean ({BETTER[direction]})">{esc(cell)}&nbsp;&#9733;</td>')
            else:
                cells.append(f"<td{cls(kind)}>{esc(cell)}</td>")
        lines.append(f'<tr{cls("reference") if role == "reference" else ""}>' + "".join(cells) + "</tr>")
    lines.append("</table></div>")
    lines.append(f'<p class="small">{esc(note)}</p>')
    return "\n".join(lines)


def tuning_section(record: dict[str, Any]) -> str:
    """A study's tuning trials, by method: each trial's settings, its value on the validation split per tuning seed and
    their mean (what chose the table's settings), the chosen trial marked with the settings at an edge of their range, and
    the trials outside the study's constraints (which could not be chosen) named with the value that put them there."""
    from mixframe.tools.study import BoundSpec, violations

    metric, direction = record.get("metric"), record.get("direction")
    bounds = {key: BoundSpec(**bound) for key, bound in (record.get("constraints") or {}).items()}
    trials: dict[tuple[str, int], dict[str, Any]] = {}
    for run in record.get("runs", []):
        if run.get("phase") != "tune":
            continue
        entry = trials.setdefault((run["method"], int(run["trial"])), {"settings": run.get("settings") or {}, "seeds": {}, "metrics": []})
        entry["metrics"].append(run.get("metrics") or {})
        value = (run.get("metrics") or {}).get(metric) if run.get("status") == "complete" else None
        entry["seeds"][int(run["seed"])] = (run.get("status"), value)
    if not trials:
        return ""
    best = record.get("best") or {}
    heads = ["trial", "settings", f"{metric} on val, per tuning seed", "mean", "chosen"]
    lines = ["<h2>tuning</h2>",
             f"<p>Every method's trials, scored by {esc(metric)} on the validation split ({esc(BETTER.get(direction or '', ''))}); "
             "the chosen one (the best mean) gave the table runs their settings.</p>",
             '<div class="scroll"><table class="tuning">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr>"]
    for method in dict.fromkeys(m for m, _ in trials):
        chosen = best.get(method) or {}
        for (name, number), entry in sorted(((k, v) for k, v in trials.items() if k[0] == method), key=lambda item: item[0]):
            per_seed = [f"seed {seed}: " + (format_value(value) if status == "complete" else str(status))
                        for seed, (status, value) in sorted(entry["seeds"].items())]
            values = [value for status, value in entry["seeds"].values()]
            mean = statistics.fmean(values) if values and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) else None
            settings = ", ".join(f"{k}={format_value(v)}" for k, v in entry["settings"].items()) or "(no key applies)"
            picked = chosen.get("trial") == number
            means = {key: statistics.fmean(m.get(key, math.nan) for m in entry["metrics"]) for key in bounds}
            outside = violations(means, bounds) if bounds and mean is not None else []
            mark = "chosen (the best mean)" if picked else ("outside the constraints: " + "; ".join(outside)) if outside else ""
            edges = "; ".join(f"at an edge: {why}" for why in (chosen.get("edges") or {}).values()) if picked else ""
            cells = [f'<td class="name">{esc(f"{name} trial {number}")}</td>', f"<td>{esc(settings)}</td>",
                     f'<td class="num">{"<br>".join(esc(s) for s in per_seed)}</td>',
                     f'<td class="num{" best" if picked else ""}">{esc(format_value(mean))}{"&nbsp;&#9733;" if picked else ""}</td>',
                     f"<td>{esc(' '.join(x for x in (mark, edges) if x))}</td>"]
            lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table></div>")
    skipped = [f"{name}: {key} ({why})" for name, m in (record.get("methods") or {}).items() for key, why in (m.get("skipped") or {}).items()]
    if skipped:
        lines.append(f'<p class="small">Search keys skipped: {esc("; ".join(skipped))}.</p>')
    return "\n".join(lines)


def study_page(folder: Path, *, metric: str | None = None, baseline: str | None = None, pairs: int = 4, steps: int = 8,
               interpolation: bool = True) -> str:
    """The page of a finished study folder (see :func:`build_report`); an unfinished one is a MixframeError saying how to
    finish it."""
    from mixframe.kernel.files import load_user_yaml
    from mixframe.tools.results import compare, read_study, results

    folder = Path(folder)
    record = read_study(folder)
    planned = record.get("runs") or []
    if record.get("state") != "complete":
        done = sum(run.get("status") == "complete" for run in planned)
        raise MixframeError(f"the study {folder} has not finished (it is at its {record.get('state', 'unknown')} stage, {done} of the "
                            f"{len(planned)} runs planned so far complete); finish it with 'mixframe study --resume {folder}', "
                            "then write the report")
    frame = results(folder)
    table = frame[frame["phase"] == "table"]
    runs = [RunInfo(_located(folder, row["run"], f"{row['method']} seed {row['seed']}", under=folder / "table" / str(row["method"])),
                    label=f"{row['method']} seed {row['seed']}") for _, row in table.iterrows()]
    comparison = compare(frame, metric, baseline)
    description = ""
    try:
        raw = load_user_yaml(folder / "study.yaml", what="study file")
        description = str(raw.get("description") or "") if isinstance(raw, dict) else ""
    except MixframeError:
        pass
    shown, against = comparison.attrs.get("metric"), comparison.attrs.get("baseline")
    better = BETTER.get(comparison.attrs.get("direction") or "", "no direction given")
    tuned = sum(run.get("phase") == "tune" for run in planned)
    intro = [f"<p>Study <code>{esc(folder)}</code>{': ' + esc(description) if description else ''}.</p>",
             f"<p>{len(record.get('methods') or {})} methods, {esc(shown)} compared ({esc(better)}) with {esc(against)}, seed by seed; "
             f"{len(runs)} table runs on the test split, named METHOD seed S; {tuned} tuning runs, by trial below.</p>",
             comparison_section(comparison)]
    directions = {str(record["metric"]): str(record["direction"])} if record.get("metric") and record.get("direction") else {}
    return page(f"mixframe report: study {folder.name}", intro, runs, after=[tuning_section(record)],
                pictured=_first_of_each(runs, list(table["method"])), directions=directions, pairs=pairs, steps=steps,
                interpolation=interpolation)


def sweep_page(folder: Path, *, metric: str | None = None, baseline: str | None = None, pairs: int = 4, steps: int = 8,
               interpolation: bool = True) -> str:
    """The page of a sweep folder's finished runs (see :func:`build_report`); one with none finished is a MixframeError
    saying how to run them."""
    from mixframe.tools.results import compare, results
    from mixframe.tools.sweep import finished, point_label, read_sweep, run_dir

    folder = Path(folder)
    record = read_sweep(folder)
    planned = record["runs"]
    done = finished(planned)
    if not done:
        raise MixframeError(f"no run of the sweep {folder} has finished ({len(planned)} planned); run them with "
                            f"'mixframe sweep --resume {folder}', then write the report")
    stem = Path(record.get("recipe_path") or record.get("recipe") or "recipe").stem

    def label(rec: dict[str, Any]) -> str:
        return f"{point_label(rec['point']) if rec.get('point') else stem} seed {rec['seed']}"

    runs = [RunInfo(_located(folder, run_dir(folder, rec), label(rec), under=folder / str(rec.get("folder", ""))), label=label(rec))
            for rec in done]
    missing = [rec for rec in planned if rec not in done]
    intro = [f"<p>Sweep <code>{esc(folder)}</code> of <code>{esc(record.get('recipe', stem))}</code>: "
             f"{len(done)} of {len(planned)} runs finished, named by grid point and seed.</p>"]
    if record.get("command"):
        intro.append(f"<p>Command: <code>{esc(record['command'])}</code></p>")
    if missing:
        names = "; ".join(f"{label(rec)} ({rec.get('status')}{': ' + str(rec['message'])[:200] if rec.get('message') else ''})"
                          for rec in missing)
        intro.append(f'<p class="note">Not finished: {esc(names)}. <code>mixframe sweep --resume {esc(folder)}</code> runs them again.</p>')
    if metric is not None:
        intro.append(comparison_section(compare(results(folder), metric, baseline)))
    elif baseline is not None:
        raise MixframeError("a baseline is compared on a metric: name the metric too (--metric KEY)")
    return page(f"mixframe report: sweep {folder.name}", intro, runs, pictured=_first_of_each(runs, [point_label(r["point"]) for r in done]),
                pairs=pairs, steps=steps, interpolation=interpolation)
