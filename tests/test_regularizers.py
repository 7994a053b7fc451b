"""The built-in regularizers on tiny 2-D problems: critics learn, gradients go where they should."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from mixframe import BuildContext, DataSpec, Decoder, Discriminator, Encoder, MixframeError, MixResult, Step
from mixframe.kernel.config import Problems, structure
from mixframe_plugins.regularizers._critic import LN2, has_spectral_norm
from mixframe_plugins.regularizers.acai import AcaiConfig, AcaiRegularizer
from mixframe_plugins.regularizers.adversarial import AdversarialConfig, AdversarialRegularizer
from mixframe_plugins.regularizers.consistency import ConsistencyConfig, ConsistencyRegularizer


@pytest.fixture(scope="module", autouse=True)
def _import_optimizer_machinery() -> None:
    """The first Adam step imports torch._dynamo (seconds); pay it once, outside the tests' timings."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p])
    p.sum().backward()
    opt.step()


class TinyBody(Discriminator):
    """A small MLP critic body on flattened inputs."""

    def __init__(self, in_features: int = 2, width: int = 16) -> None:
        super().__init__()
        self.out_features = width
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, width), nn.LeakyReLU(0.2))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Scale(Encoder):
    """f(x) = s x on 2-D data (s = 1: a perfect autoencoder with the identity decoder)."""

    def __init__(self, s: float = 1.0) -> None:
        super().__init__()
        self.code_shape, self.s = (2,), s

    def forward(self, x: Tensor) -> Tensor:
        return self.s * x


class Identity(Decoder):
    def forward(self, h: Tensor) -> Tensor:
        return h


def context(attributes: tuple[str, ...] = (), shape: tuple[int, ...] = (2,)) -> BuildContext:
    size = math.prod(shape)
    return BuildContext(data=DataSpec(shape=shape, attribute_names=attributes), code_shape=(2,),
                        build_discriminator=lambda: TinyBody(size))


def make_step(x: Tensor, x_rec: Tensor, x_mix: Tensor | None = None, *, y: Tensor | None = None,
              mix_labels: Tensor | None = None, alpha: Tensor | None = None, encoder: Encoder | None = None) -> Step:
    batch = x.shape[0]
    mix = None
    if x_mix is not None:
        a = alpha if alpha is not None else torch.full((batch,), 0.5)
        weights = torch.stack([a, 1 - a], dim=1)[:, :, None].expand(batch, 2, 2)
        mix = MixResult(codes=x_mix.detach().clone(), weights=weights, labels=mix_labels)
    return Step(x=x, y=y, h=x, x_rec=x_rec, mix=mix, x_mix=x_mix, encoder=encoder or Scale(), decoder=Identity())


def blobs(batch: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    """Real points near (2, 2), reconstructions near (-2, -2), mixes near (-2, 2): separable."""
    noise = lambda: 0.3 * torch.randn(batch, 2)  # noqa: E731
    return noise() + torch.tensor([2.0, 2.0]), noise() + torch.tensor([-2.0, -2.0]), noise() + torch.tensor([-2.0, 2.0])


def train_critic(reg: nn.Module, make: Callable[[], Step], steps: int = 60, lr: float = 1e-2) -> tuple[dict[str, float], dict[str, float]]:
    """Loss terms before and after ``steps`` Adam steps on the critic."""
    opt = torch.optim.Adam(reg.critic_parameters(), lr=lr)
    first: dict[str, float] = {}
    for i in range(steps):
        terms = reg.critic_loss(make())
        if i == 0:
            first = {k: v.item() for k, v in terms.items()}
        opt.zero_grad()
        sum(terms.values()).backward()
        opt.step()
    with torch.no_grad():
        last = {k: v.item() for k, v in reg.critic_loss(make()).items()}
    return first, last


@pytest.mark.parametrize("loss", ["bce", "least_squares"])
def test_adversarial_critic_learns_separable_fakes(loss: str) -> None:
    torch.manual_seed(0)
    reg = AdversarialRegularizer(AdversarialConfig(loss=loss), context())
    first, last = train_critic(reg, lambda: make_step(*blobs()))
    chance = reg.critic_chance()
    assert set(last) == set(chance) == {"d_real", "d_fake_rec", "d_fake_mix"}
    # Two fake terms: the best constant critic outputs 1/3 (BCE: ln 3 and ln 1.5; LS: 4/9 and 1/9).
    if loss == "bce":
        assert (chance["d_real"], chance["d_fake_mix"]) == pytest.approx((math.log(3), math.log(1.5)))
    else:
        assert (chance["d_real"], chance["d_fake_mix"]) == pytest.approx((4 / 9, 1 / 9))
    for name in last:
        assert last[name] < first[name] and last[name] < 0.3 * chance[name], (name, first[name], last[name])


def test_adversarial_generator_terms_reach_fakes_and_critic_terms_do_not() -> None:
    torch.manual_seed(0)
    reg = AdversarialRegularizer(AdversarialConfig(weight=2.0), context())
    x, x_rec, x_mix = blobs(8)
    x_rec.requires_grad_(True)
    x_mix.requires_grad_(True)
    step = make_step(x, x_rec, x_mix)

    sum(reg.critic_loss(step).values()).backward()
    assert x_rec.grad is None and x_mix.grad is None  # fakes detached
    assert all(p.grad is not None for p in reg.critic_parameters())

    terms = reg.autoencoder_loss(step)
    assert set(terms) == {"g_rec", "g_mix"}
    sum(terms.values()).backward()
    assert x_rec.grad is not None and x_rec.grad.abs().sum() > 0
    assert x_mix.grad is not None and x_mix.grad.abs().sum() > 0
    # weight multiplies the non-saturating generator loss BCE(D(fake), 1).
    with torch.no_grad():
        logits = reg.head(reg.body(x_rec)).squeeze(1)
        expected = 2.0 * nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(8))
    torch.testing.assert_close(terms["g_rec"].detach(), expected)


