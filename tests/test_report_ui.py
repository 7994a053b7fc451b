"""The report as a person sees it: every metric explained, missing evaluations called out, and (in a real
headless Chromium, skipped where none is installed) no horizontal scrolling at 1280 px for many runs and
many metrics."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from browser import CHROMIUM, measure

from mixframe.runs.folder import RunFolder
from mixframe.tools.report import build_report, meaning_of

ROOT = Path(__file__).resolve().parents[1]
# The digits recipe's metrics, with the names their plugins give their values (23 values).
EVALUATION = {
    "probe": {"probe_acc": 0.95, "probe_c": 0.1, "probe_acc_10": 0.8676, "probe_acc_10_std": 0.0133, "probe_acc_100": 0.9602,
              "probe_acc_100_std": 0.0013},
    "clustering": {"cluster_acc": 0.61},
    "realism": {"realism_classifier_acc": 0.97, "real_confidence": 0.98, "midpoint_confidence": 0.71, "rec_confidence": 0.93,
                "mix_fid": 12.5, "rec_fid": 3.25},
    "reconstruction": {"rec_mse": 0.0412, "rec_psnr": 19.8, "rec_ssim": 0.81},
    "manifold": {"on_manifold_fraction": 0.5, "on_manifold_threshold": 0.1, "mix_distance_mean": 0.2, "rec_on_manifold_fraction": 0.9,
                 "rec_distance_mean": 0.05, "data_mix_on_manifold_fraction": 0.1, "data_mix_distance_mean": 0.4},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, digits_run: Path) -> list[Path]:
    """Eight copies of the shared tiny digits run, long-named as real ones are, all but the last evaluated."""
    base = tmp_path_factory.mktemp("ui")
    first = Path(shutil.copytree(digits_run, base / "runs" / "digits_amr_mixup_with_a_long_descriptive_name-20261201-120000"))
    out = [first]
    for i in range(1, 8):
        copy = base / "runs" / f"{first.name}-copy{i}"
        shutil.copytree(first, copy)
        out.append(copy)
    for i, run in enumerate(out[:-1]):
        by_metric = {m: {k: v * (1 + i / 10) for k, v in values.items()} for m, values in EVALUATION.items()}
        (run / "evaluation.json").write_text(json.dumps({"by_metric": by_metric, "metrics": {k: v for m in by_metric.values() for k, v in m.items()}}))
    return out


def test_every_metric_shown_is_explained_and_a_missing_evaluation_is_called_out(runs: list[Path]) -> None:
    page = build_report(runs, interpolation=False)
    table = page[page.index('<table class="metrics">'):]
    table = table[:table.index("</table>")]
    shown = re.findall(r'<td class="value"><code>([^<]*)</code><span class="meaning">([^<]*)</span>', table)
    assert len(shown) == sum(len(v) for v in EVALUATION.values())  # metrics are rows, one per value
    for key, meaning in shown:
        assert meaning and "gives no meaning" not in meaning, key
    assert ("probe_acc_10", "the same test accuracy with only 10 labelled training examples per class (mean over draws); higher is better") \
        in shown
    assert table.count('<tr class="group">') == len(EVALUATION)  # grouped by the metric plugin
    assert [f"#{i}" for i in range(1, 9)] == re.findall(r'<a href="#run-[^"]*">(#\d+)</a></th>', table)  # a narrow column per run
    assert table.count('<td class="num missing">&ndash;</td>') == len(shown)  # the last run's column: not evaluated
    assert f"Not evaluated: #8 {runs[-1].name}" in page and f"<code>mixframe evaluate {runs[-1]}</code>" in page
    # a report of runs none of which was evaluated says what to run
    alone = build_report(runs[-1:], interpolation=False)
    assert "No run has been evaluated yet" in alone and f"mixframe evaluate {runs[-1]}" in alone
    # the validation loss and every run's pictures
    epoch, best = min(RunFolder(runs[0]).epoch_curves()["epoch/val/reconstruction"], key=lambda point: point[1])
    assert "validation reconstruction loss" in page and f"best {best:.4g}, epoch {epoch}" in page
    assert page.count('alt="grid.png: validation pairs') == len(runs)


def test_meaning_families() -> None:
    meanings = {"probe_acc_{n}": "with {n} labels", "probe_acc_{n}_std": "spread with {n}", "probe_c": "C"}
    assert meaning_of("probe_acc_100", meanings) == "with 100 labels"
    assert meaning_of("probe_acc_100_std", meanings) == "spread with 100"
    assert meaning_of("probe_c", meanings) == "C" and meaning_of("probe_acc_x", meanings) == ""
    named = {"mix_accuracy_{name}": "the {name} attribute", "mix_attribute_accuracy": "all attributes"}
    assert meaning_of("mix_accuracy_large", named) == "the large attribute"  # {name}: a word (an attribute's name)
    assert meaning_of("mix_attribute_accuracy", named) == "all attributes" and meaning_of("mix_accuracy_", named) == ""


def page_widths(html: Path, width: int) -> tuple[int, int]:
    """(scrollWidth, clientWidth) of the page in headless Chromium at ``width`` px."""
    scroll, client = measure(html, width, "d.scrollWidth + ' ' + d.clientWidth")
    return scroll, client


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_report_fits_a_laptop_screen_in_a_real_browser(runs: list[Path], tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(build_report(runs, pairs=3, steps=8), encoding="utf-8")
    scroll, client = page_widths(report, 1280)
    assert client == 1280 and scroll <= 1280, f"the page scrolls sideways at 1280 px: {scroll} px wide"
    # the probe does see a page that is too wide
    wide = tmp_path / "wide.html"
    wide.write_text('<html><body><div style="width:3000px">x</div></body></html>', encoding="utf-8")
    assert page_widths(wide, 1280)[0] > 1280
