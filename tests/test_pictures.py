"""Pictures that explain themselves: labelled grids with a caption, calm loss axes, aligned sweep panels, notes apart from
warnings, a runs table readable in a narrow window, and run.json true after a resume."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import CHROMIUM, measure
from PIL import Image

import mixframe
from mixframe import Callback
from mixframe.kernel.interfaces import DataSpec
from mixframe.runs.api import RunInterrupted
from mixframe.tools.pictures import MIN_RELATIVE_SPAN, alpha_heads, draw_mix_scatter, save_rows, y_limits
from mixframe.tools.report import build_report
from mixframe.tools.sweep import panels_figure

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "recipes" / "digits_amr_mixup.yaml"


def test_grid_columns_are_labelled_with_the_weight_and_a_caption_says_what_the_rows_are(tmp_path: Path) -> None:
    spec = DataSpec(shape=(1, 16, 16), value_range=(-1.0, 1.0))
    rows = [torch.zeros(10, 1, 16, 16) for _ in range(2)]
    save_rows(rows, spec, tmp_path / "plain.png", real_columns=(0, -1))
    save_rows(rows, spec, tmp_path / "told.png", real_columns=(0, -1), heads=alpha_heads(8),
              caption="Each row: the real x1 and x2 at the ends; between them decoded codes.")
    plain, told = np.asarray(Image.open(tmp_path / "plain.png")), np.asarray(Image.open(tmp_path / "told.png"))
    assert alpha_heads(8) == ["x1", "a=0", "a=0.14", "a=0.29", "a=0.43", "a=0.57", "a=0.71", "a=0.86", "a=1", "x2"]
    assert told.shape[0] > plain.shape[0] + 18 and told.shape[1] == plain.shape[1]  # a header row and a caption line
    assert (told[:16] < 128).any() and (told[-14:] < 128).any()  # dark text above the tiles and below them
    assert np.array_equal(told[18:18 + plain.shape[0]], plain)  # the tiles themselves unchanged


def test_loss_axes_do_not_magnify_noise() -> None:
    low, high = y_limits([1.06, 1.11, 1.09, 1.14])
    assert high - low >= MIN_RELATIVE_SPAN * 1.14  # a near-constant term looks near-constant
    assert low <= 1.06 and high >= 1.14
    low, high = y_limits([4.3, 2.9, 2.0, 1.4])  # a real fall keeps the whole panel
    assert low == pytest.approx(1.4 - 0.05 * 2.9) and high == pytest.approx(4.3 + 0.05 * 2.9)
    assert y_limits([0.0001, 0.0002])[0] >= 0  # a loss never gets a negative axis
    assert y_limits([0.87, 0.93], auc=True) == (0.4, 1.0)  # AUC: the blind level 0.5 stays in view


def test_sweep_panels_share_one_scale_and_one_box_size() -> None:
    import matplotlib.pyplot as plt

    angle = torch.linspace(0, 6, 200)
    wide = torch.stack([angle.cos() * 3, angle.sin()], 1)
    narrow = wide * 0.2
    fig = panels_figure({"weight=0": (lambda ax: draw_mix_scatter(ax, wide, wide * 0.9), ["mix on manifold: 0.81", "rec: 0.02"]),
                         "weight=10": (lambda ax: draw_mix_scatter(ax, narrow, narrow), ["mix on manifold: 0.5"]), "weight=100": None},
                        "decoded random mixes (orange) over real samples (blue)")
    try:
        boxes = [ax.get_position() for ax in fig.axes]
        assert len({(round(b.height, 4), round(b.width, 4), round(b.y0, 4)) for b in boxes}) == 1  # aligned, same size
        assert len({(ax.get_xlim(), ax.get_ylim()) for ax in fig.axes}) == 1  # one scale
        assert len({ax.get_title().count("\n") for ax in fig.axes}) == 1
    finally:
        plt.close(fig)


class StopAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, means) -> None:  # noqa: ANN001
        if trainer.epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits run stopped by Ctrl-C after epoch 1 (of 3), then resumed to the end; grids every epoch."""
    out = tmp_path_factory.mktemp("pictures")
    settings = ["train.epochs=3", "train.batch_size=256"]
    recipe = out / "digits.yaml"
    recipe.write_text(f"extends: {DIGITS}\ncallbacks: [{{kind: training_pictures, every: 1, pairs: 4}}]\n")
    with pytest.raises(RunInterrupted) as stopped:
        mixframe.train(recipe, settings, out=out / "runs", callbacks=[StopAt(1)], progress=False)
    run_dir = stopped.value.folder.path
    assert "error" in mixframe.RunFolder(run_dir).info()
    mixframe.resume(run_dir, progress=False)
    return run_dir


def test_run_json_keeps_no_stale_error_after_a_successful_resume(resumed: Path) -> None:
    info = mixframe.RunFolder(resumed).info()
    assert info["status"] == "complete" and "error" not in info and "stopped" not in info
    assert info["resumes"][-1]["after"]["status"] == "interrupted" and info["resumes"][-1]["after"]["error"]  # kept, where it is true


def test_the_final_grid_is_drawn_once_not_copied(resumed: Path) -> None:
    grids = sorted((resumed / "grids").glob("*.png"))
    assert [p.name for p in grids] == ["epoch_0001.png", "epoch_0002.png"]  # the last epoch's grid is grid.png only
    final = (resumed / "grid.png").read_bytes()
    assert all(p.read_bytes() != final for p in grids)


def test_notes_are_shown_apart_from_warnings_in_the_report(resumed: Path, tmp_path: Path) -> None:
    run = tmp_path / resumed.name
    shutil.copytree(resumed, run)
    (run / "warnings.log").write_text("warning: critic 0_adversarial is blind: raise train.critic_lr\n"
                                      "note: critic 0_adversarial learned and is fooled as often as not; the adversary works\n")
    page = build_report([run], interpolation=False)
    assert "<h3>warnings (1)</h3>" in page and "<h3>notes (1)</h3>" in page
    assert re.search(r'<div class="note">critic 0_adversarial learned and is fooled', page)
    assert not re.search(r'<div class="warning[^"]*">note:', page)


def probe(html: Path, width: int) -> tuple[int, int]:
    """(page scroll width, most lines any run name takes in the runs table) in headless Chromium at ``width`` px."""
    scroll, lines = measure(html, width, "d.scrollWidth + ' ' + Math.max(...[...document.querySelectorAll('table.runs td.name a')]"
                                         ".map(a => new Set([...a.getClientRects()].map(r => Math.round(r.top))).size))")
    return scroll, lines


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_runs_table_is_readable_at_800_and_1280_px(resumed: Path, tmp_path: Path) -> None:
    runs = []
    for i in range(6):
        copy = tmp_path / f"digits_amr_mixup_with_a_long_descriptive_name-20261206-120000-copy{i}"
        shutil.copytree(resumed, copy)
        runs.append(copy)
    report = tmp_path / "report.html"
    report.write_text(build_report(runs, interpolation=False), encoding="utf-8")
    for width, most in ((800, 2), (1280, 3)):  # 800 px: a card per run; 1280 px: the table, names broken at - and _ only
        scroll, lines = probe(report, width)
        assert scroll <= width, f"the page scrolls sideways at {width} px"
        assert lines <= most, f"a run's name takes {lines} lines at {width} px"
