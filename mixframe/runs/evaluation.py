"""Evaluation: a run's metrics, computed by metric plugins, written to its evaluation.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from mixframe.errors import MixframeError, RecipeError
from mixframe.kernel.config import Problems, structure
from mixframe.kernel.interfaces import BuildContext, Encoder, RunView
from mixframe.kernel.recipe import ComponentSpec
from mixframe.kernel.registry import get_registry
from mixframe.runs.folder import RunFolder


def metric_specs(run: RunView, names: Sequence[str]) -> list[ComponentSpec]:
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


class EvaluatedRun(RunView, Protocol):
    """What evaluation uses of a run beyond a metric's view: its encoder (for the code shape), step and folder."""

    encoder: Encoder
    step: int
    folder: RunFolder


def evaluate(run: EvaluatedRun, names: Sequence[str] = (), *, write: bool = True, echo: bool = False) -> dict[str, float]:
    """Compute the metrics named (default: the recipe's), merge them into the run's evaluation.json when
    ``write``, and return them; ``echo`` prints each metric's values as it finishes."""
    from threadpoolctl import threadpool_limits

    context = BuildContext(data=run.spec, code_shape=tuple(run.encoder.code_shape))
    results: dict[str, dict[str, float]] = {}
    for spec in metric_specs(run, names):
        metric = get_registry().build("metric", spec.name, spec.config, context)
        with threadpool_limits(limits=1):  # BLAS threads fight over a shared CPU; one is faster here
            results[spec.name] = {k: float(v) for k, v in metric.evaluate(run).items()}
        if echo:
            print(f"  {spec.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in results[spec.name].items()))
    if write:
        run.folder.write_evaluation(results, run.epoch, run.step)
    return {k: v for m in results.values() for k, v in m.items()}


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


