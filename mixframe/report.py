"""Reports: one self-contained HTML page comparing finished runs (``mixframe report``).

The page needs nothing but itself: pictures are embedded as base64 PNG data URIs, the style sheet is
inline, and there is no script. Everything read from a run folder is escaped, so a run name or a
recipe description cannot inject markup. The table and the per-run sections read the run folders'
files only; the interpolation picture (when several runs share a dataset) loads the models.
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
from mixframe.runs import RunFolder

HIGHLIGHT = ("learns nothing", "learned nothing", "diverged", "not finite", "non-finite")

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; font-size: 0.9em; margin-bottom: 2em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; vertical-align: top; }
th { background: #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 0.85em; }
section.run { border-top: 2px solid #888; margin-top: 2em; }
.warning { background: #fff3b0; border-left: 4px solid #e0a800; padding: 4px 8px; margin: 2px 0; font-family: monospace; }
.warning.severe { background: #ffd6d6; border-left-color: #c00; }
.status-complete { color: #070; } .status-other { color: #b00; font-weight: bold; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
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
        from mixframe.files import load_user_yaml

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
        if isinstance(final, dict) and "ae/reconstruction" in final:
            return _number(final["ae/reconstruction"])
        curve = self.folder.epoch_curves().get("ae/reconstruction")
        return curve[-1][1] if curve else None

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = self.evaluation.get("metrics") if isinstance(self.evaluation, dict) else None
        return metrics if isinstance(metrics, dict) else {}

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
    metric_names: list[str] = []
    for run in runs:
        metric_names += [name for name in run.metrics if name not in metric_names]
    heads = ["run", "description", "status", "mixer", "regularizers", "epochs", "final reconstruction loss", *metric_names]
    lines = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr>"]
    for run in runs:
        text_cells = [f'<a href="#{_anchor(run)}">{esc(run.name)}</a>', esc(run.description), esc(run.status),
                      esc(run.mixer), esc(run.regularizers), esc(run.epochs)]
        numbers = [run.reconstruction, *(run.metrics.get(name) for name in metric_names)]
        cells = [f"<td>{c}</td>" for c in text_cells] + [f'<td class="num">{esc(format_value(v))}</td>' for v in numbers]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _anchor(run: RunInfo) -> str:
    return "run-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in run.name)


def run_section(run: RunInfo, index: int) -> str:
    status_class = "status-complete" if run.status == "complete" else "status-other"
    parts = [f'<section class="run" id="{_anchor(run)}">', f"<h2>{index}. {esc(run.name)}</h2>"]
    if run.description:
        parts.append(f"<p>{esc(run.description)}</p>")
    parts.append(f'<p>status: <span class="{status_class}">{esc(run.status)}</span></p>')
    if run.warnings:
        parts.append(f"<h3>warnings ({len(run.warnings)})</h3>")
        for line in run.warnings:
            severe = " severe" if any(word in line.lower() for word in HIGHLIGHT) else ""
            parts.append(f'<div class="warning{severe}">{esc(line)}</div>')
    pictures = run.pictures()
    if pictures:
        parts.append("<h3>pictures</h3>")
        parts += [figure(p.read_bytes(), p.name) for p in pictures]
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
    """A picture per group of runs that share a dataset; a note instead when a group cannot be drawn."""
    from mixframe.interpolate import interpolation_png, load_runs

    parts = ["<h2>interpolations</h2>",
             "<p>The same test pairs for every run; for images the first row of each block is linear interpolation "
             "in pixel space.</p>"]
    for group in same_data_groups(runs):
        names = ", ".join(run.name for run in group)
        if len(group) < 2:
            parts.append(f"<p>{esc(group[0].name)}: no other run on its dataset to compare with.</p>")
            continue
        try:
            loaded = load_runs([run.dir for run in group])
            # a mixer that swaps whole feature maps (Mixer.interpolation == "bernoulli") is shown that way too
            modes = list(dict.fromkeys(["linear", *(run.mixer.interpolation for run in loaded if run.mixer is not None)]))
            pngs = [(mode, interpolation_png(loaded, pairs=pairs, steps=steps, mode=mode)) for mode in modes]
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
             f"<p>{len(runs)} run{'s' if len(runs) != 1 else ''}.</p>", "<h2>comparison</h2>", comparison_table(runs)]
    if interpolation and len(runs) > 1:
        parts.append(interpolation_section(runs, pairs, steps))
    parts += [run_section(run, i + 1) for i, run in enumerate(runs)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
