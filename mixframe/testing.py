"""Contract tests for plugin authors: subclass one in your test file and your component is checked.

One suite per kind: :class:`MixerContract`, :class:`RegularizerContract`, :class:`DatasetContract`,
:class:`MetricContract`, :class:`CallbackContract`, :class:`LauncherContract`.

    from mixframe.testing import MixerContract

    class TestHalfMixer(MixerContract):
        name = "half"                   # the registered name
        params = {"weight": 0.3}        # recipe parameters (optional)

pytest then runs every ``test_*`` method below against your component, built exactly as a recipe
would build it: found in the registry (so your entry point must be installed), its parameters
checked by its config class, the implementation called as ``Implementation(config, context)``.
Set ``registry`` to a :class:`mixframe.kernel.registry.Registry` built with in-process plugins
(``Registry(plugins=[(name, module)])``) to check a component that is not installed.
Every failed check says what the component did wrong and what to do about it.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from mixframe.errors import RecipeError
from mixframe.kernel.engine.loop import total
from mixframe.kernel.interfaces import (
    BuildContext,
    Callback,
    CriticSettings,
    DataBundle,
    DataContext,
    DataSpec,
    Discriminator,
    LaunchContext,
    Launcher,
    Mixer,
    MixResult,
    Regularizer,
    RunTask,
    Step,
    blend,
)
from mixframe.kernel.registry import Registry, get_registry
from mixframe.kernel.registry_types import Component


class _TinyCritic(Discriminator):
    """A small critic body for contract tests."""

    def __init__(self, data: DataSpec) -> None:
        super().__init__()
        self.out_features = 8
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(data.shape), 8), torch.nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Contract:
    kind: ClassVar[str]
    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    registry: ClassVar[Registry | None] = None
    """Where to find the component; None: the process-wide registry (installed plugins)."""
    data: ClassVar[DataSpec] = DataSpec(shape=(1, 16, 16), attribute_names=("a", "b", "c"))
    code_shape: ClassVar[tuple[int, ...]] = (8, 4, 4)
    batch: ClassVar[int] = 6

    def context(self) -> Any:
        """The kind's build context (:class:`BuildContext` here; datasets and launchers have their own)."""
        return BuildContext(data=self.data, code_shape=self.code_shape, build_discriminator=lambda: _TinyCritic(self.data))

    def component(self) -> Component:
        return (self.registry or get_registry()).get(self.kind, self.name)

    def build(self) -> Any:
        """The component built by the registry, exactly as a recipe builds it (``Registry.build``)."""
        try:
            return (self.registry or get_registry()).build(self.kind, self.name, dict(self.params), self.context())
        except RecipeError as err:
            raise AssertionError(f"params do not check against the config class: {err.problems}; fix params or the config's validators") from None

    def labels(self) -> torch.Tensor:
        return torch.randint(0, 2, (self.batch, len(self.data.attribute_names))).float()

    def test_registered_with_a_summary_and_documented_config(self) -> None:
        comp = self.component()
        assert comp.summary.strip(), f"{self.kind} {self.name!r} has an empty summary: give Component(summary=...) one line for listings"
        import attrs

        for field in attrs.fields(comp.config):
            assert field.metadata.get("help"), f"config field {field.name!r} has no help text (use mixframe.param(..., help=...))"
            if field.default is not attrs.NOTHING:
                continue
            assert field.name in self.params, f"config field {field.name!r} is required: set it in the contract's params"