def test_adversarial_reconstruction_only_ignores_mixes() -> None:
    reg = AdversarialRegularizer(AdversarialConfig(judge=("reconstruction",)), context())
    x, x_rec, _ = blobs(8)
    step = make_step(x, x_rec)  # no mix at all: the AE+GAN baseline
    assert set(reg.critic_loss(step)) == set(reg.critic_chance()) == {"d_real", "d_fake_rec"}
    assert reg.critic_chance() == pytest.approx({"d_real": LN2, "d_fake_rec": LN2})
    assert set(reg.autoencoder_loss(step)) == {"g_rec"}


def test_adversarial_config_validation() -> None:
    problems = Problems()
    assert structure(AdversarialConfig, {"judge": ["mix", "pixels"], "weight": -1}, "regularizer", problems) is None
    text = str(problems.items)
    assert "regularizer.judge" in text and "pixels" in text and "regularizer.weight" in text
    problems = Problems()
    assert structure(AdversarialConfig, {"judge": []}, "r", problems) is None and problems
    cfg = structure(AdversarialConfig, {"judge": ["mix"], "loss": "least_squares"}, "r", Problems())
    assert cfg.judge == ("mix",)


@pytest.mark.parametrize("loss", ["bce", "least_squares"])
def test_adversarial_chance_is_what_a_blind_critic_reaches(loss: str) -> None:
    """A critic shown fakes identical to the reals can only learn the base rate: it ends at chance."""
    torch.manual_seed(0)
    for on in [("reconstruction",), ("reconstruction", "mix")]:
        reg = AdversarialRegularizer(AdversarialConfig(loss=loss, judge=on), context())

        def make() -> Step:
            x = torch.randn(64, 2)
            return make_step(x, x.clone(), x.clone() if "mix" in on else None)

        _, last = train_critic(reg, make, steps=150, lr=1e-2)
        chance = reg.critic_chance()
        assert set(last) == set(chance)
        for name in last:
            assert last[name] == pytest.approx(chance[name], abs=0.06), (on, name, last, chance)


def test_conditional_needs_attributes() -> None:
    with pytest.raises(MixframeError, match="binary attributes"):
        AdversarialRegularizer(AdversarialConfig(conditional="acgan"), context())
    with pytest.raises(MixframeError, match="discriminator"):
        AdversarialRegularizer(AdversarialConfig(), BuildContext(data=DataSpec(shape=(2,))))


def attribute_batch(batch: int = 64) -> tuple[Tensor, Tensor]:
    """2-D points with attributes 'x > 0' and 'y > 0'."""
    x = torch.randn(batch, 2) * 2
    return x, (x > 0).float()


