"""Reports: one self-contained HTML page comparing finished runs (``mixframe report``).

The page needs nothing but itself: pictures are embedded as base64 PNG data URIs, the style sheet is
inline, and there is no script. Everything read from a run folder is escaped, so a run name or a
recipe description cannot inject markup. The tables and the per-run sections read the run folders'
files only; the interpolation pictures (one per dataset, every run in it) load the models.

Laid out for a laptop screen (1280 px wide, no horizontal scrolling of the page): one row per run
in the overview; the metrics as rows, grouped by the metric plugin that computed them, each with its
one-line meaning (``Metric.meanings``), and one narrow column per run (``#1``, ``#2``: the overview's
numbers). A table wider than the screen scrolls inside its own box, its first column held in place.
A run without evaluation.json is named with the command that computes its metrics.
"""

from __future__ import annotations

import base64
import html
import json
import math
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

    def __init__(self, run_dir: Path) -> None:
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
        return self.dir.name

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
    from mixframe.kernel.registry import get_registry

    registry = get_registry()
    out: dict[str, dict[str, str]] = {}
    for name in metrics:
        try:
            meanings = getattr(registry.get("metric", name).implementation, "meanings", None)
        except MixframeError:
            meanings = None
        out[name] = dict(meanings) if isinstance(meanings, dict) else {}
    return out


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


def metrics_section(runs: Sequence[RunInfo]) -> str:
    """The metrics as rows (grouped by metric plugin, each with its meaning), one column per run; or, when no run
    was evaluated, the command that evaluates them."""
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
    heads = "".join(f'<th title="{esc(run.name)}"><a href="#{_anchor(run)}">#{i}</a></th>' for i, run in enumerate(runs, 1))
    lines = ['<div class="scroll"><table class="metrics">', f'<tr><th class="value">value (what it means)</th>{heads}</tr>']
    for metric, keys in groups.items():
        title = f"metric {metric}" if metric else "values of unrecorded origin"
        lines.append(f'<tr class="group"><th class="value">{esc(title)}</th><th colspan="{len(runs)}"></th></tr>')
        for key in keys:
            meaning = meaning_of(key, meanings.get(metric, {})) or "(its plugin gives no meaning)"
            cells = []
            for run in runs:
                value = run.by_metric().get(metric, {}).get(key)
                cells.append(f'<td class="num">{esc(format_value(value))}</td>' if run.evaluated
                             else '<td class="num missing">&ndash;</td>')
            lines.append(f'<tr><td class="value"><code>{esc(key)}</code><span class="meaning">{esc(meaning)}</span></td>{"".join(cells)}</tr>')
    lines.append("</table></div>")
    parts.append("\n".join(lines))
    return "\n".join(parts)


def _anchor(run: RunInfo) -> str:
    return "run-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in run.name)


PICTURE_CAPTIONS = {
    RunFolder.LOSS_CURVES: f"{RunFolder.LOSS_CURVES}: the losses per epoch, training and validation reconstruction together; "
                           "dashed: the level of outputting the mean image, and each critic's blind guess",
    RunFolder.GRID: f"{RunFolder.GRID}: validation pairs at the end of training; each row the real x1 (orange frame), the decoded "
                    "interpolation from f(x1) to f(x2), the real x2 (orange frame)",
}


def run_section(run: RunInfo, index: int) -> str:
    status_class = "status-complete" if run.status == "complete" else "status-other"
    parts = [f'<section class="run" id="{_anchor(run)}">', f"<h2>{index}. {esc(run.name)}</h2>"]
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
            pngs = [(mode, draw(loaded, pairs=pairs, steps=steps, mode=mode)) for mode in modes]
        except MixframeError as err:
            parts.append(f'<div class="warning severe">interpolation of {esc(names)} could not be drawn: {esc(err)}</div>')
            continue
        parts += [figure(png, f"{mode} interpolation: {names}") for mode, png in pngs]
    return "\n".join(parts)


def build_report(run_dirs: Iterable[Path], pairs: int = 4, steps: int = 8, interpolation: bool = True) -> str:
    """The HTML page for these runs (every folder is checked first)."""
    runs = [RunInfo(Path(d)) for d in run_dirs]
    if not runs:
        raise MixframeError("no run folders given; pass one or more folders made by 'mixframe train'")
    title = "mixframe report: " + ", ".join(run.name for run in runs)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
             f"<style>{STYLE}</style></head><body>", "<h1>mixframe report</h1>",
             f"<p>{len(runs)} run{'s' if len(runs) != 1 else ''}.</p>", "<h2>runs</h2>", comparison_table(runs), metrics_section(runs)]
    if interpolation:
        parts.append(interpolation_section(runs, pairs, steps))
    parts += [run_section(run, i + 1) for i, run in enumerate(runs)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