class MixerContract(_Contract):
    """Checks a mixer: shapes, weights that sum to one, codes that are the mix the weights describe, gradients.

    The mix the weights describe is ``mixer.combine(sources, weights)``: ``blend`` for a convex mixer, the mixer's
    own geometry for one that overrides ``combine`` (slerp), which must then give back a source for a one-hot weight."""

    kind = "mixer"

    def mix(self, requires_grad: bool = False) -> tuple[Mixer, list[torch.Tensor], MixResult]:
        mixer = self.build()
        sources = [torch.randn(self.batch, *self.code_shape, requires_grad=requires_grad) for _ in range(mixer.num_sources)]
        labels = [self.labels() for _ in sources] if mixer.uses_labels else None
        result = mixer(sources, labels)
        assert isinstance(result, MixResult), f"forward returned {type(result).__name__}; it must return a mixframe.MixResult"
        return mixer, sources, result

    def check_weights_shape(self, result: MixResult, k: int) -> None:
        per_map = (self.batch, k, self.code_shape[0])
        full = (self.batch, k, *self.code_shape)
        shape = tuple(result.weights.shape)
        assert shape in (per_map, full), (
            f"MixResult.weights has shape {shape}; it must be (B, k, C) = {per_map}, one weight per source and feature map "
            f"broadcast over positions, or (B, k, *code_shape) = {full}, one weight per source, feature map and position "
            f"(k = num_sources = {k}; set num_sources for a k-way mixer)")

    def test_mixed_codes_have_the_shape_of_a_source(self) -> None:
        _, sources, result = self.mix()
        assert result.codes.shape == sources[0].shape, (
            f"MixResult.codes has shape {tuple(result.codes.shape)}; it must have the shape of one source batch "
            f"(B, *code_shape) = {tuple(sources[0].shape)}")

    def test_weights_are_a_distribution_over_sources(self) -> None:
        mixer, _, result = self.mix()
        self.check_weights_shape(result, mixer.num_sources)
        weights = result.weights.detach().float()
        assert bool(torch.all(weights >= -1e-6)), (
            f"MixResult.weights has negative entries (min {weights.min().item():.4g}); each weight must be in [0, 1]")
        error = (weights.sum(1) - 1).abs().max().item()
        assert error <= 1e-4, (
            f"MixResult.weights sum over the sources (axis 1) to values up to {error:.4g} away from 1; they must sum to 1 "
            "for every example, feature map (and position): stack the weight of each source, e.g. "
            "torch.stack([w, 1 - w], dim=1)")

    def test_codes_are_the_mix_their_weights_describe(self) -> None:
        mixer, sources, result = self.mix()
        self.check_weights_shape(result, mixer.num_sources)
        expected = mixer.combine(sources, result.weights)
        error = (result.codes - expected).abs().max().item()
        if type(mixer).combine is Mixer.combine:
            assert torch.allclose(result.codes, expected, rtol=1e-4, atol=1e-4), (
                f"MixResult.codes differ from blend(sources, weights) by up to {error:.4g}; the codes must be "
                "sum_i weights[:, i] * sources[i], so that the weights describe the mix: build them with mixframe.blend(sources, weights), "
                "or, for a mix that is not a convex combination, override Mixer.combine(sources, weights) and build them with it")
        else:
            assert torch.allclose(result.codes, expected, rtol=1e-4, atol=1e-4), (
                f"MixResult.codes differ from {type(mixer).__name__}.combine(sources, weights) by up to {error:.4g}; build the codes "
                "with self.combine(sources, weights), so that the weights describe the mix")

    def test_a_one_hot_weight_gives_back_that_source(self) -> None:
        mixer, sources, result = self.mix()
        for i, source in enumerate(sources):
            one_hot = torch.zeros_like(result.weights)
            one_hot[:, i] = 1
            back = mixer.combine(sources, one_hot)
            error = (back - source).abs().max().item()
            assert torch.allclose(back, source, rtol=1e-4, atol=1e-4), (
                f"combine(sources, weights) with all the weight on source {i} differs from that source by up to {error:.4g}; "
                "a mix must reach each of its sources at the ends of its weights (fix Mixer.combine)")

    def test_gradient_reaches_every_source(self) -> None:
        _, sources, result = self.mix(requires_grad=True)
        assert result.codes.requires_grad, (
            "MixResult.codes do not require grad although the sources do: build them from the sources with differentiable "
            "ops (mixframe.blend), not under torch.no_grad or from detached copies")
        result.codes.sum().backward()
        reached = [s.grad is not None and bool(s.grad.abs().sum() > 0) for s in sources]
        assert any(reached), (
            "no gradient reaches any source through MixResult.codes: the autoencoder could not learn from mixes; "
            "build the codes with mixframe.blend(sources, weights) and do not detach the sources")


