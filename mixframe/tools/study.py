"""Studies: from a set of recipes to a table, with the same tuning budget for every method and paired statistics.

A study file (YAML, checked like a recipe: every problem at once, each with its key path) names the
methods (a recipe and its overrides each), the headline metric, the baseline, the search space and
budget, and the table's seeds. :func:`study` runs it into a study folder::

    study.yaml        the study file as given (and the --set values), what --resume continues
    study.json        the plan and the state of every run (tuning trials and table runs), rewritten atomically
    optuna.db         the tuning storage (SQLite; --storage names another): one Optuna study per method
    tune/METHOD/trialNNN/seedS-TIME   tuning runs, scored on the validation split
    table/METHOD/seedS-TIME           table runs: each method's best settings, the table's seeds, test split
    table.md          the comparison (mixframe.tools.results.compare) with the chosen settings
    logs/             each run's output

Tuning: every method gets ``tune.trials`` trials of a TPE sampler (seeded per trial number, so that a
resumed study asks what an uninterrupted one would have), each trial trained with every tuning seed
and scored by the mean of the headline metric on the validation split; trials are asked
``tune.parallel`` at a time per method, and the runs of all methods' trials of a round go to the
launcher together. A search key that does not apply to a method (``train.critic_lr`` for a method
without a critic, ``regularizers.1.weight`` for a recipe without a second regularizer) is skipped
for it and recorded. A best value at the edge of its range is flagged.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import shutil
import statistics
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from mixframe.errors import MixframeError, RecipeError, suggest
from mixframe.kernel.config import Problems, param, positive, structure
from mixframe.kernel.interfaces import Launcher, RunTask
from mixframe.tools.results import direction_of, read_study

STUDY_FILE = "study.yaml"
STATE_FILE = "study.json"
TABLE_FILE = "table.md"
STORAGE_FILE = "optuna.db"
LOGS = "logs"
EDGE = 0.05  # a best value within this share of its range (log scale where the range is) of an end is flagged
CRITIC_KEYS = ("discriminator", "train.critic_lr", "train.update_g_every", "train.critic_betas")


# -- the study file --------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class MethodSpec:
    recipe: str = param(help="a recipe file (relative to the study file) or a shipped recipe's name")
    set: dict[str, Any] = param(factory=dict, help="recipe overrides for this method (KEY: VALUE)")


@attrs.frozen(kw_only=True)
class RangeSpec:
    low: float | None = param(None, help="lowest value (with high)")
    high: float | None = param(None, help="highest value (with low)")
    log: bool = param(False, help="search on a log scale (low > 0)")
    type: Literal["float", "int"] = param("float", help="float or int values")
    choices: list[Any] | None = param(None, help="a list of values to choose from, instead of low/high")


@attrs.frozen(kw_only=True)
class BoundSpec:
    min: float | None = param(None, help="the lowest value a usable model has (with or without max)")
    max: float | None = param(None, help="the highest value a usable model has (with or without min)")


@attrs.frozen(kw_only=True)
class TuneSpec:
    trials: int = param(help="trials per method, the same for every method (at least 1; checked with the rest of the file)")
    seeds: list[int] = param(help="tuning seeds: every trial trains with each; the table never uses them")
    space: dict[str, Any] = param(factory=dict, help="recipe key -> {low, high, log} or {choices}")
    parallel: int = param(1, help="trials asked at once per method (changes what TPE sees: part of the protocol)", validator=positive)
    startup_trials: int | None = param(None, help="random trials before TPE models the results; null: trials // 3 (at least 1)")
    sampler_seed: int = param(0, help="the sampler's seed (trial n uses sampler_seed + n)")


@attrs.frozen(kw_only=True)
class StudySpec:
    schema: Literal[1] = param(help="the study file format version: 1")
    description: str = param("", help="what the study compares")
    metric: str = param(help="the headline metric key (direction from its metric plugin)")
    direction: Literal["max", "min"] | None = param(None, help="max or min, for a metric whose plugin does not say")
    baseline: str = param(help="the method every other is compared with, seed by seed")
    methods: dict[str, Any] = param(help="name -> {recipe, set}")
    set: dict[str, Any] = param(factory=dict, help="overrides applied to every method")
    metrics: list[str] = param(factory=list, help="metric plugins to compute (default: each recipe's own)")
    tune: dict[str, Any] | None = param(None, help="{trials, seeds, space, parallel, startup_trials, sampler_seed}; null: no tuning")
    seeds: list[int] = param(help="the table's seeds")
    eval_seeds: list[int] = param(factory=lambda: [1, 2], help="evaluation seeds each table run is scored again with (evaluation noise)")
    constraints: dict[str, Any] = param(factory=dict, help="metric key -> {min, max}: tuning never chooses a trial outside them "
                                                           "(a collapsed decoder), and the table names runs outside them")


@attrs.frozen(kw_only=True)
class Method:
    """A method as planned: its recipe file, its overrides (study set, method set, --set), the search keys
    that apply to it and those skipped (key -> why)."""

    name: str
    recipe: str
    overrides: tuple[str, ...]
    space: dict[str, RangeSpec]
    skipped: dict[str, str]


@attrs.frozen(kw_only=True)
class Plan:
    spec: StudySpec
    tune: TuneSpec | None
    methods: dict[str, Method]
    direction: str
    source: str
    constraints: dict[str, BoundSpec] = attrs.field(factory=dict)


def _dump(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _lookup(tree: Any, key: str) -> tuple[bool, Any]:
    node = tree
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


def _metric_plugins(recipes: Sequence[Any], names: Sequence[str]) -> list[Any]:
    from mixframe.kernel.registry import get_registry

    wanted = list(names) or list(dict.fromkeys(m.name for r in recipes for m in r.metrics))
    found = []
    for name in wanted:
        with contextlib.suppress(MixframeError):
            found.append(get_registry().get("metric", name).implementation)
    return found


def _lenient(cls: type, raw: Any, path: str, problems: Problems) -> Any:
    """``structure``, recording its problems, but going on with the known keys after an unknown one, so that
    the problems further in are found in the same pass."""
    found = structure(cls, raw, path, problems)
    if found is None and isinstance(raw, dict):
        found = structure(cls, {k: v for k, v in raw.items() if k in attrs.fields_dict(cls)}, path, Problems())
    return found


def _space_value(rng: RangeSpec) -> Any:
    if rng.choices is not None:
        return rng.choices[0]
    return int(rng.low) if rng.type == "int" else rng.low  # type: ignore[arg-type]


def check_study(path: str | Path, overrides: Sequence[str] = (), *, base: str | Path | None = None) -> Plan:
    """The study file at ``path`` (or a shipped study's name) checked: every problem at once, each with its key path,
    as one MixframeError (exit 2); each method's recipe is loaded with its overrides, and the search keys are
    sorted into those that apply to each method and those skipped. A method's recipe path is relative to ``base``
    (default: the study file's folder), else a shipped recipe's name."""
    from mixframe.kernel.files import UserFileError, load_user_yaml
    from mixframe.kernel.recipe import load_recipe
    from mixframe.kernel.shipped import recipe_path

    file = study_path(path)
    raw = load_user_yaml(file, what="study file")
    problems = Problems()
    spec = _lenient(StudySpec, raw, "", problems)
    if spec is None:
        raise UserFileError(file, "study file", problems.items)
    tune = None
    space: dict[str, RangeSpec] = {}
    if spec.tune is not None:
        tune = _lenient(TuneSpec, spec.tune, "tune", problems)
        if tune is not None:
            if tune.trials < 1:
                problems.add("tune.trials", f"must be at least 1, got {tune.trials}")
            if not tune.seeds:
                problems.add("tune.seeds", "give at least one tuning seed")
            if overlap := sorted(set(tune.seeds) & set(spec.seeds)):
                problems.add("tune.seeds", f"{overlap} are also table seeds; tuning seeds must differ from the table's")
            for key, value in tune.space.items():
                rng = _lenient(RangeSpec, value, f"tune.space.{key}", problems)
                if rng is None:
                    continue
                where = f"tune.space.{key}"
                if rng.choices is not None:
                    if not rng.choices or rng.low is not None or rng.high is not None:
                        problems.add(where, "give either choices (a non-empty list) or low and high, not both")
                        continue
                elif rng.low is None or rng.high is None:
                    problems.add(where, "give low and high (or choices)")
                    continue
                elif rng.low >= rng.high:
                    problems.add(where, f"low ({rng.low:g}) must be below high ({rng.high:g})")
                    continue
                elif rng.log and rng.low <= 0:
                    problems.add(where, f"a log scale needs low > 0, got {rng.low:g}")
                    continue
                space[key] = rng
    constraints: dict[str, BoundSpec] = {}
    for key, value in spec.constraints.items():
        bound = _lenient(BoundSpec, value, f"constraints.{key}", problems)
        if bound is None:
            continue
        if bound.min is None and bound.max is None:
            problems.add(f"constraints.{key}", "give min, max or both")
        elif bound.min is not None and bound.max is not None and bound.min >= bound.max:
            problems.add(f"constraints.{key}", f"min ({bound.min:g}) must be below max ({bound.max:g})")
        else:
            constraints[key] = bound
    if not spec.seeds:
        problems.add("seeds", "give at least one table seed (five or more for a table a reviewer accepts)")
    if len(set(spec.seeds)) != len(spec.seeds):
        problems.add("seeds", f"repeats a seed: {spec.seeds}")
    if not spec.methods:
        problems.add("methods", "name at least two methods (the baseline and one to compare)")
    elif spec.baseline not in spec.methods:
        problems.add("baseline", f"{spec.baseline!r} is not one of the methods ({', '.join(spec.methods)})")
    shared = [f"{k}={_dump(v)}" for k, v in spec.set.items()]
    methods: dict[str, Method] = {}
    recipes = []
    for name, value in spec.methods.items():
        where = f"methods.{name}"
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            problems.add(where, "a method's name is letters, digits, _ and - (it names folders)")
            continue
        method = _lenient(MethodSpec, value, where, problems)
        if method is None:
            continue
        text = method.recipe
        near = Path(base) if base is not None else file.parent
        if not Path(text).is_absolute() and not text.startswith("shipped:") and (near / text).exists():
            text = str(near / text)
        own = [*shared, *(f"{k}={_dump(v)}" for k, v in method.set.items()), *overrides]
        try:
            file_of = recipe_path(text)
            recipe = load_recipe(file_of, own)
        except RecipeError as err:  # each of the recipe's problems on its own line, under this method's path
            for path, message in err.problems:
                problems.add(where, f"recipe {text}, {path}: {message}")
            continue
        except MixframeError as err:
            problems.add(where, str(err).replace("\n", " "))
            continue
        recipes.append(recipe)
        tree = recipe.to_dict()
        applies: dict[str, RangeSpec] = {}
        skipped: dict[str, str] = {}
        for key, rng in space.items():
            exists, _ = _lookup(tree, key)
            if not exists:
                skipped[key] = "the recipe has no such key"
            elif recipe.discriminator is None and any(key == c or key.startswith(c + ".") for c in CRITIC_KEYS):
                skipped[key] = "the method has no critic"
            else:
                try:
                    load_recipe(file_of, [*own, f"{key}={_dump(_space_value(rng))}"])
                except MixframeError as err:
                    problems.add(f"tune.space.{key}", f"for method {name}: {str(err).replace(chr(10), ' ')}")
                    continue
                applies[key] = rng
        methods[name] = Method(name=name, recipe=str(Path(file_of).resolve()), overrides=tuple(own), space=applies, skipped=skipped)
    plugins = _metric_plugins(recipes, spec.metrics)
    for name in spec.metrics:
        from mixframe.kernel.registry import get_registry

        try:
            get_registry().get("metric", name)
        except MixframeError as err:
            problems.add("metrics", str(err))
    direction = spec.direction or direction_of(spec.metric, plugins)
    given = sorted({k for p in plugins for k in (*getattr(p, "meanings", {}), *getattr(p, "directions", {}))})
    for path, key in [*((f"constraints.{k}", k) for k in constraints), ("metric", spec.metric)]:
        if recipes and key not in given:
            problems.add(path, f"no metric the methods compute gives {key!r}{suggest(key, given)}"
                         + f" (they give: {', '.join(given) or 'nothing'})")
    if recipes and spec.metric in given and direction is None:
        problems.add("direction", f"the metric plugin does not say whether {spec.metric} is better high or low; add direction: max or min")
    if problems:
        raise UserFileError(file, "study file", problems.items)
    return Plan(spec=spec, tune=tune, methods=methods, direction=direction or "max", source=str(file), constraints=constraints)


def violations(metrics: Mapping[str, float], constraints: Mapping[str, BoundSpec]) -> list[str]:
    """The constraints ``metrics`` break, each as ``key value outside bound`` (a missing or NaN value breaks its constraint)."""
    broken = []
    for key, bound in constraints.items():
        value = metrics.get(key, math.nan)
        if not math.isfinite(value) or (bound.min is not None and value < bound.min) or (bound.max is not None and value > bound.max):
            broken.append(f"{key} {value:.4g} (needs {_bounds_text(bound)})")
    return broken


def _bounds_text(bound: BoundSpec) -> str:
    return " and ".join(x for x in (f">= {bound.min:g}" if bound.min is not None else "", f"<= {bound.max:g}" if bound.max is not None else "") if x)


# -- shipped studies -------------------------------------------------------------------------------------
def shipped_root() -> Path:
    """The folder of the shipped studies (the package mixframe_studies: studies/ in a checkout)."""
    import importlib.resources

    try:
        folder = importlib.resources.files("mixframe_studies")
    except ModuleNotFoundError:
        raise MixframeError("the shipped studies (package mixframe_studies) are not installed; reinstall mixframe") from None
    return Path(str(folder))


def shipped_studies() -> list[str]:
    """The shipped studies' names (``spiral``, ``digits``, ...)."""
    return sorted(p.stem for p in shipped_root().glob("*.yaml"))


def study_path(path: str | Path) -> Path:
    """A study argument as a file: a path that exists, or a shipped study's name (``spiral``, ``shipped:spiral``)."""
    text = str(path)
    bare = text.removeprefix("shipped:").removesuffix(".yaml")
    if Path(text).exists() and not text.startswith("shipped:"):
        return Path(text)
    if "/" not in bare and bare in shipped_studies():
        return shipped_root() / f"{bare}.yaml"
    raise MixframeError(f"study file {text} not found, and no shipped study has that name; shipped studies: {', '.join(shipped_studies())}")


def format_studies() -> str:
    """The listing of ``mixframe study list``: each shipped study with its description."""
    from mixframe.kernel.files import load_user_yaml

    lines = ["Shipped studies (run one: mixframe study NAME --out DIR):", ""]
    names = shipped_studies()
    width = max((len(n) for n in names), default=0)
    for name in names:
        raw = load_user_yaml(shipped_root() / f"{name}.yaml", what="study file")
        lines.append(f"  {name:<{width}}  {(raw or {}).get('description', '') if isinstance(raw, dict) else ''}")
    return "\n".join([*lines, "", f"Folder: {shipped_root()}"])


# -- the study's state -----------------------------------------------------------------------------------
class StudyState:
    """study.json in memory and on disk (rewritten atomically at every change); the launcher's events."""

    def __init__(self, folder: Path, record: dict[str, Any], progress: bool, planned: int = 0) -> None:
        self.folder, self.record, self.progress, self.planned = folder, record, progress, planned
        self.lock = threading.Lock()

    def save(self) -> None:
        from mixframe.runs.folder import write_json

        write_json(self.folder / STATE_FILE, self.record)

    def runs(self) -> dict[str, dict[str, Any]]:
        return {run["key"]: run for run in self.record["runs"]}

    def say(self, text: str) -> None:
        if self.progress:
            done = sum(r["status"] == "complete" for r in self.record["runs"])
            total = max(self.planned, len(self.record["runs"]))  # a failed trial's runs are asked again
            print(f"[{done}/{total} runs done] {text}", flush=True)

    def started(self, task: RunTask, where: str = "") -> None:
        with self.lock:
            self.runs()[task.key].update(status="running", where=where, started=_now())
            self.save()
            self.say(f"{task.label}: started")

    def finished(self, task: RunTask, outcome: Mapping[str, Any]) -> None:
        with self.lock:
            run = self.runs()[task.key]
            ok = outcome.get("status") == "complete"
            run.update(status="complete" if ok else "failed", message="" if ok else str(outcome.get("message") or "failed"),
                       metrics=dict(outcome.get("metrics") or {}) if ok else {},
                       eval_seeds=dict(outcome.get("eval_seeds") or {}) if ok else {},
                       run=outcome.get("run"), finished=_now(), seconds=outcome.get("seconds"))
            self.save()
            self.say(f"{task.label}: {'complete' if ok else 'FAILED: ' + run['message']}")


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    import fcntl

    with (folder / ".lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise MixframeError(f"another 'mixframe study' is working on {folder}; wait for it to end (or stop it) first") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- running ---------------------------------------------------------------------------------------------
def study(path: str | Path, *, out: str | Path = "studies", overrides: Sequence[str] = (), launcher: str | Launcher | None = None,
          launcher_options: Sequence[str] | Mapping[str, Any] = (), storage: str | None = None, progress: bool = True) -> Path:
    """Run the study file at ``path`` (or a shipped study's name) into a new folder under ``out`` and return it:
    tune every method with the same budget on the validation split, train each method's best settings with the
    table's seeds, score them on the test split, and write table.md. ``overrides`` (``KEY=VALUE``) go to every
    method's recipe. ``launcher``/``launcher_options`` as for :func:`mixframe.tools.sweep.sweep`; ``storage``: an
    Optuna RDB URL (default: SQLite in the folder). Interrupted or killed, :func:`resume_study` finishes it."""
    from mixframe.kernel.files import check_output_path
    from mixframe.tools.sweep import make_launcher

    plan = check_study(path, overrides)  # every method's recipe checked before anything trains
    out = Path(out)
    check_output_path(out, folder=True)
    stem = Path(plan.source).stem
    base = f"study-{stem}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    folder = out / base
    n = 1
    while True:
        try:
            folder.mkdir()
            break
        except FileExistsError:
            n += 1
            folder = out / f"{base}-{n}"
    try:
        _, launcher_record = make_launcher(launcher, launcher_options, folder.resolve())
    except BaseException:
        folder.rmdir()
        raise
    shutil.copyfile(plan.source, folder / STUDY_FILE)
    record = {"source": plan.source, "overrides": list(overrides), "created": _now(), "launcher": launcher_record,
              "storage": storage or f"sqlite:///{(folder / STORAGE_FILE).resolve()}", "metric": plan.spec.metric,
              "direction": plan.direction, "baseline": plan.spec.baseline,
              "constraints": {key: attrs.asdict(bound) for key, bound in plan.constraints.items()},
              "methods": {m.name: {"recipe": m.recipe, "overrides": list(m.overrides), "space": list(m.space), "skipped": m.skipped}
                          for m in plan.methods.values()},
              "runs": [], "best": {}, "state": "tuning"}
    # the study file is read from the folder from now on, so that a resumed study plans what this one did
    record["source"] = str((folder / STUDY_FILE).resolve())
    record["recipes_from"] = str(Path(plan.source).resolve().parent)
    if progress:
        print(f"study folder: {folder}")
        for m in plan.methods.values():
            for key, why in m.skipped.items():
                print(f"note: {m.name}: tune.space.{key} skipped ({why})")
    return _run(folder, record, launcher, launcher_options, progress)


def resume_study(folder: str | Path, *, launcher: str | Launcher | None = None, launcher_options: Sequence[str] | Mapping[str, Any] = (),
                 progress: bool = True) -> Path:
    """Finish a study that was stopped or killed: runs that completed are kept, unfinished ones continue from their
    last checkpoint, trials the storage holds unanswered are trained again with the settings they were given."""
    folder = Path(folder)
    record = read_study(folder)
    if progress:
        done = sum(r["status"] == "complete" for r in record["runs"])
        print(f"resuming {folder}: {done} runs complete")
    return _run(folder, record, launcher, launcher_options, progress)


def _plan_again(folder: Path, record: dict[str, Any]) -> Plan:
    """The plan from the study file kept in the folder, its recipe paths relative to where the original file was."""
    return check_study(folder.resolve() / STUDY_FILE, record.get("overrides", []), base=record.get("recipes_from"))


def _run(folder: Path, record: dict[str, Any], launcher: str | Launcher | None, launcher_options: Sequence[str] | Mapping[str, Any],
         progress: bool) -> Path:
    from mixframe.tools.sweep import make_launcher

    plan = _plan_again(folder, record)
    built, launcher_record = make_launcher(launcher, launcher_options, folder.resolve(), record.get("launcher"))
    record["launcher"] = launcher_record
    (folder / LOGS).mkdir(exist_ok=True)
    tuning = len(plan.tune.seeds) * plan.tune.trials if plan.tune is not None else 0
    state = StudyState(folder, record, progress, planned=len(plan.methods) * (tuning + len(plan.spec.seeds)))
    with _locked(folder):
        state.save()
        if plan.tune is not None and record["state"] == "tuning":
            _tune(folder, plan, state, built)
        record["state"] = "table"
        state.save()
        _table(folder, plan, state, built)
        record["state"] = "complete"
        state.save()
        write_table(folder)
    return folder


STOPPED = ("interrupted", "killed by", "the launcher ended", "still going in another process")


def _launch(state: StudyState, launcher: Launcher, runs: list[dict[str, Any]], trial_failures: bool = False) -> None:
    """Hand the runs that did not finish to the launcher. A run that was stopped (interrupted, killed) stops the
    study (mixframe study --resume continues it); one that failed by itself (a diverged trial) fails its trial
    when ``trial_failures``, else it stops the study too: a table is never made with a seed missing."""
    todo = [run for run in runs if run["status"] != "complete"]
    if not todo:
        return
    for run in todo:
        run["status"] = "pending"
    state.save()
    tasks = [RunTask(key=run["key"], label=run["label"], recipe=run["recipe"], overrides=tuple(run["overrides"]),
                     metrics=tuple(run["metrics_names"]), out=run["out"], name=run["name"], log=run["log"], split=run["split"],
                     eval_seeds=tuple(run.get("eval_seed_list", ()))) for run in todo]
    try:
        launcher.launch(tasks, state)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted; continue with: mixframe study --resume {state.folder}") from None
    failed = [run for run in todo if run["status"] != "complete"
              and not (trial_failures and run["status"] == "failed" and not any(w in run.get("message", "") for w in STOPPED))]
    if failed:
        state.save()
        lines = "; ".join(f"{run['label']}: {run.get('message', '')[:200]}" for run in failed[:5])
        raise MixframeError(f"{len(failed)} run(s) of the study did not finish ({lines}); fix the cause and continue with "
                            f"mixframe study --resume {state.folder}")


def _new_run(folder: Path, state: StudyState, plan: Plan, *, key: str, label: str, method: Method, extra: Sequence[str], seed: int,
             out: Path, split: str, phase: str, eval_seeds: Sequence[int] = (), **fields: Any) -> dict[str, Any]:
    existing = state.runs().get(key)
    if existing is not None:
        return existing
    run = {"key": key, "label": label, "phase": phase, "method": method.name, "seed": seed, "split": split, "recipe": method.recipe,
           "overrides": [*method.overrides, *extra, f"seed={seed}"], "metrics_names": list(plan.spec.metrics),
           "out": str(out.resolve()), "name": f"seed{seed}", "log": str((folder / LOGS / f"{key}.log").resolve()),
           "eval_seed_list": list(eval_seeds), "status": "pending", "message": "", "metrics": {}, "eval_seeds": {}, "run": None, **fields}
    state.record["runs"].append(run)
    return run


def _sampler(plan: Plan, number: int) -> Any:
    import optuna

    tune = plan.tune
    assert tune is not None
    startup = tune.startup_trials if tune.startup_trials is not None else max(1, tune.trials // 3)
    return optuna.samplers.TPESampler(seed=tune.sampler_seed + number, n_startup_trials=startup)


def _constrain(opt: Any, trial: Any, runs: Sequence[Mapping[str, Any]], constraints: Mapping[str, BoundSpec]) -> None:
    """Store how far the trial's mean (over its tuning seeds) of each constrained metric lies outside its bounds (0 inside),
    as Optuna constraints: TPE then models the good region from feasible trials, and :func:`best_of` skips the others."""
    import optuna

    live = optuna.trial.Trial(opt, trial._trial_id)  # the asked trial (a resumed one is only a FrozenTrial here)
    for key, bound in constraints.items():
        values = [float(run["metrics"].get(key, math.nan)) for run in runs]
        mean = statistics.fmean(values) if all(math.isfinite(v) for v in values) else math.nan
        outside = 1.0 if not math.isfinite(mean) else max(0.0, (bound.min - mean) if bound.min is not None else 0.0,
                                                              (mean - bound.max) if bound.max is not None else 0.0)
        live.set_constraint(key, outside)


def _distribution(rng: RangeSpec) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if rng.choices is not None:
        return CategoricalDistribution(rng.choices)
    if rng.type == "int":
        return IntDistribution(int(rng.low), int(rng.high), log=rng.log)  # type: ignore[arg-type]
    return FloatDistribution(rng.low, rng.high, log=rng.log)  # type: ignore[arg-type]


def _tune(folder: Path, plan: Plan, state: StudyState, launcher: Launcher) -> None:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tune = plan.tune
    assert tune is not None
    try:
        studies = {name: optuna.create_study(study_name=name, storage=state.record["storage"], load_if_exists=True,
                                             direction="maximize" if plan.direction == "max" else "minimize")
                   for name in plan.methods}
    except Exception as err:  # noqa: BLE001 - a storage URL we cannot use (no driver, no server, no access) is the user's to fix
        raise MixframeError(f"the tuning storage {state.record['storage']} cannot be used: {type(err).__name__}: {err} "
                            "(for --storage URL, install the database's driver and check the server)") from None
    while True:
        round_runs: list[dict[str, Any]] = []
        asked: list[tuple[str, Any, list[dict[str, Any]]]] = []
        for name, method in plan.methods.items():
            opt = studies[name]
            trials = opt.get_trials(deepcopy=False)
            waiting = [t for t in trials if t.state == TrialState.RUNNING]  # asked before a stop: trained again as they were
            if len(waiting) < tune.parallel:  # a round is tune.parallel trials (a stop between two asks: the rest of it)
                for _ in range(min(tune.parallel - len(waiting), tune.trials - len(trials))):
                    opt.sampler = _sampler(plan, len(opt.get_trials(deepcopy=False)))
                    new_trial = opt.ask({key: _distribution(rng) for key, rng in method.space.items()})
                    waiting.append(opt.get_trials(deepcopy=False)[new_trial.number])
            for trial in waiting:
                extra = [f"{k}={_dump(v)}" for k, v in trial.params.items()]
                runs = [_new_run(folder, state, plan, key=f"tune-{name}-{trial.number:03d}-{seed}", label=f"tune {name} trial {trial.number} seed {seed}",
                                 method=method, extra=extra, seed=seed, out=folder / "tune" / name / f"trial{trial.number:03d}",
                                 split="val", phase="tune", trial=trial.number, settings=dict(trial.params))
                        for seed in tune.seeds]
                round_runs += runs
                asked.append((name, trial, runs))
        if not asked:
            break
        state.save()
        _launch(state, launcher, round_runs, trial_failures=True)
        for name, trial, runs in asked:
            values = [run["metrics"].get(plan.spec.metric, math.nan) for run in runs]
            finite = [v for v in values if math.isfinite(v)]
            if len(finite) == len(values):
                _constrain(studies[name], trial, runs, plan.constraints)
                studies[name].tell(trial.number, statistics.fmean(finite))
            else:
                studies[name].tell(trial.number, state=TrialState.FAIL)
    for name, method in plan.methods.items():
        state.record["best"][name] = best_of(studies[name], method, plan.direction)
    state.save()
    if state.record["best"][plan.spec.baseline].get("unusable"):
        raise MixframeError(f"the baseline {plan.spec.baseline}: {state.record['best'][plan.spec.baseline]['unusable']}; nothing can be compared "
                            "with it: widen its search space or loosen the constraints in the study file, then start the study again")


def best_of(opt: Any, method: Method, direction: str) -> dict[str, Any]:
    """The best trial's settings and value among those that met the constraints, and the settings at the edge of their range."""
    from optuna.trial import TrialState

    done = [t for t in opt.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not done:
        raise MixframeError(f"method {method.name}: no tuning trial completed (each failed; see the study folder's logs)")
    infeasible = [t for t in done if any(v > 0 for v in t.constraints.values())]
    done = [t for t in done if t not in infeasible]
    counts = {"trials": len(opt.get_trials(deepcopy=False)), "failed": sum(t.state == TrialState.FAIL for t in opt.get_trials(deepcopy=False)),
              "infeasible": len(infeasible)}
    if not done:  # the method has no usable model in its budget: said in the table, left out of it
        return {"trial": None, "value": None, "settings": {}, "edges": {}, **counts,
                "unusable": f"no tuning trial met the constraints ({', '.join(infeasible[0].constraints)})"}
    best = (max if direction == "max" else min)(done, key=lambda t: (t.value, -t.number) if direction == "max" else (t.value, t.number))
    edges = {}
    for key, value in best.params.items():
        rng = method.space[key]
        if rng.choices is not None or not isinstance(value, (int, float)):
            continue
        low, high, v = (math.log(rng.low), math.log(rng.high), math.log(value)) if rng.log else (rng.low, rng.high, value)  # type: ignore[arg-type]
        share = (v - low) / (high - low)  # type: ignore[operator]  # numeric ranges have both ends
        if share <= EDGE or share >= 1 - EDGE:
            edges[key] = f"{value:g} is at the {'low' if share <= EDGE else 'high'} end of [{rng.low:g}, {rng.high:g}]: widen the range"
    return {"trial": best.number, "value": best.value, "settings": dict(best.params), "edges": edges, **counts}


def _table(folder: Path, plan: Plan, state: StudyState, launcher: Launcher) -> None:
    runs = []
    for name, method in plan.methods.items():
        if state.record["best"].get(name, {}).get("unusable"):
            continue  # no trial of its budget gave a usable model: table.md says so
        settings = state.record["best"].get(name, {}).get("settings", {})
        extra = [f"{k}={_dump(v)}" for k, v in settings.items()]
        for seed in plan.spec.seeds:
            runs.append(_new_run(folder, state, plan, key=f"table-{name}-{seed}", label=f"table {name} seed {seed}", method=method,
                                 extra=extra, seed=seed, out=folder / "table" / name, split="test", phase="table",
                                 eval_seeds=plan.spec.eval_seeds, settings=dict(settings)))
    state.save()
    _launch(state, launcher, runs)


def own_mix_key(metric: str, columns: Sequence[str]) -> str | None:
    """The column that scores ``metric`` on each run's own mixes, by the metrics' naming rule: ``own_mix_KEY``, or
    ``own_KEY`` for a key that starts with ``mix_`` (``mix_fid`` -> ``own_mix_fid``); None when no run measured it."""
    key = f"own_{metric}" if metric.startswith("mix_") else f"own_mix_{metric}"
    return key if key in columns else None


def code_versions(record: Mapping[str, Any]) -> dict[str, int]:
    """How many of the study's finished runs ran at each commit (from each run's environment.json), so that a table
    says whether it came from one version of the code."""
    from collections import Counter

    from mixframe.runs.folder import read_json

    found: Counter[str] = Counter()
    for run in record.get("runs", []):
        if run.get("run"):
            found[str(read_json(Path(run["run"]) / "environment.json").get("commit") or "unknown")] += 1
    return dict(found)


NEAR_CHANCE_AUC = 0.6  # a critic's probe AUC at or below this tells real data from blends hardly better than chance (0.5)


def critic_lines(frame: Any) -> list[str]:
    """table.md's lines on the table runs' critics: each method's last probe AUC (real data against data-space
    blends), so that a reader sees whether a critic still judged anything when training ended."""
    table = frame[(frame["phase"] == "table") & frame["critic_probe_auc"].notna()]
    if table.empty:
        return []
    lines = ["", "Critics at the end of training (each table run's last probe AUC, real examples against data-space blends "
             "of two of them, averaged over its critics; 0.5: the critic tells them apart no better than chance):", ""]
    for method, runs in table.groupby("method", sort=False):
        aucs = runs.sort_values("seed")
        near = [f"seed {seed} ({auc:.2f})" for seed, auc in zip(aucs["seed"], aucs["critic_probe_auc"]) if auc <= NEAR_CHANCE_AUC]
        lines.append(f"- {method}: {aucs['critic_probe_auc'].mean():.3f}, per seed "
                     + " ".join(f"{v:.3f}" for v in aucs["critic_probe_auc"])
                     + (f"; **near chance (<= {NEAR_CHANCE_AUC})**: {', '.join(near)}" if near else ""))
    return lines


def write_table(folder: str | Path) -> str:
    """table.md of a finished study: the comparison, the chosen settings (edges flagged), the skipped keys."""
    from mixframe.runs.folder import atomic_write_bytes
    from mixframe.tools.results import compare, markdown, results

    folder = Path(folder)
    record = read_study(folder)
    frame = results(folder)
    lines = [f"Study: `{record['source']}`" + (f" with --set {' '.join(record['overrides'])}" if record.get("overrides") else ""), "",
             markdown(compare(frame)), ""]
    own = own_mix_key(record["metric"], frame.columns)
    if own is not None:  # the methods with a mixer, each on the mixes it trained on
        lines += [f"On each method's own mixes ({own}: mixes made by its own trained mixer, the ones it trained on; a method "
                  "without a mixer has no row):", "", markdown(compare(frame, own)), ""]
    if record.get("best"):
        lines += ["Chosen settings (best mean on the validation split over the tuning seeds):", ""]
        for name, best in record["best"].items():
            if best.get("unusable"):
                lines.append(f"- {name}: **no usable model, so not in the table**: {best['unusable']} in {best['trials']} trials")
                continue
            chosen = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["settings"].items()) or "(no key applies)"
            lines.append(f"- {name}: {chosen} (trial {best['trial']} of {best['trials']}, {record['metric']} {best['value']:.4g} on val"
                         + (f", {best['failed']} failed" if best.get("failed") else "")
                         + (f", {best['infeasible']} outside the constraints" if best.get("infeasible") else "") + ")")
            lines += [f"  - **at an edge**: {why}" for why in best["edges"].values()]
    if record.get("constraints"):
        bounds = {key: BoundSpec(**bound) for key, bound in record["constraints"].items()}
        broken = [f"- {run['method']} seed {run['seed']}: {'; '.join(found)}" for run in record["runs"]
                  if run["phase"] == "table" and (found := violations(run["metrics"], bounds))]
        lines += ["", "Constraints (a usable model; tuning chose only among trials that met them): "
                  + ", ".join(f"{key} {_bounds_text(b)}" for key, b in bounds.items()), "",
                  *(["Table runs outside them (kept in the table, as measured):", "", *broken] if broken else ["Every table run met them."])]
    lines += critic_lines(frame)
    commits = code_versions(record)
    if len(commits) == 1:
        lines += ["", f"Code: every run at commit {next(iter(commits))}."]
    elif commits:
        lines += ["", "Code: **the runs ran at different commits** (the checkout changed while the study ran; a run whose code "
                  "changed under it may have failed or differ): " + ", ".join(f"{c} ({n} runs)" for c, n in commits.items()) + "."]
    skipped = [f"- {name}: {key} ({why})" for name, m in record["methods"].items() for key, why in m["skipped"].items()]
    if skipped:
        lines += ["", "Search keys skipped:", "", *skipped]
    text = "\n".join(lines) + "\n"
    atomic_write_bytes(folder / TABLE_FILE, text.encode())
    return text