def test_acgan_terms_and_class_head_learns_attributes() -> None:
    torch.manual_seed(0)
    reg = AdversarialRegularizer(AdversarialConfig(conditional="acgan", cls_weight=3.0), context(("a", "b")))

    def make() -> Step:
        x, y = attribute_batch()
        x_mix, y_mix = attribute_batch()
        return make_step(x, x + 0.5, x_mix, y=y, mix_labels=y_mix)

    step = make()
    assert set(reg.critic_loss(step)) == {"d_real", "d_fake_rec", "d_fake_mix", "d_cls"}
    assert reg.critic_chance()["d_cls"] == pytest.approx(LN2)
    terms = reg.autoencoder_loss(step)
    assert set(terms) == {"g_rec", "g_mix", "g_cls"}
    # g_cls judges the mixes against y_mix, weighted by cls_weight.
    with torch.no_grad():
        expected = 3.0 * nn.functional.binary_cross_entropy_with_logits(reg.cls_head(reg.body(step.x_mix)), step.mix.labels)
    torch.testing.assert_close(terms["g_cls"].detach(), expected)

    first, last = train_critic(reg, make, steps=80)
    assert last["d_cls"] < 0.5 * first["d_cls"] and last["d_cls"] < 0.5 * LN2
    x, y = attribute_batch(256)
    with torch.no_grad():
        accuracy = ((reg.cls_head(reg.body(x)) > 0).float() == y).float().mean().item()
    assert accuracy > 0.9


def test_acgan_without_mixed_labels_uses_reconstructions() -> None:
    torch.manual_seed(0)
    reg = AdversarialRegularizer(AdversarialConfig(conditional="acgan"), context(("a", "b")))
    x, y = attribute_batch(16)
    x_rec = x + 0.1
    step = make_step(x, x_rec, x * 0.5, y=y)  # e.g. plain mixup: no y_mix
    terms = reg.autoencoder_loss(step)
    with torch.no_grad():
        expected = nn.functional.binary_cross_entropy_with_logits(reg.cls_head(reg.body(x_rec)), y)
    torch.testing.assert_close(terms["g_cls"].detach(), expected)


def test_projection_depends_on_labels() -> None:
    torch.manual_seed(0)
    reg = AdversarialRegularizer(AdversarialConfig(conditional="projection"), context(("a", "b")))
    x, y = attribute_batch(16)
    step = make_step(x, x + 0.1, x * 0.5, y=y, mix_labels=1 - y)
    flipped = make_step(x, x + 0.1, x * 0.5, y=1 - y, mix_labels=y)
    a, b = reg.critic_loss(step), reg.critic_loss(flipped)
    assert set(a) == {"d_real", "d_fake_rec", "d_fake_mix"}
    assert all(not torch.isclose(a[k], b[k]) for k in a)
    g = reg.autoencoder_loss(step)
    assert set(g) == {"g_rec", "g_mix"} and not torch.isclose(g["g_mix"], reg.autoencoder_loss(flipped)["g_mix"])
    # The critic learns to tell matching from mismatched (x, y) pairs.
    def make() -> Step:
        x, y = attribute_batch()
        return make_step(x, x, x, y=y, mix_labels=1 - y)  # same images, wrong labels on the mixes
    reg_mix = AdversarialRegularizer(AdversarialConfig(conditional="projection", judge=("mix",)), context(("a", "b")))
    first, last = train_critic(reg_mix, make, steps=80)
    assert last["d_real"] + last["d_fake_mix"] < 0.5 * (first["d_real"] + first["d_fake_mix"])
    with pytest.raises(MixframeError, match="mixes labels"):
        reg.critic_loss(make_step(x, x, x, y=y))