class RegularizerContract(_Contract):
    """Checks a regularizer: named finite terms, gradients to its declared modules, a critic that trains, with the
    steps and Adam settings it asks for (``critic_settings``)."""

    kind = "regularizer"
    data: ClassVar[DataSpec] = DataSpec(shape=(1, 16, 16), attribute_names=())

    def step(self) -> Step:
        data_size, code_size = math.prod(self.data.shape), math.prod(self.code_shape)
        encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(data_size, code_size), torch.nn.Unflatten(1, self.code_shape))
        decoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(code_size, data_size), torch.nn.Unflatten(1, self.data.shape))
        decoder.to_data = lambda out: out  # type: ignore[assignment]
        x = torch.rand(self.batch, *self.data.shape) * 2 - 1
        h = encoder(x)
        x_rec = decoder(h)
        alpha = torch.rand(self.batch, 1).expand(-1, self.code_shape[0])
        weights = torch.stack([alpha, 1 - alpha], 1)  # mixup: (B, 2, C)
        codes = blend([h, h.flip(0)], weights)
        mix = MixResult(codes=codes, weights=weights)
        return Step(x=x, y=None, h=h, x_rec=x_rec, mix=mix, x_mix=decoder(codes), encoder=encoder, decoder=decoder)  # type: ignore[arg-type]

    def test_autoencoder_terms_are_finite_and_reach_the_declared_modules(self) -> None:
        reg: Regularizer = self.build()
        targets = tuple(reg.gradient_targets)
        assert targets and set(targets) <= {"encoder", "decoder"}, (
            f"gradient_targets is {targets!r}; it must name the modules its terms reach, among 'encoder' and 'decoder'")
        step = self.step()
        terms = reg.autoencoder_loss(step)
        assert terms, "autoencoder_loss returned no terms; return {name: weighted scalar term}"
        for name, term in terms.items():
            assert isinstance(term, torch.Tensor) and term.dim() == 0, (
                f"term {name!r} is not a scalar tensor ({getattr(term, 'shape', type(term).__name__)}); reduce it, e.g. with .mean()")
            assert bool(torch.isfinite(term)), f"term {name!r} is {term.item()} on a random batch; it must be finite"
        total(terms).backward()
        for target in targets:
            module = getattr(step, target)
            assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()), (
                f"no gradient from autoencoder_loss reaches the {target}'s parameters, but gradient_targets = {targets!r} "
                f"declares it: declare only what the terms reach (('encoder',) for a penalty on the codes alone), and build "
                "terms on step.x_rec / step.x_mix (decoder and encoder) or step.h / step.mix.codes (encoder) without detaching them")

    def test_critic_terms_have_chance_levels_and_the_critic_trains(self) -> None:
        reg: Regularizer = self.build()
        params = list(reg.critic_parameters())
        if not params:
            assert reg.critic_loss(self.step()) == {}, (
                "critic_loss returned terms but critic_parameters() is empty: return the critic's parameters so they train")
            return
        step = self.step()
        terms = reg.critic_loss(step)
        assert terms, "critic_parameters() is not empty but critic_loss returned no terms; return {name: critic term}"
        assert set(reg.critic_chance()) == set(terms), (
            f"critic_chance() names {sorted(reg.critic_chance())} but critic_loss() returns {sorted(terms)}: "
            "give the chance level of every critic term, under the same names")
        opt = torch.optim.Adam(params, lr=1e-3)
        first = float(total(terms).detach())
        for _ in range(30):
            loss = total(reg.critic_loss(step))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert float(loss.detach()) < first, (
            f"the critic's loss did not fall on a fixed batch in 30 Adam steps ({first:.4g} -> {float(loss.detach()):.4g}): "
            "check that critic_loss uses the critic's parameters, that critic_parameters() returns them all, and that its "
            "inputs are detached fakes and reals")

    def test_critic_settings_are_usable_and_train_the_critic(self) -> None:
        reg: Regularizer = self.build()
        settings = reg.critic_settings()
        assert isinstance(settings, CriticSettings), (
            f"critic_settings() returned {type(settings).__name__}; return a mixframe.CriticSettings (fields left None use the recipe's)")
        if not list(reg.critic_parameters()):
            assert settings == CriticSettings(), "critic_settings() asks for critic steps or an optimizer, but critic_parameters() is empty"
            return
        assert settings.steps is None or (isinstance(settings.steps, int) and settings.steps >= 1), (
            f"CriticSettings.steps is {settings.steps!r}; it must be a whole number of critic steps per autoencoder update (>= 1), or None")
        assert settings.lr is None or settings.lr > 0, f"CriticSettings.lr is {settings.lr!r}; it must be positive, or None"
        assert settings.betas is None or (len(settings.betas) == 2 and all(0 <= b < 1 for b in settings.betas)), (
            f"CriticSettings.betas is {settings.betas!r}; Adam's betas are two numbers in [0, 1), or None")
        assert settings.weight_decay is None or settings.weight_decay >= 0, "CriticSettings.weight_decay must be >= 0, or None"
        opt = torch.optim.Adam(list(reg.critic_parameters()), lr=settings.lr or 1e-3, betas=settings.betas or (0.5, 0.99),
                               weight_decay=settings.weight_decay or 0.0)
        step = self.step()
        first = float(total(reg.critic_loss(step)).detach())
        for _ in range(10 * (settings.steps or 1)):  # the steps it asks for, as the engine would take them
            loss = total(reg.critic_loss(step))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert bool(torch.isfinite(loss)) and float(loss.detach()) < first, (
            f"with its own settings {settings}, the critic's loss did not fall on a fixed batch ({first:.4g} -> {float(loss.detach()):.4g}): "
            "check the learning rate and betas it asks for")


