"""Contract tests for plugin authors: subclass one in your test file and your component is checked.

    from mixframe.testing import MixerContract

    class TestHalfMixer(MixerContract):
        name = "half"                   # the registered name
        params = {"weight": 0.3}        # recipe parameters (optional)

pytest then runs every ``test_*`` method below against your component, built exactly as a recipe
would build it: found in the registry (so your entry point must be installed), its parameters
checked by its config class, the implementation called as ``Implementation(config, context)``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from mixframe.config import Problems, structure
from mixframe.interfaces import BuildContext, DataSpec, Discriminator, Mixer, MixResult, Regularizer, Step
from mixframe.registry import get_registry


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
    data: ClassVar[DataSpec] = DataSpec(shape=(1, 16, 16), attribute_names=("a", "b", "c"))
    code_shape: ClassVar[tuple[int, ...]] = (8, 4, 4)
    batch: ClassVar[int] = 6

    def context(self) -> BuildContext:
        return BuildContext(data=self.data, code_shape=self.code_shape, build_discriminator=lambda: _TinyCritic(self.data))

    def build(self) -> Any:
        comp = get_registry().get(self.kind, self.name)
        problems = Problems()
        config = structure(comp.config, dict(self.params), f"{self.kind} {self.name}", problems)
        assert not problems, f"params do not check: {problems.items}"
        return comp.implementation(config, self.context())

    def labels(self) -> torch.Tensor:
        return torch.randint(0, 2, (self.batch, len(self.data.attribute_names))).float()

    def test_registered_with_a_summary_and_documented_config(self) -> None:
        comp = get_registry().get(self.kind, self.name)
        assert comp.summary.strip(), "give the component a one-line summary"
        import attrs

        for field in attrs.fields(comp.config):
            assert field.metadata.get("help"), f"config field {field.name!r} has no help text (use mixframe.param(..., help=...))"
            if field.default is not attrs.NOTHING:
                continue
            assert field.name in self.params, f"required field {field.name!r}: set it in params"


class MixerContract(_Contract):
    """Checks a mixer: shapes, weights that sum to one, codes in the span of the sources, gradients."""

    kind = "mixer"

    def mix(self, requires_grad: bool = False) -> tuple[Mixer, list[torch.Tensor], MixResult]:
        mixer = self.build()
        sources = [torch.randn(self.batch, *self.code_shape, requires_grad=requires_grad) for _ in range(mixer.num_sources)]
        labels = [self.labels() for _ in sources] if mixer.uses_labels else None
        return mixer, sources, mixer(sources, labels)

    def test_mixed_codes_have_the_shape_of_a_source(self) -> None:
        _, sources, result = self.mix()
        assert isinstance(result, MixResult)
        assert result.codes.shape == sources[0].shape

    def test_weights_are_a_distribution_over_sources(self) -> None:
        mixer, _, result = self.mix()
        assert result.weights.shape == (self.batch, mixer.num_sources, self.code_shape[0])
        assert torch.all(result.weights >= -1e-6)
        torch.testing.assert_close(result.weights.sum(1), torch.ones(self.batch, self.code_shape[0]))

    def test_codes_are_the_weighted_sum_of_sources(self) -> None:
        _, sources, result = self.mix()
        weights = result.weights.reshape(*result.weights.shape, *([1] * (len(self.code_shape) - 1)))
        expected = sum(weights[:, i] * s for i, s in enumerate(sources))
        torch.testing.assert_close(result.codes, expected, rtol=1e-4, atol=1e-4)

    def test_gradient_reaches_every_source(self) -> None:
        mixer, sources, result = self.mix(requires_grad=True)
        result.codes.sum().backward()
        if mixer.num_sources > 1:
            assert any(s.grad is not None and s.grad.abs().sum() > 0 for s in sources)


class RegularizerContract(_Contract):
    """Checks a regularizer: named finite terms, gradients to the decoded tensors, a critic that trains."""

    kind = "regularizer"
    data: ClassVar[DataSpec] = DataSpec(shape=(1, 16, 16), attribute_names=())

    def step(self) -> Step:
        encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 128), torch.nn.Unflatten(1, self.code_shape))
        decoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(128, 256), torch.nn.Unflatten(1, self.data.shape))
        decoder.to_data = lambda out: out  # type: ignore[attr-defined]
        x = torch.rand(self.batch, *self.data.shape) * 2 - 1
        h = encoder(x)
        x_rec = decoder(h)
        alpha = torch.rand(self.batch, 1)
        weights = torch.stack([alpha.expand(-1, self.code_shape[0]), 1 - alpha.expand(-1, self.code_shape[0])], 1)
        codes = alpha.view(-1, 1, 1, 1) * h + (1 - alpha.view(-1, 1, 1, 1)) * h.flip(0)
        mix = MixResult(codes=codes, weights=weights)
        return Step(x=x, y=None, h=h, x_rec=x_rec, mix=mix, x_mix=decoder(codes), encoder=encoder, decoder=decoder)  # type: ignore[arg-type]

    def test_autoencoder_terms_are_finite_and_reach_the_decoder(self) -> None:
        reg: Regularizer = self.build()
        step = self.step()
        terms = reg.autoencoder_loss(step)
        assert terms, "autoencoder_loss returned no terms"
        total = sum(terms.values())
        assert torch.isfinite(total)
        total.backward()
        assert any(p.grad is not None for p in step.decoder.parameters())

    def test_critic_terms_have_chance_levels_and_the_critic_trains(self) -> None:
        reg: Regularizer = self.build()
        params = list(reg.critic_parameters())
        if not params:
            assert reg.critic_loss(self.step()) == {}
            return
        step = self.step()
        terms = reg.critic_loss(step)
        assert set(reg.critic_chance()) == set(terms), "critic_chance() must name the same terms as critic_loss()"
        opt = torch.optim.Adam(params, lr=1e-3)
        first = float(sum(terms.values()).detach())
        for _ in range(30):
            loss = sum(reg.critic_loss(step).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert float(loss.detach()) < first, "the critic's loss did not fall on a fixed batch"
