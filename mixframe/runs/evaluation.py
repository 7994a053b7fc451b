"""Evaluation: a run's metrics, computed by metric plugins, written to its evaluation.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from mixframe.errors import MixframeError, RecipeError
from mixframe.kernel.config import Problems, structure
from mixframe.kernel.interfaces import BuildContext, Encoder, RunView
from mixframe.kernel.randomness import kept_random_state
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
    model: Any  # the Model, checked for finite weights and outputs before any metric
    step: int
    folder: RunFolder


SPLITS = ("val", "test")


def evaluate(run: EvaluatedRun, names: Sequence[str] = (), *, split: str = "test", seed: int | None = None, write: bool = True,
             echo: bool = False) -> dict[str, float]:
    """Compute the metrics named (default: the recipe's) on ``split`` and return them; ``echo`` prints each
    metric's values as it finishes. The caller's random state (torch, ``random``, numpy) is as it was
    afterwards, whatever the metrics draw.

    With ``write``, numbers at the metrics' own seeds are recorded in the run folder: test ones merged into
    evaluation.json (what a table reports), and those of either split handed to the recipe's callbacks that
    define :meth:`~mixframe.kernel.interfaces.Callback.on_evaluation` (the default ``tensorboard_hparams`` puts
    them in TensorBoard's HParams as ``eval/SPLIT/KEY``), so that every place that compares runs sees them.

    ``split``: ``"test"`` or ``"val"`` (a study's tuning runs are scored on val). ``seed``: an evaluation seed
    in place of each metric's own (metrics without a ``seed`` setting are computed as they are), to measure
    how much a number moves with the evaluation set alone; such numbers are never recorded.
    """
    if split not in SPLITS:
        raise MixframeError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    if not (write and seed is None):
        return _evaluate(run, names, split, seed, echo)
    with run.folder.lock():  # one writer per run folder: not while the run trains, resumes or is evaluated elsewhere
        values = _evaluate(run, names, split, seed, echo, write=split == "test")
        if values:
            tell_callbacks(run, values, split)
        return values


def tell_callbacks(run: EvaluatedRun, values: dict[str, float], split: str) -> None:
    """Hand the run's new numbers to the recipe's callbacks that hear evaluations (``Callback.on_evaluation``)."""
    from mixframe.runs.callbacks import evaluation_callbacks

    context = BuildContext(data=run.spec, code_shape=tuple(run.encoder.code_shape))
    for callback in evaluation_callbacks(run.recipe, context):
        callback.on_evaluation(run.folder, run.recipe, dict(values), split=split, step=run.step)


def _evaluate(run: EvaluatedRun, names: Sequence[str], split: str, seed: int | None, echo: bool, write: bool = False) -> dict[str, float]:
    import inspect

    import attrs
    from threadpoolctl import threadpool_limits

    from mixframe.kernel.model import nonfinite

    data = run.data
    examples = next((s for s in (data.test, data.val, data.train) if len(s)), data.train)  # type: ignore[arg-type]
    x = torch.stack([examples[i][0] for i in range(min(64, len(examples)))]).to(run.device) if len(examples) else torch.zeros(0)  # type: ignore[arg-type]
    problem = nonfinite(run.model, x)
    if problem:
        raise MixframeError(f"{run.dir} cannot be evaluated: {problem} (training diverged, e.g. a learning rate too large); "
                            "nothing was saved. Train it again with a lower train.lr")
    context = BuildContext(data=run.spec, code_shape=tuple(run.encoder.code_shape))
    results: dict[str, dict[str, float]] = {}
    for spec in metric_specs(run, names):
        config = spec.config
        if seed is not None and attrs.has(type(config)) and "seed" in attrs.fields_dict(type(config)):
            config = attrs.evolve(config, seed=seed)
        metric = get_registry().build("metric", spec.name, config, context)
        takes_split = "split" in inspect.signature(metric.evaluate).parameters
        if split != "test" and not takes_split:
            raise MixframeError(f"metric {spec.name!r} cannot score the {split} split (its evaluate takes no split argument); "
                                "update the plugin (CONTRIBUTING.md, metrics) or leave it out of the study's metrics")
        try:
            with threadpool_limits(limits=1), kept_random_state():  # BLAS threads fight over a shared CPU; one is faster here
                values = metric.evaluate(run, split=split) if takes_split else metric.evaluate(run)
        except MixframeError as err:  # the metric says what it needs; where it was asked for says how to leave it out
            raise MixframeError(f"{err}. {origin(spec.name, run, asked=bool(names))}") from None
        results[spec.name] = {k: float(v) for k, v in values.items()}
        if echo:
            print(f"  {spec.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in results[spec.name].items()))
    if write:
        run.folder.write_evaluation(results, run.epoch, run.step)
    return {k: v for m in results.values() for k, v in m.items()}


def origin(metric: str, run: RunView, *, asked: bool) -> str:
    """Where a metric was asked for, and so how to leave it out: the command line (or ``metrics=``), or the run's recipe."""
    if asked:
        return f"'{metric}' was asked for by name (--metric {metric}, or Run.evaluate's metrics): ask for the others only"
    return (f"'{metric}' is one of the metrics in the recipe of {run.dir} (evaluated when none is named): "
            "name the ones to compute with --metric NAME")


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