class DatasetContract(_Contract):
    """Checks a dataset: three non-empty splits of ``(x, y)`` with ``x`` of ``spec.shape`` in ``spec.value_range`` and ``y`` as
    ``label_kind`` says, built the same way twice. ``params`` must make it buildable where the test runs (a folder in ``params``
    for a dataset of files); ``examples`` is how many examples of each split are looked at."""

    kind = "dataset"
    examples: ClassVar[int] = 8

    def context(self) -> DataContext:
        return DataContext(seed=0)

    def test_splits_hold_examples_as_the_spec_describes(self) -> None:
        bundle: DataBundle = self.build()
        spec = bundle.spec
        assert bundle.label_kind in ("class", "attributes", "factors", "none"), (
            f"label_kind is {bundle.label_kind!r}; it must be 'class', 'attributes', 'factors' or 'none'")
        low, high = spec.value_range
        for split in ("train", "val", "test"):
            data = getattr(bundle, split)
            assert len(data) > 0, f"the {split} split is empty; every split needs examples (check the split sizes in params)"
            for i in range(min(self.examples, len(data))):
                x, y = data[i]
                assert isinstance(x, torch.Tensor) and x.is_floating_point() and tuple(x.shape) == tuple(spec.shape), (
                    f"{split}[{i}]: x is {getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}; it must be a float "
                    f"tensor of spec.shape {tuple(spec.shape)}")
                assert bool(torch.isfinite(x).all()) and x.min() >= low - 1e-5 and x.max() <= high + 1e-5, (
                    f"{split}[{i}]: x spans [{float(x.min()):.4g}, {float(x.max()):.4g}], outside spec.value_range {spec.value_range}: "
                    "scale the examples to it (the decoder's output is compared with them)")
                self.check_label(bundle, split, i, y)

    def check_label(self, bundle: DataBundle, split: str, i: int, y: Any) -> None:
        spec, kind = bundle.spec, bundle.label_kind
        where = f"{split}[{i}]: label_kind {kind!r} but y is {y!r}"
        if kind == "class":
            assert isinstance(y, torch.Tensor) and y.dtype == torch.int64 and y.dim() == 0, f"{where}; it must be an int64 scalar"
            assert spec.num_classes is not None and 0 <= int(y) < spec.num_classes, f"{where}; it must be in [0, spec.num_classes)"
        elif kind == "attributes":
            assert isinstance(y, torch.Tensor) and y.is_floating_point() and tuple(y.shape) == (len(spec.attribute_names),), (
                f"{where}; it must be a float vector of len(spec.attribute_names) = {len(spec.attribute_names)}")
            assert bool(((y == 0) | (y == 1)).all()), f"{where}; attributes are 0 or 1"
        elif kind == "factors":
            assert isinstance(y, torch.Tensor) and y.dtype == torch.int64 and tuple(y.shape) == (len(spec.factor_sizes),), (
                f"{where}; it must be an int64 vector of len(spec.factor_sizes) = {len(spec.factor_sizes)}")
            assert all(0 <= int(v) < n for v, n in zip(y, spec.factor_sizes)), f"{where}; each factor must be below its size"

    def test_the_same_config_builds_the_same_examples(self) -> None:
        first, second = self.build(), self.build()
        assert first.spec == second.spec, f"two builds gave different specs: {first.spec} and {second.spec}"
        for split in ("train", "val", "test"):
            a, b = getattr(first, split), getattr(second, split)
            assert len(a) == len(b), f"two builds gave {split} splits of {len(a)} and {len(b)} examples; fix the split with the config's seed"
            for i in range(min(self.examples, len(a))):
                assert torch.equal(a[i][0], b[i][0]), (
                    f"two builds with the same config differ at {split}[{i}]: draw anything random from a generator seeded by the config, "
                    "so that a run's splits are the same when it is resumed or evaluated")


