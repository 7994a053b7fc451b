"""The seed's image figures: full-size recipes on stand-in files, the faces stand-in, the paper layout, path measures."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_formats import write_celeba, write_image
from PIL import Image

from mixframe import DataContext, MixframeError, RunFolder
from mixframe.cli.main import main
from mixframe.kernel.interfaces import to_unit
from mixframe.tools.interpolate import (
    PaperLayout,
    load_runs,
    paper_figure_png,
    paper_rows,
    pick_pairs,
    render_paper,
    row_labels,
)
from mixframe.tools.report import build_report
from mixframe_plugins.datasets import faces, zappos
from mixframe_plugins.metrics.paths import PathsConfig, PathsMetric, path_measures

ROOT = Path(__file__).resolve().parents[1]
FULL = sorted(p for p in (ROOT / "recipes" / "full").glob("figure*.yaml") if p.name != "figure_base.yaml")
FACES = sorted((ROOT / "recipes").glob("faces_*.yaml"))


# ---------------------------------------------------------------- full-size recipes on stand-in files


def write_zappos(root: Path, folder: str = zappos.IMAGES, per_brand: int = 10) -> None:
    """A tiny UT Zappos50K tree: <folder>/<category>/<subcategory>/<brand>/<id>.jpg, 4 categories x 2 brands."""
    level = 10
    for category, sub in (("Boots", "Ankle"), ("Sandals", "Flat"), ("Shoes", "Sneakers and Athletic Shoes"), ("Slippers", "Slipper Flats")):
        for brand in ("Acme", "Zeta"):
            for k in range(per_brand):
                write_image(root / folder / category / sub / brand / f"{level}.{k}.jpg", level, (20, 20))
                level += 3


def stand_in_root(recipe: Path, tmp_path: Path) -> Path:
    """Tiny files in the layout the recipe's dataset expects."""
    text = recipe.read_text()
    root = tmp_path / "data"
    if "celeba" in recipe.name:
        write_celeba(root, {"Male": [1, -1] * 6, "Smiling": [-1, 1, 1] * 4, "Eyeglasses": [-1] * 12},
                     partition=[0] * 6 + [1] * 3 + [2] * 3, size=(178, 218))
    else:
        assert "zappos" in recipe.name, text
        write_zappos(root)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("recipe", FULL, ids=lambda p: p.stem)
def test_full_recipe_checks_and_trains_two_steps_on_stand_in_files(recipe: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipe", "check", str(recipe)]) == 0
    # the data layout is written in the recipe's comment
    comment = "".join(line for line in recipe.read_text().splitlines(keepends=True) if line.startswith("#"))
    assert ("img_align_celeba/" in comment and "list_eval_partition.txt" in comment) or \
        "<category>/<subcategory>/<brand>/<id>.jpg" in comment
    root = stand_in_root(recipe, tmp_path)
    out = tmp_path / "runs"
    assert main(["train", str(recipe), "--out", str(out), "--no-progress", "--set", f"data.root={root}",
                 "--set", "train.device=cpu", "--set", "train.max_steps=2", "--set", "train.batch_size=2",
                 "--set", "train.num_workers=0", "--set", "train.update_g_every=1"]) == 0
    (run,) = out.iterdir()
    assert (run / "checkpoint.pt").exists() and (run / "grid.png").exists()
    assert '"status": "complete"' in (run / "run.json").read_text()


def test_the_figure13_pair_differs_in_beta_alone(capsys: pytest.CaptureFixture[str]) -> None:
    shown = []
    for name in ("figure13_celeba_beta50.yaml", "figure13_celeba_beta0.yaml"):
        assert main(["recipe", "show", str(ROOT / "recipes" / "full" / name), "--resolved"]) == 0
        shown.append(capsys.readouterr().out.splitlines())
    different = [(a, b) for a, b in zip(*shown) if a != b]
    assert len(shown[0]) == len(shown[1])
    assert [a.split(":")[0] for a, _ in different] == ["description", "- {kind"]
    assert different[1] == ("- {kind: consistency, weight: 50.0, norm: l2}", "- {kind: consistency, weight: 0.0, norm: l2}")


def test_missing_zappos_names_the_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "shoes").mkdir()
    assert main(["train", str(ROOT / "recipes" / "full" / "figure7_zappos_mixup.yaml"), "--out", str(tmp_path / "runs"),
                 "--set", f"data.root={tmp_path}", "--set", "train.device=cpu"]) == 2
    err = capsys.readouterr().err
    assert "Zappos images not found" in err and "ut-zap50k-images-square/<category>/<subcategory>/<brand>/<id>.jpg" in err
    assert "holds the folders: shoes" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_zappos_labels_come_from_the_category_folders(tmp_path: Path) -> None:
    write_zappos(tmp_path, per_brand=5)
    bundle = zappos.build(zappos.ZapposConfig(root=str(tmp_path), size=16, val_fraction=0.1, test_fraction=0.1), DataContext())
    assert bundle.spec.num_classes == 4 and bundle.label_kind == "class"
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 40
    for part in (bundle.train, bundle.test):
        for i in range(len(part)):
            x, y = part[i]
            assert x.shape == (3, 16, 16) and y.dtype == torch.int64
            path = part.paths[i]
            assert zappos.CATEGORIES[int(y)] == path.relative_to(tmp_path / zappos.IMAGES).parts[0]
    subs = zappos.build(zappos.ZapposConfig(root=str(tmp_path), size=16, labels="subcategory", val_fraction=0.1, test_fraction=0.1), DataContext())
    assert subs.spec.num_classes == 4  # one subcategory per category in the stand-in
    write_image(tmp_path / zappos.IMAGES / "loose.jpg", 200, (20, 20))
    with pytest.raises(MixframeError, match="not inside a category folder"):
        zappos.build(zappos.ZapposConfig(root=str(tmp_path), size=16), DataContext())
    assert zappos.build(zappos.ZapposConfig(root=str(tmp_path), size=16, labels="none"), DataContext()).label_kind == "none"


