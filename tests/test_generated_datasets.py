"""The generated and shipped datasets: determinism, shapes, ranges, splits, and their generators."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import Dataset

from mixframe import DataContext, MixframeError
from mixframe.kernel.config import Problems, structure
from mixframe_plugins.datasets import digits, dsprites, lines, spiral


def stack(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(xs), torch.stack(ys)


def all_splits(bundle) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [stack(bundle.train), stack(bundle.val), stack(bundle.test)]


# spiral ---------------------------------------------------------------------------------------

def test_spiral_is_deterministic_and_seed_dependent() -> None:
    a = all_splits(spiral.build(spiral.SpiralConfig(n_train=50, n_val=10, n_test=10, seed=3), DataContext()))
    b = all_splits(spiral.build(spiral.SpiralConfig(n_train=50, n_val=10, n_test=10, seed=3), DataContext()))
    c = all_splits(spiral.build(spiral.SpiralConfig(n_train=50, n_val=10, n_test=10, seed=4), DataContext()))
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])


def test_spiral_shapes_ranges_and_splits() -> None:
    bundle = spiral.build(spiral.SpiralConfig(n_train=300, n_val=40, n_test=30), DataContext())
    assert bundle.spec.shape == (2,) and bundle.label_kind == "none"
    (xt, yt), (xv, _), (xs, _) = all_splits(bundle)
    assert (len(xt), len(xv), len(xs)) == (300, 40, 30)
    assert xt.dtype == torch.float32 and xt.shape == (300, 2)
    assert xt.abs().max() < 1.1 and xt.abs().max() > 0.8  # scaled to about [-1, 1]
    assert yt.min() >= 0 and yt.max() <= 1
    assert not (xt.unsqueeze(1) == xv.unsqueeze(0)).all(-1).any()  # disjoint


def test_spiral_distance_to_manifold() -> None:
    clean = spiral.build(spiral.SpiralConfig(n_train=200, n_val=5, n_test=5, noise=0.0), DataContext())
    x, _ = stack(clean.train)
    assert clean.generator.distance_to_manifold(x).max() < 1e-3
    noisy = spiral.build(spiral.SpiralConfig(n_train=400, n_val=5, n_test=5, noise=0.02), DataContext())
    curve = noisy.generator
    assert curve.on_manifold_threshold == pytest.approx(0.06)
    d = curve.distance_to_manifold(stack(noisy.train)[0])
    assert 0.008 < d.mean() < 0.025  # about the noise's mean absolute normal offset, 0.016
    assert (d < curve.on_manifold_threshold).float().mean() > 0.97
    # points between the arms and far outside are off the spiral
    off = torch.tensor([[0.0, 0.0], [3.0, 3.0], [0.0, -0.6]])
    assert (curve.distance_to_manifold(off) > 0.1).all()
    assert curve.distance_to_manifold(torch.tensor([[2.0, 0.0]]))[0] == pytest.approx(1.0, abs=1e-3)  # nearest: the end, (1, 0)


# digits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "scale", "low"), [(16, "signed", -1.0), (32, "unit", 0.0)])
def test_digits_shapes_ranges_and_stratified_splits(size: int, scale: str, low: float) -> None:
    bundle = digits.build(digits.DigitsConfig(size=size, scale=scale), DataContext())
    assert bundle.spec.shape == (1, size, size) and bundle.spec.num_classes == 10 and bundle.label_kind == "class"
    assert bundle.spec.value_range == (low, 1.0)
    splits = all_splits(bundle)
    assert [len(y) for _, y in splits] == [1078, 359, 360]
    x, y = splits[0]
    assert x.shape == (1078, 1, size, size) and y.dtype == torch.int64
    assert x.min() >= low and x.max() <= 1.0 and x.min() < low + 0.01 and x.max() > 0.9
    # stratified: every split has each class in about the same proportion as the whole data
    for _, ys in splits:
        share = torch.bincount(ys, minlength=10).float() / len(ys)
        assert (share - 0.1).abs().max() < 0.015
    # disjoint: no image is in two splits
    flat = [xs.reshape(len(xs), -1) for xs, _ in splits]
    assert torch.cdist(flat[0], flat[2]).min() > 0 and torch.cdist(flat[1], flat[2]).min() > 0


def test_digits_split_depends_on_seed_only() -> None:
    a, b, c = (stack(digits.build(digits.DigitsConfig(seed=s), DataContext()).test)[1] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# dSprites -------------------------------------------------------------------------------------

def small_dsprites(**kw) -> dsprites.DSpritesConfig:
    return dsprites.DSpritesConfig(**{"n_train": 64, "n_val": 16, "n_test": 16, **kw})


def test_dsprites_factors_splits_and_determinism() -> None:
    bundle = dsprites.build(small_dsprites(seed=5), DataContext())
    spec = bundle.spec
    assert spec.shape == (1, 64, 64) and spec.value_range == (0.0, 1.0) and bundle.label_kind == "factors"
    assert spec.factor_names == ("shape", "scale", "orientation", "posX", "posY") and spec.factor_sizes == (3, 6, 40, 32, 32)
    splits = all_splits(bundle)
    x, y = splits[0]
    assert x.shape == (64, 1, 64, 64) and x.dtype == torch.float32 and y.shape == (64, 5) and y.dtype == torch.int64
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert (y >= 0).all() and (y < torch.tensor(spec.factor_sizes)).all()
    codes = [set(map(tuple, ys.tolist())) for _, ys in splits]
    assert sum(map(len, codes)) == 96 and not (codes[0] & codes[1] or codes[0] & codes[2] or codes[1] & codes[2])
    # the stored images are the renderer's
    assert torch.equal(bundle.generator.render(y), x)
    again = stack(dsprites.build(small_dsprites(seed=5), DataContext()).test)
    assert torch.equal(again[1], splits[2][1]) and torch.equal(again[0], splits[2][0])
    assert not torch.equal(stack(dsprites.build(small_dsprites(seed=6), DataContext()).test)[1], splits[2][1])


def test_dsprites_centroid_follows_position_and_area_follows_scale() -> None:
    render = dsprites.build(small_dsprites(n_train=1, n_val=1, n_test=1), DataContext()).generator.render
    for shape in range(3):
        pos = torch.tensor([[shape, 3, 7, px, 16] for px in (0, 8, 16, 24, 31)])
        img = render(pos)[:, 0]
        cols = torch.arange(64.0)
        centroid_x = (img.sum(1) * cols).sum(1) / img.sum((1, 2))
        assert (centroid_x.diff() > 3).all(), shape
        rows_centroid = (img.sum(2) * cols).sum(1) / img.sum((1, 2))
        assert (rows_centroid - rows_centroid[0]).abs().max() < 0.5  # posY fixed: no vertical move
        sizes = render(torch.tensor([[shape, s, 0, 16, 16] for s in range(6)]))[:, 0].sum((1, 2))
        assert (sizes.diff() > 0).all(), shape
        assert sizes[-1] / sizes[0] == pytest.approx(4.0, rel=0.15)  # area ~ scale^2: (1.0 / 0.5)^2
    low = render(torch.tensor([[2, 5, 0, 16, 31]]))[0, 0]
    high = render(torch.tensor([[2, 5, 0, 16, 0]]))[0, 0]
    assert low.nonzero()[:, 0].float().mean() > high.nonzero()[:, 0].float().mean() + 30  # posY grows downwards
    # every shape stays inside the frame at its largest and most extreme position
    corner = render(torch.tensor([[s, 5, o, p, p] for s in range(3) for o in range(0, 40, 5) for p in (0, 31)]))[:, 0]
    assert corner[:, 0].sum() == 0 and corner[:, -1].sum() == 0 and corner[:, :, 0].sum() == 0 and corner[:, :, -1].sum() == 0


def test_dsprites_shapes_differ_and_rotation_matters() -> None:
    render = dsprites.build(small_dsprites(n_train=1, n_val=1, n_test=1), DataContext()).generator.render
    shapes = render(torch.tensor([[s, 5, 3, 16, 16] for s in range(3)]))
    assert not torch.equal(shapes[0], shapes[1]) and not torch.equal(shapes[1], shapes[2])
    ellipse = render(torch.tensor([[1, 5, 0, 16, 16], [1, 5, 10, 16, 16]]))[:, 0]  # 0 and 90 degrees
    width = ellipse.amax(1).sum(1)
    height = ellipse.amax(2).sum(1)
    assert width[0] > 1.7 * height[0] and height[1] > 1.7 * width[1]


def test_dsprites_attributes_and_32px() -> None:
    bundle = dsprites.build(small_dsprites(labels="attributes", size=32, scale="signed"), DataContext())
    assert bundle.label_kind == "attributes" and bundle.spec.attribute_names == ("large", "right", "low")
    x, y = stack(bundle.train)
    assert x.shape == (64, 1, 32, 32) and set(x.unique().tolist()) == {-1.0, 1.0} and bundle.spec.value_range == (-1.0, 1.0)
    assert y.dtype == torch.float32 and y.shape == (64, 3)
    factors = torch.tensor([[0, 2, 0, 15, 16], [1, 3, 0, 16, 15], [2, 5, 9, 31, 31], [0, 0, 0, 0, 0]])
    assert dsprites.attributes(factors).tolist() == [[0, 0, 1], [1, 1, 0], [1, 1, 1], [0, 0, 0]]
    assert 0 < y.mean() < 1


def test_dsprites_sample_factors_and_errors() -> None:
    gen = dsprites.build(small_dsprites(n_train=1, n_val=1, n_test=1), DataContext()).generator
    f = gen.sample_factors(2000, torch.Generator().manual_seed(0))
    assert f.shape == (2000, 5) and f.dtype == torch.int64
    assert f.amin(0).tolist() == [0] * 5 and f.amax(0).tolist() == [2, 5, 39, 31, 31]
    assert torch.equal(f, gen.sample_factors(2000, torch.Generator().manual_seed(0)))
    with pytest.raises(MixframeError, match="factors"):
        gen.render(torch.tensor([[3, 0, 0, 0, 0]]))
    with pytest.raises(MixframeError, match="exceeds"):
        dsprites.build(small_dsprites(n_train=737280), DataContext())


def test_dataset_configs_reject_bad_values_with_key_paths() -> None:
    problems = Problems()
    assert structure(dsprites.DSpritesConfig, {"size": 48, "labels": "factor"}, "data", problems) is None
    text = " ".join(f"{p}: {m}" for p, m in problems.items)
    assert "data.size" in text and "did you mean 'factors'" in text
    problems = Problems()
    assert structure(spiral.SpiralConfig, {"n_train": 0}, "data", problems) is None
    assert problems.items[0][0] == "data.n_train"


# lines ----------------------------------------------------------------------------------------

def test_lines_shapes_ranges_determinism() -> None:
    config = lines.LinesConfig(n_train=40, n_val=10, n_test=10, seed=2)
    bundle = lines.build(config, DataContext())
    assert bundle.spec.shape == (1, 32, 32) and bundle.spec.value_range == (-1.0, 1.0) and bundle.label_kind == "none"
    splits = all_splits(bundle)
    assert [len(y) for _, y in splits] == [40, 10, 10]
    x, a = splits[0]
    assert x.min() == -1.0 and 0.9 < x.max() <= 1.0 and a.min() >= 0 and a.max() < 2 * math.pi
    # a 16 px line, 1 px wide, covers about 16 pixels' worth of intensity
    ink = ((x + 1) / 2).sum((1, 2, 3))
    assert ((ink > 13) & (ink < 19)).all()
    again = stack(lines.build(config, DataContext()).train)
    assert torch.equal(again[0], x) and torch.equal(again[1], a)


def test_lines_geometry() -> None:
    render = lines.LineRenderer(16.0).render
    right, up = (render(torch.tensor([0.0, math.pi / 2]))[:, 0] + 1) / 2
    # the centre (16, 16) is a pixel corner: a horizontal line lights rows 15 and 16 at half intensity
    assert torch.allclose(right[15:17, 17:], torch.full((2, 15), 0.5))
    assert right[:, :15].sum() == 0 and right[:15].sum() == 0 and right[17:].sum() == 0
    # angles turn anticlockwise on screen (rows grow downwards): pi/2 points up
    assert torch.allclose(up[:15, 15:17], torch.full((15, 2), 0.5))
    assert up[17:].sum() == 0 and up[:, :15].sum() == 0 and up[:, 17:].sum() == 0


def test_lines_angle_of_recovers_the_angle() -> None:
    renderer = lines.LineRenderer(16.0)
    angles = torch.rand(200, generator=torch.Generator().manual_seed(0)) * 2 * math.pi
    found, distance = renderer.angle_of(renderer.render(angles))
    error = torch.remainder(found - angles + math.pi, 2 * math.pi) - math.pi
    assert error.abs().max() <= 2 * math.pi / 512
    assert distance.max() < 0.03  # off-grid angles: at most about a tenth of a pixel's worth of ink
    # an image that is no line is far from every line; a mix of two lines is farther than either
    _, far = renderer.angle_of(torch.ones(1, 1, 32, 32))
    two = renderer.render(torch.tensor([0.0, math.pi / 2]))
    _, mixed = renderer.angle_of(two.mean(0, keepdim=True))
    assert far[0] > 1.0 and mixed[0] > 0.1 > 3 * distance.max()
    with pytest.raises(MixframeError, match="angle_of"):
        renderer.angle_of(torch.zeros(2, 1, 16, 16))