class _TrainedRun:
    """A tiny run trained once per contract class (in a temporary folder), for the suites that need one."""

    recipe: ClassVar[str] = "spiral_amr"
    """The recipe (a shipped name or a path) trained for the run; with ``overrides`` (a few steps by default)."""
    overrides: ClassVar[tuple[str, ...]] = ("train.epochs=1", "train.max_steps=4", "data.n_train=256", "data.n_val=64", "data.n_test=64",
                                            "encoder.hidden=[16]", "decoder.hidden=[16]", "discriminator.hidden=[16]", "callbacks=[]")
    _runs: ClassVar[dict[tuple[str, tuple[str, ...]], Any]] = {}

    def trained_run(self, overrides: tuple[str, ...] = ()) -> Any:
        from mixframe.runs.api import train

        key = (self.recipe, (*self.overrides, *overrides))
        if key not in _TrainedRun._runs:
            folder = tempfile.mkdtemp(prefix="mixframe-contract-")
            _TrainedRun._runs[key] = train(self.recipe, list(key[1]), out=folder, progress=False)
        return _TrainedRun._runs[key]


class MetricContract(_Contract, _TrainedRun):
    """Checks a metric on a tiny trained run (``recipe`` with ``overrides``: set them to data the metric needs): a flat mapping
    of names to finite floats, each with a meaning (``Metric.meanings``), the headline among them, the same numbers twice."""

    kind = "metric"

    def context(self) -> BuildContext:
        run = self.trained_run()
        return BuildContext(data=run.spec, code_shape=tuple(run.encoder.code_shape))

    def evaluate(self) -> dict[str, float]:
        values = self.build().evaluate(self.trained_run())
        assert isinstance(values, Mapping) and values, f"evaluate returned {values!r}; return a non-empty mapping of name to number"
        return dict(values)

    def test_values_are_finite_named_numbers_with_meanings(self) -> None:
        metric = self.build()
        values = self.evaluate()
        for name, value in values.items():
            assert isinstance(name, str) and isinstance(value, (int, float)) and not isinstance(value, bool), (
                f"{name!r}: {value!r}; values are plain numbers under string names (float(tensor) for a tensor)")
            assert math.isfinite(float(value)), f"{name!r} is {value} on a trained run; it must be finite"
            patterns = [re.escape(k).replace(r"\{n\}", r"\d+") for k in metric.meanings]
            assert any(re.fullmatch(p, name) for p in patterns), (
                f"{name!r} has no meaning: add it to the metric's meanings (a key may hold {{n}} for a family of names), "
                "so that reports and mixframe evaluate say what it is")
        assert metric.headline is None or metric.headline in values, (
            f"headline is {metric.headline!r} but evaluate returned {sorted(values)}; name one of its values, or None")

    def test_the_same_run_gives_the_same_numbers(self) -> None:
        first, second = self.evaluate(), self.evaluate()
        assert first == second, (f"two evaluations of one run differ: {first} and {second}; seed anything random from run.seed "
                                 "and the metric's own seed parameter")


