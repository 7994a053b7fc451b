"""Contract tests for plugin authors: subclass one in your test file and your component is checked.

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
from typing import Any, ClassVar

import torch

from mixframe.errors import RecipeError
from mixframe.kernel.interfaces import BuildContext, DataSpec, Discriminator, Mixer, MixResult, Regularizer, Step, blend
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

    def context(self) -> BuildContext:
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
    """Checks a mixer: shapes, weights that sum to one, codes that are the blend of the sources, gradients."""

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

    def test_codes_are_the_weighted_sum_of_sources(self) -> None:
        mixer, sources, result = self.mix()
        self.check_weights_shape(result, mixer.num_sources)
        expected = blend(sources, result.weights)
        error = (result.codes - expected).abs().max().item()
        assert torch.allclose(result.codes, expected, rtol=1e-4, atol=1e-4), (
            f"MixResult.codes differ from blend(sources, weights) by up to {error:.4g}; the codes must be "
            "sum_i weights[:, i] * sources[i], so that the weights describe the mix: build them with mixframe.blend(sources, weights)")

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
    """Checks a regularizer: named finite terms, gradients to its declared modules, a critic that trains."""

    kind = "regularizer"
    data: ClassVar[DataSpec] = DataSpec(shape=(1, 16, 16), attribute_names=())

    def step(self) -> Step:
        data_size, code_size = math.prod(self.data.shape), math.prod(self.code_shape)
        encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(data_size, code_size), torch.nn.Unflatten(1, self.code_shape))
        decoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(code_size, data_size), torch.nn.Unflatten(1, self.data.shape))
        decoder.to_data = lambda out: out  # type: ignore[attr-defined]
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
        sum(terms.values()).backward()
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
        first = float(sum(terms.values()).detach())
        for _ in range(30):
            loss = sum(reg.critic_loss(step).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert float(loss.detach()) < first, (
            f"the critic's loss did not fall on a fixed batch in 30 Adam steps ({first:.4g} -> {float(loss.detach()):.4g}): "
            "check that critic_loss uses the critic's parameters, that critic_parameters() returns them all, and that its "
            "inputs are detached fakes and reals")
