"""The built-in mixers: shapes, weight conventions, sampler statistics and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from mixframe import BuildContext, DataSpec, MixframeError
from mixframe_plugins.mixers.bernoulli import BernoulliConfig, BernoulliMixer
from mixframe_plugins.mixers.class_mixer import ClassMixer, ClassMixerConfig
from mixframe_plugins.mixers.kway import KWayConfig, KWayMixer
from mixframe_plugins.mixers.mixup import MixupConfig, MixupMixer
from mixframe_plugins.mixers.none import NoneConfig, NoneMixer

C = 6
CTX = BuildContext(data=DataSpec(shape=(1, 8, 8)), code_shape=(C, 2, 2))
ATTR_CTX = BuildContext(data=DataSpec(shape=(1, 8, 8), attribute_names=("a", "b", "c")), code_shape=(C, 2, 2))


def codes(batch: int = 32, shape: tuple[int, ...] = (C, 2, 2), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *shape, generator=gen), torch.randn(batch, *shape, generator=gen)


def check_weights(weights: torch.Tensor, batch: int, k: int) -> None:
    assert weights.shape == (batch, k, C)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch, C))


def test_none_passes_codes_through() -> None:
    mixer = NoneMixer(NoneConfig(), CTX)
    h, _ = codes()
    out = mixer([h])
    assert mixer.num_sources == 1 and out.codes is h
    check_weights(out.weights, 32, 1)


@pytest.mark.parametrize("shape", [(C, 2, 2), (C,)])
def test_mixup_alpha_in_range_and_mix_matches(shape: tuple[int, ...]) -> None:
    h, h2 = codes(shape=shape)
    out = MixupMixer(MixupConfig(fold=True), CTX)([h, h2])
    check_weights(out.weights, 32, 2)
    alpha = out.weights[:, 0, 0]
    assert bool((alpha >= 0).all() and (alpha <= 0.5).all())
    view = alpha.reshape(-1, *([1] * len(shape)))
    torch.testing.assert_close(out.codes, view * h + (1 - view) * h2)


@pytest.mark.parametrize("shape", [(C, 2, 2), (C,)])
def test_bernoulli_mask_is_binary_and_mixes_whole_feature_maps(shape: tuple[int, ...]) -> None:
    h, h2 = codes(shape=shape)
    out = BernoulliMixer(BernoulliConfig(sampler="per_example"), CTX)([h, h2])
    check_weights(out.weights, 32, 2)
    m = out.weights[:, 0]
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    view = m.reshape(32, C, *([1] * (len(shape) - 1)))
    torch.testing.assert_close(out.codes, torch.where(view.bool(), h, h2))
    assert out.extras["p"].shape == (32, C)


def test_bernoulli_per_example_mean_is_one_half() -> None:
    torch.manual_seed(0)
    h, h2 = codes(batch=2000, shape=(C,))
    out = BernoulliMixer(BernoulliConfig(sampler="per_example"), CTX)([h, h2])
    p = out.extras["p"]
    assert p.std() > 0.2  # p varies per example and channel
    assert abs(out.weights[:, 0].mean().item() - 0.5) < 0.02
    # m ~ Bernoulli(p): where p is small m is mostly 0, where p is large mostly 1.
    m = out.weights[:, 0]
    assert m[p < 0.2].mean() < 0.15 and m[p > 0.8].mean() > 0.85


def test_bernoulli_per_batch_shares_p() -> None:
    torch.manual_seed(0)
    mixer = BernoulliMixer(BernoulliConfig(sampler="per_batch"), CTX)
    batch_means, ps = [], []
    for _ in range(40):
        h, h2 = codes(batch=200, shape=(C,))
        out = mixer([h, h2])
        p = out.extras["p"]
        assert bool((p == p[0, 0]).all())  # one p for the batch
        ps.append(p[0, 0].item())
        batch_means.append(out.weights[:, 0].mean().item())
    # Each batch's mask mean tracks its own p (sd of the mean of 1200 draws < 0.015) ...
    assert max(abs(a - b) for a, b in zip(batch_means, ps)) < 0.06
    # ... and p itself varies from batch to batch, so batch means spread far more than iid coins would.
    assert torch.tensor(batch_means).std() > 0.15


def test_kway_mixup_dirichlet() -> None:
    torch.manual_seed(0)
    mixer = KWayMixer(KWayConfig(k=3, mode="mixup"), CTX)
    assert mixer.num_sources == 3
    sources = [torch.randn(3000, C, 2, 2) for _ in range(3)]
    out = mixer(sources)
    check_weights(out.weights, 3000, 3)
    w = out.weights[:, :, 0]
    assert bool((w >= 0).all())
    torch.testing.assert_close(w.mean(dim=0), torch.full((3,), 1 / 3), atol=0.02, rtol=0)
    assert abs(w[:, 0].var().item() - 1 / 18) < 0.01  # Dirichlet(1,1,1) marginal is Beta(1,2): var 2/36
    expected = sum(w[:, i].reshape(-1, 1, 1, 1) * sources[i] for i in range(3))
    torch.testing.assert_close(out.codes, expected)


def test_kway_bernoulli_one_hot_sums_sources() -> None:
    torch.manual_seed(0)
    k = 4
    mixer = KWayMixer(KWayConfig(k=k, mode="bernoulli"), CTX)
    sources = [torch.randn(500, C, 2, 2) for _ in range(k)]
    out = mixer(sources)
    check_weights(out.weights, 500, k)
    w = out.weights
    assert set(w.unique().tolist()) == {0.0, 1.0}
    choice = w.argmax(dim=1)  # (B, C)
    stacked = torch.stack(sources, dim=1)
    chosen = stacked.gather(1, choice[:, None, :, None, None].expand(500, 1, C, 2, 2)).squeeze(1)
    torch.testing.assert_close(out.codes, chosen)
    freq = torch.bincount(choice.flatten(), minlength=k).float() / choice.numel()
    torch.testing.assert_close(freq, torch.full((k,), 1 / k), atol=0.03, rtol=0)


def test_kway_rejects_wrong_source_count() -> None:
    with pytest.raises(MixframeError, match="k: 3"):
        KWayMixer(KWayConfig(k=3), CTX)(list(codes()))


def labels(batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (batch, 3), generator=gen).float(), torch.randint(0, 2, (batch, 3), generator=gen).float())


def test_class_mixer_needs_attributes() -> None:
    with pytest.raises(MixframeError, match="binary attributes"):
        ClassMixer(ClassMixerConfig(), CTX)


@pytest.mark.parametrize("estimator", ["straight_through", "relaxed", "soft"])
def test_class_mixer_shapes_and_labels(estimator: str) -> None:
    torch.manual_seed(0)
    mixer = ClassMixer(ClassMixerConfig(estimator=estimator), ATTR_CTX)
    assert mixer.uses_labels
    h, h2 = codes(batch=64)
    y, y2 = labels(64)
    out = mixer([h, h2], labels=[y, y2])
    assert out.codes.shape == h.shape
    check_weights(out.weights, 64, 2)
    assert out.extras["p"].shape == (64, C) and out.extras["m"].shape == (64, C)
    # Each attribute of y_mix comes from one of the parents, and both parents contribute overall.
    from_first, from_second = out.labels == y, out.labels == y2
    assert bool((from_first | from_second).all())
    differ = y != y2
    assert 0.3 < from_first[differ].float().mean().item() < 0.7
    m = out.weights[:, 0].reshape(64, C, 1, 1)
    torch.testing.assert_close(out.codes, m * h + (1 - m) * h2)
    if estimator == "straight_through":
        assert set(out.weights.unique().tolist()) <= {0.0, 1.0}
    if estimator == "soft":
        torch.testing.assert_close(out.extras["m"], out.extras["p"])
    assert out.loss is None


@pytest.mark.parametrize("condition", ["y_mix", "sources"])
def test_class_mixer_mask_network_reads_its_condition(condition: str) -> None:
    torch.manual_seed(0)
    mixer = ClassMixer(ClassMixerConfig(condition=condition), ATTR_CTX)
    seen: list[torch.Tensor] = []
    mixer.net.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    h, h2 = codes(batch=256)
    y, y2 = torch.zeros(256, 3), torch.ones(256, 3)  # so y_mix = 1 - m_y: an attribute is 1 when taken from y2
    out = mixer([h, h2], labels=[y, y2])
    expected = out.labels if condition == "y_mix" else 1 - out.labels
    assert torch.equal(seen[0], expected)


def trained_aim(condition: str, steps: int = 300) -> float:
    """Train a class mixer alone on codes that *are* the attributes (a mix shows y_mix iff h_mix = y_mix);
    the fraction of attributes its hard (straight-through) mixes get right on fresh pairs."""
    torch.manual_seed(0)
    ctx = BuildContext(data=DataSpec(shape=(1, 8, 8), attribute_names=("a", "b", "c")), code_shape=(3,))
    mixer = ClassMixer(ClassMixerConfig(condition=condition), ctx)
    opt = torch.optim.Adam(mixer.parameters(), lr=1e-2)
    for _ in range(steps):
        y1, y2 = torch.randint(0, 2, (256, 3)).float(), torch.randint(0, 2, (256, 3)).float()
        out = mixer([y1, y2], labels=[y1, y2])
        loss = (out.codes - out.labels).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    y1, y2 = torch.randint(0, 2, (4000, 3)).float(), torch.randint(0, 2, (4000, 3)).float()
    with torch.no_grad():
        out = mixer([y1, y2], labels=[y1, y2])
    return (out.codes == out.labels).float().mean().item()


def test_a_class_mixer_reading_sources_learns_to_aim_and_one_reading_y_mix_cannot() -> None:
    # Where the parents differ, y_mix does not say which parent has the wanted value, so a mask computed
    # from y_mix alone gets those attributes right half the time: at most 3/4 overall, what copying a parent
    # gives. Reading which parent each attribute comes from, the mask network learns to take it from there.
    assert trained_aim("sources") > 0.88
    assert trained_aim("y_mix") < 0.78


def test_class_mixer_p_can_go_below_one_half() -> None:
    torch.manual_seed(0)
    mixer = ClassMixer(ClassMixerConfig(), ATTR_CTX)
    with torch.no_grad():
        mixer.net[-1].bias.fill_(-3.0)
    p = mixer.masks_for(torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    assert p.shape == (2, C)
    assert bool((p >= 0).all() and (p <= 1).all()) and bool((p < 0.5).any())


@pytest.mark.parametrize("estimator", ["straight_through", "relaxed"])
def test_class_mixer_gradient_reaches_the_mask_network(estimator: str) -> None:
    torch.manual_seed(0)
    mixer = ClassMixer(ClassMixerConfig(estimator=estimator), ATTR_CTX)
    h, h2 = codes(batch=16)
    y, y2 = labels(16)
    out = mixer([h, h2], labels=[y, y2])
    out.codes.pow(2).sum().backward()
    grads = [p.grad for p in mixer.net.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0


def test_class_mixer_prior_term() -> None:
    torch.manual_seed(0)
    eps = 0.3
    mixer = ClassMixer(ClassMixerConfig(estimator="soft", eps=eps), ATTR_CTX)
    h, h2 = codes(batch=8)
    y, y2 = labels(8)
    out = mixer([h, h2], labels=[y, y2])
    m = out.extras["m"]
    expected = eps * ((m.sum(dim=1) - C / 2) ** 2).mean()
    assert out.loss is not None
    torch.testing.assert_close(out.loss, expected)
    # A network that outputs p = 1 everywhere pays eps * (C - C/2)^2.
    with torch.no_grad():
        mixer.net[-1].weight.zero_()
        mixer.net[-1].bias.fill_(50.0)
    out = mixer([h, h2], labels=[y, y2])
    assert math.isclose(out.loss.item(), eps * (C / 2) ** 2, rel_tol=1e-5)
