"""The Python API: train from Python, load a run without its data, use the model on your own images."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mixframe
from mixframe import Callback, MixframeError, RunFolder
from mixframe.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
SMALL_SPIRAL = ["data.n_train=256", "data.n_val=64", "data.n_test=64", "train.batch_size=64", "train.epochs=2",
                "encoder.hidden=[16, 16]", "decoder.hidden=[16, 16]", "discriminator.hidden=[16, 16]"]


def faces_folder(root: Path, n: int = 24) -> Path:
    """A tiny folder of 12x12 RGB images (a bright square on a dark ground, at different places)."""
    root.mkdir(parents=True)
    for i in range(n):
        pixels = np.full((12, 12, 3), 30, dtype=np.uint8)
        r, c = i % 6, (i // 6) * 2
        pixels[r : r + 6, c : c + 6] = (200, 180 - 5 * i, 40 + 5 * i)
        Image.fromarray(pixels).save(root / f"im{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny AMR run trained from Python on an image folder; returns (run folder, image folder)."""
    base = tmp_path_factory.mktemp("api")
    images = faces_folder(base / "images")
    recipe = base / "folder_amr.yaml"
    recipe.write_text(f"""\
schema: 1
description: AMR on a folder of images
data: {{kind: image_folder, root: {images}, size: 16, val_fraction: 0.2, test_fraction: 0.2}}
encoder: {{kind: conv, depth: 4, latent: 4}}
decoder: {{kind: conv, depth: 4}}
discriminator: {{kind: conv, depth: 4}}
mixer: {{kind: mixup}}
regularizers: [{{kind: adversarial, judge: [reconstruction, mix]}}]
train: {{epochs: 2, batch_size: 4, device: cpu}}
""")
    run = mixframe.train(recipe, out=base / "runs", progress=False)
    assert isinstance(run, mixframe.Run) and run.epoch == 2
    return run.dir, images


def test_a_run_trained_from_python_is_a_run_folder_like_the_cli_makes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = mixframe.train(SPIRAL, SMALL_SPIRAL, out=tmp_path / "py", progress=False)
    args = ["train", str(SPIRAL), "--out", str(tmp_path / "cli"), "--no-progress", *[a for s in SMALL_SPIRAL for a in ("--set", s)]]
    assert main(args) == 0
    (cli_run,) = (tmp_path / "cli").iterdir()
    layout = {p.relative_to(run.dir).parts[0] for p in run.dir.rglob("*")}
    assert layout == {p.relative_to(cli_run).parts[0] for p in cli_run.rglob("*")}
    assert {"recipe.yaml", "run.json", "data.json", "checkpoint.pt", "metrics.csv", "grid.png", "loss_curves.png"} <= layout
    assert run.folder.read_recipe() == RunFolder(cli_run).read_recipe()
    assert torch.equal(run.folder.load_checkpoint()["model"]["encoder.net.0.weight"],
                       RunFolder(cli_run).load_checkpoint()["model"]["encoder.net.0.weight"])  # same recipe, same seed
    capsys.readouterr()
    assert main(["evaluate", str(run.dir), "--metric", "manifold"]) == 0
    assert "on_manifold_fraction" in run.folder.evaluation()["metrics"]
    assert main(["report", str(run.dir), str(cli_run), "--out", str(tmp_path / "r.html")]) == 0
    assert run.name in (tmp_path / "r.html").read_text()