class CallbackContract(_Contract, _TrainedRun):
    """Checks a callback in a real training run of ``recipe`` (a few steps) that names it with ``params``: it builds as a
    mixframe.Callback, every event it reacts to runs without error, and the run ends complete."""

    kind = "callback"

    def context(self) -> BuildContext:
        return BuildContext(data=DataSpec(shape=(2,)), code_shape=(2,))

    def test_a_run_that_names_it_completes(self) -> None:
        import json

        assert isinstance(self.build(), Callback)
        entry = json.dumps({"kind": self.name, **self.params})
        run = self.trained_run((f"callbacks=[{entry}]",))
        info = run.folder.info()
        assert info.get("status") == "complete", f"the run that names callback {self.name!r} ended {info.get('status')!r}: {info}"

    def test_an_evaluation_reaches_it_when_it_defines_on_evaluation(self) -> None:
        """A callback class that defines ``on_evaluation`` is built from the run's recipe and hears both splits' numbers."""
        import json

        if getattr(self.component().implementation, "on_evaluation", None) is Callback.on_evaluation:
            return  # it records nothing of evaluations
        run = self.trained_run((f"callbacks=[{json.dumps({'kind': self.name, **self.params})}]",))
        for split in ("test", "val"):
            values = run.evaluate(["reconstruction"], split=split)
            assert values, f"evaluating the run that names callback {self.name!r} on {split} gave no numbers"


class _Events:
    """What a launcher told the sweep (a :class:`mixframe.kernel.interfaces.LaunchEvents`)."""

    def __init__(self) -> None:
        self.began: list[str] = []
        self.ended: dict[str, Mapping[str, Any]] = {}

    def started(self, task: RunTask, where: str = "") -> None:
        self.began.append(task.key)

    def finished(self, task: RunTask, outcome: Mapping[str, Any]) -> None:
        self.ended[task.key] = outcome


class LauncherContract(_Contract):
    """Checks a launcher on two real tasks, a tiny run and one whose recipe does not exist: it says when each starts and
    ends, the good one completes with its run and metrics, the bad one is a failed outcome (never an exception), and
    ``launch`` returns once both have ended. ``params`` are its options (one job at a time is enough)."""

    kind = "launcher"
    overrides: ClassVar[tuple[str, ...]] = ("train.epochs=1", "train.max_steps=2", "data.n_train=256", "data.n_val=64", "data.n_test=64",
                                            "encoder.hidden=[16]", "decoder.hidden=[16]", "discriminator.hidden=[16]", "callbacks=[]")
    _folder: ClassVar[Path | None] = None

    def folder(self) -> Path:
        if type(self)._folder is None:
            type(self)._folder = Path(tempfile.mkdtemp(prefix="mixframe-launcher-contract-"))
        return type(self)._folder  # type: ignore[return-value]

    def context(self) -> LaunchContext:
        return LaunchContext(folder=self.folder())

    def task(self, key: str, recipe: str) -> RunTask:
        out = self.folder() / "runs"
        return RunTask(key=key, label=key, recipe=recipe, overrides=self.overrides, metrics=("reconstruction",), out=str(out), name=key,
                       log=str(self.folder() / f"{key}.log"), threads=1)

    def test_every_task_starts_and_ends_and_a_failure_is_an_outcome(self) -> None:
        launcher: Launcher = self.build()
        from mixframe.kernel.shipped import path_of

        good, bad = self.task("good", str(path_of("spiral_amr"))), self.task("bad", str(self.folder() / "no_such_recipe.yaml"))
        events = _Events()
        launcher.launch([good, bad], events)
        assert sorted(events.began) == ["bad", "good"], f"started was told of {events.began}; tell events.started of every task"
        assert sorted(events.ended) == ["bad", "good"], f"finished was told of {sorted(events.ended)}; every task must end"
        done, failed = events.ended["good"], events.ended["bad"]
        assert done.get("status") == "complete" and done.get("metrics") and Path(str(done.get("run"))).is_dir(), (
            f"the tiny run's outcome is {done}; hand events.finished the dict run_task returned (see {good.log})")
        assert failed.get("status") == "failed" and failed.get("message"), (
            f"the missing recipe's outcome is {failed}; a run's failure is an outcome with status 'failed' and a message")
