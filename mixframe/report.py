"""``mixframe report``: one self-contained HTML page comparing finished runs.

The page needs nothing but itself: pictures are embedded as base64 PNG data URIs, the style sheet is
inline, and there is no script. Everything read from a run folder is escaped, so a run name or a
recipe description cannot inject markup. The table and the per-run sections read the run folders'
files only; the interpolation picture (when several runs share a dataset) loads the models.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from mixframe.cli import command, extension
from mixframe.errors import MixframeError
from mixframe.runs import RECIPE

FIRST_PICTURES = ("loss_curves.png", "grid.png")
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


@extension
def _parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML page comparing runs (table, recipes, warnings, pictures)")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders made by 'mixframe train'")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default report.html)")
    p.add_argument("--pairs", type=int, default=4, help="pairs in the interpolation picture (default 4)")
    p.add_argument("--steps", type=int, default=8, help="interpolants per row in the interpolation picture (default 8)")
    p.add_argument("--no-interpolation", action="store_true", help="skip the interpolation picture (it loads every model)")


# ---------------------------------------------------------------------------------------------
# Reading a run folder (files only)


class RunInfo:
    """What the report shows of one run, read from its folder's files."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        if not self.dir.is_dir():
            what = "does not exist" if not self.dir.exists() else "is a file, not a folder"
            raise MixframeError(f"{self.dir} {what}; pass run folders made by 'mixframe train'")
        recipe_path = self.dir / RECIPE
        if not recipe_path.is_file():
            raise MixframeError(f"{self.dir} is not a mixframe run folder (no {RECIPE}); pass a folder made by 'mixframe train'")
        self.recipe_text = recipe_path.read_text(errors="replace")
        try:
            recipe = yaml.safe_load(self.recipe_text)
        except yaml.YAMLError as err:
            raise MixframeError(f"{recipe_path} is not valid YAML ({err}); the run folder is damaged") from None
        if not isinstance(recipe, dict):
            raise MixframeError(f"{recipe_path} does not hold a recipe (a mapping); the run folder is damaged")
        self.recipe: dict[str, Any] = recipe
        self.run = _read_json(self.dir / "run.json")
        self.evaluation = _read_json(self.dir / "evaluation.json")
        warnings_path = self.dir / "warnings.log"
        self.warnings = [line for line in warnings_path.read_text(errors="replace").splitlines() if line.strip()] if warnings_path.is_file() else []

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
        last = None
        path = self.dir / "metrics.csv"
        if path.is_file():
            with path.open(newline="") as f:
                for row in csv.DictReader(f):
                    if row.get("name") in ("epoch/ae/reconstruction", "ae/reconstruction"):
                        last = _number(row.get("value"))
        return last

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = self.evaluation.get("metrics") if isinstance(self.evaluation, dict) else None
        return metrics if isinstance(metrics, dict) else {}

    def pictures(self) -> list[Path]:
        """loss_curves.png and grid.png first, then every other PNG in the folder (masks.png, ...)."""
        found = sorted(p for p in self.dir.glob("*.png") if p.is_file())
        first = [self.dir / n for n in FIRST_PICTURES if (self.dir / n).is_file()]
        return first + [p for p in found if p.name not in FIRST_PICTURES]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return {"status": f"unreadable {path.name} ({err})"}
    return data if isinstance(data, dict) else {}


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
        # Bernoulli interpolation (swapping feature maps) is shown too when a run was trained with that mixer
        modes = ["linear"] + (["bernoulli"] if any(run.mixer == "bernoulli" for run in group) else [])
        try:
            loaded = load_runs([run.dir for run in group])
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


@command("report")
def cmd_report(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in (".html", ".htm"):
        raise MixframeError(f"--out {args.out} must end in .html (the report is one HTML page)")
    page = build_report(args.run_dirs, pairs=args.pairs, steps=args.steps, interpolation=not args.no_interpolation)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page, encoding="utf-8")
    print(args.out)
    return 0