def test_loading_needs_no_data_and_interpolates_your_own_images(image_run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, images = image_run
    moved = tmp_path / "elsewhere"
    shutil.move(images, moved)  # the training data is gone
    try:
        run = mixframe.load_run(run_dir)
        x = run.to_input([moved / "im00.png", moved / "im20.png"])
        assert x.shape == (2, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
        row = run.interpolate(x[0], x[1], steps=5)
        assert row.shape == (1, 5, 3, 16, 16)
        pictures = run.to_images(row[0])
        assert len(pictures) == 5 and pictures[2].size == (16, 16) and pictures[2].mode == "RGB"
        pictures[2].save(tmp_path / "middle.png")
        assert Image.open(tmp_path / "middle.png").size == (16, 16)
        with pytest.raises(MixframeError, match="image folder .* not found"):
            run.data  # evaluation needs the data: the message says so
    finally:
        shutil.move(moved, images)


def test_the_six_line_script_from_the_readme(image_run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, images = image_run
    script = f"""\
import mixframe
run = mixframe.load_run({str(run_dir)!r})
x = run.to_input([{str(images / 'im01.png')!r}, {str(images / 'im22.png')!r}])
frames = run.to_images(run.interpolate(x[0], x[1], steps=8)[0])
frames[0].save({str(tmp_path / 'interp.png')!r}, save_all=True, append_images=frames[1:])
"""
    assert len(script.strip().splitlines()) <= 6
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "interp.png").n_frames == 8


def test_inputs_in_every_form_give_the_same_tensor(image_run: tuple[Path, Path]) -> None:
    run_dir, images = image_run
    run = mixframe.load_run(run_dir)
    path = images / "im03.png"
    as_path = run.to_input(path)
    as_pil = run.to_input(Image.open(path))
    as_array = run.to_input(np.asarray(Image.open(path)))
    assert torch.allclose(as_path, as_pil) and torch.allclose(as_path, as_array)
    assert torch.equal(run.to_input(as_path), as_path)  # tensors are taken as model input already
    with pytest.raises(MixframeError, match="missing.png not found"):
        run.to_input(images / "missing.png")
    (images / "broken.png").write_bytes(b"not a png")
    try:
        with pytest.raises(MixframeError, match="broken.png is not an image"):
            run.to_input(images / "broken.png")
    finally:
        (images / "broken.png").unlink()


def test_mix_with_the_runs_mixer_or_any_registered_one(image_run: tuple[Path, Path]) -> None:
    run = mixframe.load_run(image_run[0])
    h = run.encode(run.split("test")[0][:4])
    own = run.mix(h, h.flip(0), seed=1)
    assert own.codes.shape == h.shape and torch.equal(own.codes, run.mix(h, h.flip(0), seed=1).codes)
    swapped = run.mix(h, h.flip(0), mixer="bernoulli", sampler="per_example", seed=0)
    assert set(swapped.weights.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(MixframeError, match="mixes 2 batches of codes; 3 were given"):
        run.mix(h, h, h)
    with pytest.raises(MixframeError, match="sampler"):
        run.mix(h, h, mixer="bernoulli", sampler="per_pixel")


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_start(self, trainer) -> None:  # noqa: ANN001
        self.events.append("start")

    def on_epoch_end(self, trainer, means) -> None:  # noqa: ANN001
        self.events.append(f"epoch {trainer.epoch}")
        assert "epoch/ae/reconstruction" in means

    def on_end(self, trainer, summary) -> None:  # noqa: ANN001
        self.events.append("end")


def test_your_own_callbacks_hear_the_engines_events(tmp_path: Path) -> None:
    recorder = Recorder()
    mixframe.train(SPIRAL, SMALL_SPIRAL, out=tmp_path, callbacks=[recorder], progress=False)
    assert recorder.events == ["start", "epoch 1", "epoch 2", "end"]


def test_a_folder_that_is_not_a_run_is_a_message(tmp_path: Path) -> None:
    with pytest.raises(MixframeError, match="not a mixframe run folder"):
        mixframe.load_run(tmp_path)
    with pytest.raises(MixframeError, match="does not exist"):
        mixframe.load_run(tmp_path / "nothing")


def test_a_run_loads_after_a_callback_plugin_it_used_is_gone(tmp_path: Path) -> None:
    run = mixframe.train(SPIRAL, [*SMALL_SPIRAL, "train.epochs=1"], out=tmp_path, progress=False)
    recipe = run.folder.file(RunFolder.RECIPE)
    recipe.write_text(recipe.read_text().replace("callbacks:\n", "callbacks:\n- {kind: uninstalled_tracker, project: x}\n", 1))
    loaded = mixframe.load_run(run.dir)  # the tracker only acted during training
    assert loaded.epoch == 1 and "uninstalled_tracker" not in [c.name for c in loaded.recipe.callbacks]
    with pytest.raises(MixframeError, match="uninstalled_tracker"):
        mixframe.resume(run.dir, ["train.epochs=2"], progress=False)  # training again needs it: say so