@pytest.mark.parametrize("conditional", ["acgan", "projection"])
def test_spectral_norm_on_every_critic_layer(conditional: str) -> None:
    reg = AdversarialRegularizer(AdversarialConfig(spectral_norm=True, conditional=conditional), context(("a", "b")))
    layers = [m for m in reg.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 4 and all(has_spectral_norm(m) for m in layers)
    for _ in range(50):  # each access in training mode runs one power iteration; let the estimate converge
        weight = reg.body.net[1].weight
    sigma = torch.linalg.matrix_norm(weight.detach(), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.05)
    # Default: on for images, off otherwise.
    image = AdversarialRegularizer(AdversarialConfig(), context(shape=(1, 2, 2)))
    assert all(has_spectral_norm(m) for m in image.modules() if isinstance(m, nn.Linear))
    flat = AdversarialRegularizer(AdversarialConfig(), context())
    assert not any(has_spectral_norm(m) for m in flat.modules() if isinstance(m, nn.Linear))
    acai = AcaiRegularizer(AcaiConfig(spectral_norm=True), context())
    assert all(has_spectral_norm(m) for m in acai.modules() if isinstance(m, nn.Linear))


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_consistency(norm: str) -> None:
    torch.manual_seed(0)
    reg = ConsistencyRegularizer(ConsistencyConfig(weight=3.0, norm=norm), context())
    assert reg.critic_chance() == {}
    h_mix = torch.randn(8, 2)
    perfect = make_step(h_mix, h_mix, h_mix.clone(), encoder=Scale(1.0))
    assert reg.autoencoder_loss(perfect)["consistency"].item() == pytest.approx(0.0, abs=1e-7)
    # Encoder f(x) = 2x: f(g(h_mix)) - h_mix = h_mix.
    doubled = make_step(h_mix, h_mix, h_mix.clone(), encoder=Scale(2.0))
    expected = 3.0 * (h_mix.pow(2).mean() if norm == "l2" else h_mix.abs().mean())
    assert reg.autoencoder_loss(doubled)["consistency"].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(MixframeError, match="mixer"):
        reg.autoencoder_loss(make_step(h_mix, h_mix))


def acai_batch(batch: int = 128, fold: bool = True) -> Step:
    """Points (+-1, 0) mixed with their opposite: |x_mix| = 1 - 2 alpha, so alpha is learnable."""
    x = torch.zeros(batch, 2)
    x[:, 0] = torch.randint(0, 2, (batch,)).float() * 2 - 1
    x[:, 1] = 0.05 * torch.randn(batch)
    alpha = torch.rand(batch)
    if fold:
        alpha = 0.5 - (alpha - 0.5).abs()
    x_mix = alpha[:, None] * x + (1 - alpha[:, None]) * (-x)
    return make_step(x, x.clone(), x_mix, alpha=alpha)


def test_acai_chance_level() -> None:
    reg = AcaiRegularizer(AcaiConfig(), context())
    chance = reg.critic_chance()
    assert chance["d_mix"] == pytest.approx(1 / 48 + 1 / 64)
    assert chance["d_blend"] == pytest.approx(1 / 64)
    assert sum(chance.values()) == pytest.approx(0.0520833, abs=1e-6)
    # After seeing alphas ~ U(0, 1) (no folding) the chance level follows: E = 1/2, Var = 1/12.
    torch.manual_seed(0)
    reg.critic_loss(acai_batch(20000, fold=False))
    chance = reg.critic_chance()
    assert chance["d_mix"] == pytest.approx(1 / 12 + 1 / 16, abs=0.005)
    assert chance["d_blend"] == pytest.approx(1 / 16, abs=0.005)


def test_acai_critic_regresses_alpha() -> None:
    torch.manual_seed(0)
    reg = AcaiRegularizer(AcaiConfig(), context())
    first, last = train_critic(reg, acai_batch, steps=150, lr=3e-3)
    chance = sum(reg.critic_chance().values())
    assert chance == pytest.approx(0.052, abs=0.003)
    assert sum(last.values()) < 0.3 * chance, (first, last)


def test_acai_gradients() -> None:
    torch.manual_seed(0)
    reg = AcaiRegularizer(AcaiConfig(weight=0.5), context())
    step = acai_batch(16)
    step.x_mix.requires_grad_(True)
    step.x_rec.requires_grad_(True)
    sum(reg.critic_loss(step).values()).backward()
    assert step.x_mix.grad is None and step.x_rec.grad is None
    terms = reg.autoencoder_loss(step)
    assert set(terms) == {"g_mix"}
    terms["g_mix"].backward()
    assert step.x_mix.grad is not None and step.x_mix.grad.abs().sum() > 0
    with torch.no_grad():
        expected = 0.5 * reg.head(reg.body(step.x_mix)).pow(2).mean()
    torch.testing.assert_close(terms["g_mix"].detach(), expected)


def test_acai_rejects_per_channel_weights() -> None:
    reg = AcaiRegularizer(AcaiConfig(), context())
    step = acai_batch(8)
    a = torch.rand(8, 2)
    step.mix = MixResult(codes=step.mix.codes, weights=torch.stack([a, 1 - a], dim=1))
    with pytest.raises(MixframeError, match="one mixing weight per example"):
        reg.critic_loss(step)
