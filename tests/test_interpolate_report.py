"""``mixframe interpolate`` and ``mixframe report`` on tiny trained runs (digits and the 2-D spiral)."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mixframe import blend
from mixframe.cli.main import main
from mixframe.kernel.interfaces import interpolation_weights
from mixframe.tools.interpolate import (
    PIXEL,
    interpolation_blocks,
    load_runs,
    pick_pairs,
    render_blocks,
    tile_scale,
)
from mixframe.tools.report import format_value

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_NAME = "<img src=x onerror=alert(1)> & co"
HOSTILE_DESCRIPTION = '<script>alert("boom")</script> & <b>bold</b>'


def _train(out: Path, recipe: str, *extra: str) -> Path:
    args = ["train", str(ROOT / "recipes" / recipe), "--out", str(out), "--no-progress",
            "--set", "train.epochs=1", "--set", "train.max_steps=3", *[a for s in extra for a in ("--set", s)]]
    assert main(args) == 0
    (run,) = out.iterdir()
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, digits_run: Path) -> dict[str, Path]:
    """One tiny digits run (the shared one), a copy of it under another name (same dataset), and one tiny spiral run."""
    base = tmp_path_factory.mktemp("runs")
    digits = digits_run
    twin = base / "twin"
    shutil.copytree(digits, twin)
    spiral = _train(base / "s", "spiral_amr.yaml", "data.n_train=256", "data.n_val=64", "data.n_test=64")
    return {"digits": digits, "twin": twin, "spiral": spiral}


def _cell(picture: np.ndarray, layout, block: int, row: int, col: int) -> np.ndarray:  # noqa: ANN001
    left, top = layout.cell(block, row, col)
    return picture[top:top + layout.tile, left:left + layout.tile]


def test_interpolation_picture_has_a_row_per_run_plus_pixel_for_each_pair(runs: dict[str, Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    pairs, steps = 3, 5
    out = tmp_path / "interp.png"
    assert main(["interpolate", str(runs["digits"]), str(runs["twin"]), "--pairs", str(pairs), "--steps", str(steps),
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    picture = np.asarray(Image.open(out).convert("RGB"))

    loaded = load_runs([runs["digits"], runs["twin"]])
    x1, x2 = pick_pairs(loaded[0], pairs)
    blocks = interpolation_blocks(loaded, x1, x2, steps)
    assert [label for label, _ in blocks[0]] == [PIXEL, runs["digits"].name, runs["twin"].name]
    named = interpolation_blocks(loaded, x1, x2, steps, labels=["AE", "AMR"])  # --label names the rows in this layout too
    assert [label for label, _ in named[0]] == [PIXEL, "AE", "AMR"]
    assert main(["interpolate", str(runs["digits"]), "--label", "a", "--label", "b", "--out", str(tmp_path / "x.png")]) == 2
    assert "2 label(s) given for 1 run(s)" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    _, layout = render_blocks(blocks, loaded[0].spec, steps)
    assert (layout.rows, layout.cols) == (pairs * (2 + 1), steps + 2)
    tile = 16 * tile_scale(16, 16)
    assert tile == 48  # 16 px digits are enlarged (nearest neighbour) to be readable
    assert picture.shape[1] == layout.label_width + (steps + 2) * (tile + layout.pad) + layout.pad
    assert picture.shape[0] == layout.header + pairs * 3 * (tile + layout.pad) + (pairs - 1) * layout.block_gap + layout.pad

    for b in range(pairs):
        x1_tile, x2_tile = _cell(picture, layout, b, 0, 0), _cell(picture, layout, b, 0, steps + 1)
        assert not np.array_equal(x1_tile, x2_tile)
        # the pixel row starts at x1 and ends at x2; every run row shows the same pair at its ends
        assert np.array_equal(_cell(picture, layout, b, 0, 1), x1_tile)
        assert np.array_equal(_cell(picture, layout, b, 0, steps), x2_tile)
        for r in (1, 2):
            assert np.array_equal(_cell(picture, layout, b, r, 0), x1_tile)
            assert np.array_equal(_cell(picture, layout, b, r, steps + 1), x2_tile)
        # nearest-neighbour enlargement: each source pixel is a flat 3x3 square
        assert np.array_equal(x1_tile[0::3, 0::3], x1_tile[2::3, 2::3])
    # the twin run has the same weights, so its rows equal the first run's
    assert np.array_equal(_cell(picture, layout, 0, 1, 3), _cell(picture, layout, 0, 2, 3))


def bernoulli_schedule(channels: int, steps: int, seed: int) -> torch.Tensor:
    return interpolation_weights(channels, steps, "bernoulli", seed)[:, 1]  # the weight of h2


def interpolate_codes(h1: torch.Tensor, h2: torch.Tensor, steps: int, mode: str, seed: int = 0) -> torch.Tensor:
    weights = interpolation_weights(h1.shape[1], steps, mode, seed)
    return torch.stack([blend([h1, h2], w.expand(len(h1), -1, -1)) for w in weights], dim=1)


def test_bernoulli_schedule_swaps_progressively_more_feature_maps() -> None:
    channels, steps = 7, 5
    masks = bernoulli_schedule(channels, steps, seed=3)
    assert masks.shape == (steps, channels)
    assert masks[0].sum() == 0 and masks[-1].sum() == channels
    counts = masks.sum(1).tolist()
    assert counts == [round(j * channels / (steps - 1)) for j in range(steps)]
    assert all(a <= b for a, b in zip(counts, counts[1:]))
    assert bool((masks[1:] >= masks[:-1]).all())  # a channel once taken from h2 stays from h2
    assert torch.equal(masks, bernoulli_schedule(channels, steps, seed=3))
    assert not torch.equal(masks, bernoulli_schedule(channels, steps, seed=4))

    h1, h2 = torch.randn(2, channels, 3, 3), torch.randn(2, channels, 3, 3)
    codes = interpolate_codes(h1, h2, steps, "bernoulli", seed=3)
    assert codes.shape == (2, steps, channels, 3, 3)
    assert torch.equal(codes[:, 0], h1) and torch.equal(codes[:, -1], h2)
    from_h2 = (codes == h2[:, None]).all(dim=(-1, -2))  # whole feature maps come from one parent
    from_h1 = (codes == h1[:, None]).all(dim=(-1, -2))
    assert bool((from_h1 ^ from_h2).all())
    assert torch.equal(from_h2[0].float(), masks) and torch.equal(from_h2[1].float(), masks)
    linear = interpolate_codes(h1, h2, 3, "linear")
    assert torch.allclose(linear[:, 1], (h1 + h2) / 2)


def test_bernoulli_mode_from_the_command_line(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "bern.png"
    assert main(["interpolate", str(runs["digits"]), "--mode", "bernoulli", "--pairs", "2", "--steps", "4", "--out", str(out)]) == 0
    width, height = Image.open(out).size
    assert height > 2 * 2 * 48 and width > 6 * 48


def test_spiral_draws_one_panel_per_run(runs: dict[str, Path], tmp_path: Path) -> None:
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    assert main(["interpolate", str(runs["spiral"]), "--pairs", "3", "--steps", "6", "--out", str(one)]) == 0
    assert main(["interpolate", str(runs["spiral"]), str(runs["spiral"]), "--pairs", "3", "--steps", "6", "--out", str(two)]) == 0
    (w1, h1), (w2, h2) = Image.open(one).size, Image.open(two).size
    assert h1 == h2 and w2 == 2 * w1


def test_runs_on_different_datasets_are_refused(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.png"
    assert main(["interpolate", str(runs["digits"]), str(runs["spiral"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "different datasets" in err and runs["digits"].name in err and runs["spiral"].name in err
    assert not out.exists()


def test_folders_that_are_not_runs_are_refused(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for cmd in (["interpolate", str(runs["digits"]), str(empty), "--out", str(tmp_path / "x.png")],
                ["report", str(runs["digits"]), str(empty), "--out", str(tmp_path / "r.html")]):
        assert main(cmd) == 2
        assert f"{empty} is not a mixframe run folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["interpolate", str(runs["digits"]), "--steps", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "--steps must be at least 2" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "x.png").exists()


def test_report_is_one_self_contained_escaped_page(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = tmp_path / HOSTILE_NAME
    shutil.copytree(runs["digits"], hostile)
    recipe = hostile / "recipe.yaml"
    recipe.write_text(re.sub(r"^description: .*$", "description: " + json.dumps(HOSTILE_DESCRIPTION), recipe.read_text(), flags=re.M))
    (hostile / "evaluation.json").write_text(json.dumps({"metrics": {"probe/accuracy": 0.91234567, "realism/fid": 2.5e-6}}))
    (hostile / "warnings.log").write_text("warning: critic/x has stayed at its blind-guess value: the critic learns nothing\n")
    shutil.copyfile(hostile / "grid.png", hostile / "masks.png")

    out = tmp_path / "out" / "report.html"
    assert main(["report", str(runs["digits"]), str(hostile), str(runs["spiral"]), "--pairs", "2", "--steps", "4", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
    page = out.read_text()

    # self-contained: every image a PNG data URI, no external style sheets, scripts or links
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 3 * 2 + 1 + 2  # loss curves and grid per run, masks.png, an interpolation picture per dataset
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in page and "<link" not in page and "<script" not in page
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))

    # escaped: the hostile name and description appear only as text
    assert "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; co" in page
    assert "&lt;script&gt;alert(&quot;boom&quot;)&lt;/script&gt;" in page

    # the overview: one row per run; the metrics: a row per value, a column per run, formatted, a dash where a run was not evaluated
    table = page[page.index("<table class=\"runs\">"):page.index("</table>")]
    assert table.count("<tr>") == 1 + 3
    for head in ("mixer", "regularizers", "epochs", "final reconstruction loss", "validation reconstruction loss"):
        assert f"<th>{head}</th>" in table
    metrics = page[page.index('<table class="metrics">'):]
    metrics = metrics[:metrics.index("</table>")]
    dash = '<td class="num missing">&ndash;</td>'
    assert "<code>probe/accuracy</code>" in metrics and f'{dash}<td class="num">0.9123</td>{dash}' in metrics
    assert f'{dash}<td class="num">2.500e-06</td>{dash}' in metrics
    assert f"Not evaluated: #1 {runs['digits'].name}, #3 {runs['spiral'].name}" in page and "<code>mixframe evaluate " in page
    assert '<div class="warning severe">warning: critic/x has stayed' in page
    assert "masks.png" in page and "<pre>schema: 1" in page


def test_numbers_are_formatted_sensibly() -> None:
    assert [format_value(v) for v in (None, 3, 123456, 0.0, 0.123456, 12.3456, 2.5e-6, 3.2e7, float("nan"))] == \
        ["", "3", "123,456", "0", "0.1235", "12.35", "2.500e-06", "3.200e+07", "nan"]


def test_a_checkpoint_that_no_longer_fits_its_recipe_is_a_message(runs: dict[str, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(runs["digits"], stale)
    recipe = stale / "recipe.yaml"
    text = recipe.read_text()
    assert re.search(r"^encoder: \{kind: conv, depth: 16", text, flags=re.M)
    recipe.write_text(re.sub(r"^encoder: \{kind: conv, depth: 16", "encoder: {kind: conv, depth: 8", text, flags=re.M))
    assert main(["interpolate", str(stale), "--out", str(tmp_path / "x.png")]) == 2
    assert "does not fit the model its recipe builds now" in capsys.readouterr().err
    # the report still comes out, with a note where the interpolation picture would be
    out = tmp_path / "r.html"
    assert main(["report", str(runs["digits"]), str(stale), "--out", str(out)]) == 0
    assert "could not be drawn" in out.read_text()


def test_pairs_are_seeded_and_stable_when_more_are_asked(runs: dict[str, Path]) -> None:
    (run,) = load_runs([runs["spiral"]])
    a1, a2 = pick_pairs(run, 3, seed=1)
    b1, b2 = pick_pairs(run, 5, seed=1)
    assert torch.equal(a1, b1[:3]) and torch.equal(a2, b2[:3])
    assert not torch.equal(a1, pick_pairs(run, 3, seed=2)[0])
    assert not (a1 == a2).all(dim=1).any()