# ---------------------------------------------------------------- the faces stand-in


def test_faces_are_the_hundred_face_photographs_shipped_inside_scikit_image() -> None:
    import skimage.data

    shipped = Path(skimage.data.__file__).parent / "lfw_subset.npy"
    assert shipped.exists()  # in the wheel: nothing to download
    raw = np.load(shipped)
    assert raw.shape == (200, 25, 25)
    bundle = faces.build(faces.FacesConfig(size=32, seed=0), DataContext())
    assert bundle.spec.shape == (1, 32, 32) and bundle.spec.value_range == (-1.0, 1.0) and bundle.label_kind == "none"
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (2 * 72, 12, 16)
    train = bundle.train.tensors[0]
    assert torch.equal(train[72:], train[:72].flip(-1))  # the mirrored copies
    assert float(train.min()) >= -1 and float(train.max()) <= 1
    # held-out faces are none of the training faces (nor their mirrors), and all come from the first 100 crops
    every = torch.cat([train[:72], bundle.val.tensors[0], bundle.test.tensors[0]])
    assert len(torch.unique(every.flatten(1), dim=0)) == 100
    first = faces.build(faces.FacesConfig(size=16, flip=False, val=1, test=1, scale="unit"), DataContext()).train.tensors[0]
    originals = torch.nn.functional.interpolate(torch.from_numpy(raw[:100]).float()[:, None], size=(16, 16), mode="bilinear",
                                                antialias=True, align_corners=False).clamp(0, 1)
    matches = torch.cdist(first.flatten(1), originals.flatten(1), compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    assert float(matches.max()) < 1e-4
    with pytest.raises(MixframeError, match="fewer than 2"):
        faces.build(faces.FacesConfig(val=50, test=49), DataContext())


@pytest.mark.parametrize("recipe", FACES, ids=lambda p: p.stem)
def test_faces_recipes_check(recipe: Path) -> None:
    assert main(["recipe", "check", str(recipe)]) == 0


def test_faces_beta_pair_differs_in_beta_alone(capsys: pytest.CaptureFixture[str]) -> None:
    shown = []
    for name in ("faces_beta50.yaml", "faces_beta0.yaml"):
        assert main(["recipe", "show", str(ROOT / "recipes" / name), "--resolved"]) == 0
        shown.append(capsys.readouterr().out.splitlines())
    different = [(a, b) for a, b in zip(*shown) if a != b]
    assert [a.split(":")[0] for a, _ in different] == ["description", "- {kind"]
    assert "weight: 50.0" in different[1][0] and "weight: 0.0" in different[1][1]


# ---------------------------------------------------------------- the paper layout on tiny trained runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny faces runs with different seeds (same data), and a copy of the first under another name."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, seed in (("one", 0), ("two", 1)):
        assert main(["train", str(ROOT / "recipes" / "faces_amr_mixup.yaml"), "--out", str(base / name), "--no-progress",
                     "--set", f"seed={seed}", "--set", "train.max_steps=3", "--set", "train.epochs=1"]) == 0
        (out[name],) = (base / name).iterdir()
    out["twin"] = base / "twin"
    shutil.copytree(out["one"], out["twin"])
    return out


def tile_of(x: torch.Tensor, spec, layout: PaperLayout) -> np.ndarray:  # noqa: ANN001
    """What one image looks like in the picture: scaled to [0, 255], enlarged by nearest neighbour, gray to RGB."""
    scale = layout.tile // spec.shape[1]
    unit = to_unit(x[None].float(), spec)
    unit = torch.nn.functional.interpolate(unit, scale_factor=scale, mode="nearest")[0] if scale > 1 else unit[0]
    pixels = (unit.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return np.repeat(pixels, 3, axis=2)


def crop(picture: np.ndarray, corner: tuple[int, int], size: int) -> np.ndarray:
    left, top = corner
    return picture[top:top + size, left:left + size]


@pytest.mark.parametrize("mode", ["linear", "bernoulli"])
def test_paper_layout_shows_real_ends_then_pixel_row_then_one_row_per_run(runs: dict[str, Path], tmp_path: Path, mode: str) -> None:
    pairs, steps = 2, 5
    out = tmp_path / "paper.png"
    assert main(["interpolate", str(runs["one"]), str(runs["two"]), "--layout", "paper", "--mode", mode, "--pairs", str(pairs),
                 "--steps", str(steps), "--out", str(out), "--label", "first", "--label", "second"]) == 0
    picture = np.asarray(Image.open(out).convert("RGB"))

    loaded = load_runs([runs["one"], runs["two"]])
    spec = loaded[0].spec
    x1, x2 = pick_pairs(loaded[0], pairs)
    rows = paper_rows(loaded, x1, x2, steps, mode)
    assert rows.shape == (pairs, 3, steps, *spec.shape)
    labels = row_labels(loaded, ["first", "second"])
    assert labels == ["(a) pixel", "(b) first", "(c) second"]
    _, layout = render_paper(x1, x2, rows, spec, labels, mode)
    assert picture.shape[:2] == (layout.height, layout.width)
    assert layout.tile == 64  # 32 px faces drawn at twice their size

    for b in range(pairs):
        real1, real2 = tile_of(x1[b], spec, layout), tile_of(x2[b], spec, layout)
        assert not np.array_equal(real1, real2)
        # the real end images, once per pair, left and right of the block
        assert np.array_equal(crop(picture, layout.end(b, 0), layout.tile), real1)
        assert np.array_equal(crop(picture, layout.end(b, 1), layout.tile), real2)
        # row (a): pixel space, from x1 to x2 through their blend
        assert np.array_equal(crop(picture, layout.cell(b, 0, 0), layout.tile), real1)
        assert np.array_equal(crop(picture, layout.cell(b, 0, steps - 1), layout.tile), real2)
        assert np.array_equal(crop(picture, layout.cell(b, 0, 2), layout.tile), tile_of((x1[b] + x2[b]) / 2, spec, layout))
        # rows (b) and (c): each run's decoded path, in the order the runs were given
        for r, run in enumerate(loaded, start=1):
            path = run.interpolate(x1, x2, steps, mode)[b]
            for j in range(steps):
                drawn = crop(picture, layout.cell(b, r, j), layout.tile).astype(int)
                assert np.abs(drawn - tile_of(path[j], spec, layout)).max() <= 1  # decoding again may round a level differently
        assert not np.array_equal(crop(picture, layout.cell(b, 1, 2), layout.tile), crop(picture, layout.cell(b, 2, 2), layout.tile))
        assert not np.array_equal(crop(picture, layout.cell(b, 1, 2), layout.tile), crop(picture, layout.cell(b, 0, 2), layout.tile))


def test_paper_layout_from_python_with_own_images_columns_and_mistakes(runs: dict[str, Path], tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (run,) = load_runs([runs["one"]])
    faces_in = [Image.fromarray(np.full((40, 30), level, dtype=np.uint8)) for level in (20, 220)]
    x = run.to_input(faces_in)
    own = np.asarray(Image.open(io.BytesIO(paper_figure_png([run], x1=x[0], x2=x[1], steps=4, mode="bernoulli"))).convert("RGB"))
    _, layout = render_paper(x[:1], x[1:], paper_rows([run], x[:1], x[1:], 4, "bernoulli"), run.spec, row_labels([run]), "bernoulli",
                             ends="the images given")
    assert own.shape[:2] == (layout.height, layout.width)
    assert (crop(own, layout.end(0, 0), layout.tile) == 20).all() and (crop(own, layout.end(0, 1), layout.tile) == 220).all()
    one_column = Image.open(io.BytesIO(paper_figure_png([run], pairs=4, steps=4)))
    two_columns = Image.open(io.BytesIO(paper_figure_png([run], pairs=4, steps=4, columns=2)))
    assert two_columns.width - one_column.width == layout.block_width + layout.column_gap
    assert one_column.height - two_columns.height == 2 * (layout.block_height + layout.block_gap)
    with pytest.raises(MixframeError, match=r"2 label\(s\) given for 1 run"):
        paper_figure_png([run], labels=["a", "b"])
    with pytest.raises(MixframeError, match="unknown interpolation mode"):
        paper_figure_png([run], mode="cubic")  # type: ignore[arg-type]
    assert main(["interpolate", str(runs["one"]), "--layout", "paper", "--label", "a", "--label", "b",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "2 label(s) given for 1 run(s)" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_report_draws_runs_on_the_same_data_in_the_paper_layout(runs: dict[str, Path], tmp_path: Path) -> None:
    page = build_report([runs["one"], runs["twin"]], pairs=2, steps=4)
    figures = re.findall(r'<figure><img alt="([^"]*)" src="data:image/png;base64,([^"]*)">', page)
    (png,) = [data for alt, data in figures if alt.startswith("linear interpolation")]
    picture = Image.open(io.BytesIO(base64.b64decode(png)))
    loaded = load_runs([runs["one"], runs["twin"]])
    x1, x2 = pick_pairs(loaded[0], 2)
    _, layout = render_paper(x1, x2, paper_rows(loaded, x1, x2, 4), loaded[0].spec, row_labels(loaded), "linear")
    assert picture.size == (layout.width, layout.height)
    assert "the paper&#x27;s layout" in page or "the paper's layout" in page


# ---------------------------------------------------------------- path measures


def test_path_measures_are_bounded_and_find_a_midpoint_among_the_references(runs: dict[str, Path]) -> None:
    (run,) = load_runs([runs["one"]])
    x1, x2 = pick_pairs(run, 6)
    steps = 8
    plain = path_measures(run, x1, x2, steps=steps)
    assert set(plain) == {"max_step_share", "midpoint_lean", "midpoint_drift"}
    assert 1 / (steps - 1) - 1e-6 <= plain["max_step_share"] <= 1
    assert 0 <= plain["midpoint_lean"] <= 1 and plain["midpoint_drift"] >= 0
    midpoints = run.interpolate(x1, x2, 3)[:, 1]
    with_refs = path_measures(run, x1, x2, steps=steps, reference=torch.cat([midpoints, run.split("train")[0]]))
    assert with_refs["midpoint_nearest"] < 1e-5  # each midpoint is among the references
    far = path_measures(run, x1, x2, steps=steps, reference=run.split("train")[0])
    assert far["midpoint_nearest"] > 0.01 and far["end_nearest"] > 0.01
    assert path_measures(run, x1, x2, steps=steps, mode="bernoulli")["max_step_share"] != plain["max_step_share"]


def test_the_paths_metric_measures_seeded_pairs_as_path_measures_does(runs: dict[str, Path]) -> None:
    (run,) = load_runs([runs["one"]])
    metric = PathsMetric(PathsConfig(pairs=5, reference=0), None)  # type: ignore[arg-type]
    values = metric.evaluate(run)
    assert values == metric.evaluate(run) and set(values) == {"max_step_share", "midpoint_lean", "midpoint_drift"}
    order = torch.randperm(len(run.data.test), generator=torch.Generator().manual_seed(0))[:10].tolist()
    xs = torch.stack([run.data.test[i][0] for i in order])
    assert values == path_measures(run, xs[0::2], xs[1::2])
    assert main(["evaluate", str(runs["one"]), "--metric", "paths"]) == 0  # evaluate, sweeps and reports get it
    assert "midpoint_nearest" in RunFolder(runs["one"]).evaluation()["by_metric"]["paths"]
