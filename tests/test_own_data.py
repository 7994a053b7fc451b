"""A researcher's own folder of pictures: class sub-folders as labels, one preprocessing path, paths read from the recipe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mixframe
from mixframe import DataContext, MixframeError
from mixframe.cli.main import main
from mixframe.kernel.config import Problems, structure
from mixframe_plugins.datasets import image_folder
from mixframe_plugins.datasets.image_folder import ImageFolderConfig

CLASSES = ("cats", "dogs", "owls")


def class_folders(root: Path, per_class: int = 8, size: tuple[int, int] = (20, 14)) -> Path:
    """Pictures (not square: the aspect setting matters) in one folder per class; each class its own colour."""
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0], 3), 20, dtype=np.uint8)
            pixels[:, : 4 + i] = (60 + 80 * k, 200 - 60 * k, 30 + 10 * i)
            Image.fromarray(pixels).save(root / name / f"{name}{i}.png")
    return root


def folder_config(root: Path, **values: object) -> ImageFolderConfig:
    problems = Problems()
    config = structure(ImageFolderConfig, {"root": str(root), "size": 8, "val_fraction": 0.2, "test_fraction": 0.2, **values},
                       "data", problems)
    assert not problems, problems.items
    return config


def recipe_text(root: str, extra: str = "") -> str:
    return f"""\
schema: 1
description: AMR on my own pictures in class folders
data: {{kind: image_folder, root: {root}, size: 16, val_fraction: 0.2, test_fraction: 0.2{extra}}}
encoder: {{kind: conv, depth: 4, latent: 4}}
decoder: {{kind: conv, depth: 4}}
discriminator: {{kind: conv, depth: 4}}
mixer: {{kind: mixup}}
regularizers: [{{kind: adversarial, judge: [reconstruction, mix]}}]
metrics: [{{kind: reconstruction}}]
train: {{epochs: 1, batch_size: 4, device: cpu}}
"""


def test_class_sub_folders_are_class_labels_with_auto_and_folders(tmp_path: Path) -> None:
    root = class_folders(tmp_path / "pics")
    for labels in ("auto", "folders"):
        bundle = image_folder.build(folder_config(root, labels=labels), DataContext())
        assert bundle.label_kind == "class" and bundle.spec.num_classes == 3
        for split in (bundle.train, bundle.val, bundle.test):
            for i in range(len(split)):
                x, y = split[i]
                assert y.dtype == torch.int64 and CLASSES[int(y)] == split.paths[i].parent.name  # sorted folder names
    unlabelled = image_folder.build(folder_config(root, labels="none"), DataContext())
    assert unlabelled.label_kind == "none" and unlabelled.spec.num_classes is None


def test_auto_leaves_a_flat_or_mixed_folder_unlabelled_and_folders_says_which_pictures_have_no_class(tmp_path: Path) -> None:
    root = class_folders(tmp_path / "pics")
    Image.new("RGB", (9, 9)).save(root / "loose.png")  # one picture beside the class folders
    assert image_folder.build(folder_config(root), DataContext()).label_kind == "none"
    with pytest.raises(MixframeError, match=r"1 image\(s\) sit directly in .* \(first: loose.png\); move each into a folder named after its class"):
        image_folder.build(folder_config(root, labels="folders"), DataContext())
    one = tmp_path / "one"
    (one / "cats").mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (9, 9), (i, i, i)).save(one / "cats" / f"{i}.png")
    assert image_folder.build(folder_config(one), DataContext()).label_kind == "none"
    with pytest.raises(MixframeError, match="at least two classes"):
        image_folder.build(folder_config(one, labels="folders"), DataContext())
    with pytest.raises(MixframeError, match="data.labels is attributes but data.attributes names no CSV"):
        image_folder.build(folder_config(root, labels="attributes"), DataContext())


def test_a_data_root_that_is_a_file_is_said_to_be_a_file(tmp_path: Path) -> None:
    (tmp_path / "pics.zip").write_bytes(b"PK")
    with pytest.raises(MixframeError, match=r"pics.zip is a file, not a folder; set data.root to the folder"):
        image_folder.build(folder_config(tmp_path / "pics.zip"), DataContext())


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_to_input_of_a_training_picture_equals_the_datasets_own_tensor(tmp_path: Path, keep_aspect: bool) -> None:
    root = class_folders(tmp_path / "pics", per_class=4)
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(recipe_text(str(root), f", keep_aspect: {str(keep_aspect).lower()}"))
    run = mixframe.train(recipe, out=tmp_path / "runs", progress=False)
    loaded = mixframe.load_run(run.dir)  # from data.json, without the data
    assert loaded.spec.preprocess is not None and loaded.spec.preprocess.keep_aspect is keep_aspect
    train = run.data.train
    for i in range(3):
        assert torch.equal(loaded.to_input(train.paths[i])[0], train[i][0])
        assert torch.equal(loaded.to_input(Image.open(train.paths[i]))[0], train[i][0])
    other = image_folder.pixel_transform(16, "signed", keep_aspect=not keep_aspect, channels=3)  # the setting matters for these pictures
    assert (other(Image.open(train.paths[0])) - train[0][0]).abs().max() > 0.1


def test_a_relative_root_is_read_from_the_recipes_folder_and_recorded_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    class_folders(project / "pics", per_class=4)
    (project / "mine.yaml").write_text(recipe_text("pics"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = mixframe.train(project / "mine.yaml", out="runs", progress=False)
    recorded = run.folder.read_recipe().data.config.root
    assert recorded == str(project / "pics") and Path(recorded).is_absolute()
    monkeypatch.chdir(tmp_path)  # evaluate from yet another folder: the recorded path still finds the data
    assert main(["evaluate", str(elsewhere / run.dir), "--metric", "reconstruction"]) == 0
    with_set = mixframe.train(project / "mine.yaml", ["data.root=project/pics"], out="runs2", progress=False)  # --set: current folder
    assert with_set.folder.read_recipe().data.config.root == str(project / "pics")


def test_recipe_check_finds_missing_data_and_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(recipe_text("pics"))
    assert main(["recipe", "check", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert f"data.root: {tmp_path / 'pics'} does not exist; put the folder there or set data.root" in err
    (tmp_path / "pics").write_bytes(b"")
    assert main(["recipe", "check", str(recipe)]) == 2
    assert f"data.root: {tmp_path / 'pics'} is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "pics").unlink()
    class_folders(tmp_path / "pics", per_class=2)
    assert main(["recipe", "check", str(recipe)]) == 0
    assert main(["recipe", "check", str(recipe), "--set", "data.attributes=labels.csv"]) == 2
    assert f"data.attributes: {tmp_path / 'pics' / 'labels.csv'} does not exist (read from data.root" in capsys.readouterr().err


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("own")
    root = class_folders(base / "pics", per_class=10)
    (base / "mine.yaml").write_text(recipe_text(str(root), ", labels: folders"))
    assert main(["train", str(base / "mine.yaml"), "--out", str(base / "runs"), "--no-progress"]) == 0
    (run,) = (base / "runs").iterdir()
    return run


def test_probe_runs_on_a_folder_trained_with_class_folders(labelled_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads((labelled_run / "data.json").read_text())["label_kind"] == "class"
    assert main(["evaluate", str(labelled_run), "--metric", "probe", "--metric", "clustering"]) == 0
    metrics = mixframe.RunFolder(labelled_run).evaluation()["metrics"]
    assert metrics["probe_acc"] > 0.5 and "cluster_acc" in metrics  # three classes of distinct colours: well above chance (1/3)


def test_a_metric_that_cannot_run_says_where_it_was_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = class_folders(tmp_path / "pics", per_class=4)
    for picture in root.glob("*/*.png"):  # flat: labels auto finds no classes (the recipe check cannot know that beforehand)
        picture.rename(root / picture.name)
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(recipe_text(str(root)).replace("[{kind: reconstruction}]", "[{kind: probe}]"))
    run = mixframe.train(recipe, out=tmp_path / "runs", progress=False)
    assert main(["evaluate", str(run.dir), "--metric", "probe"]) == 2
    err = capsys.readouterr().err
    assert "needs integer class labels" in err and "data.labels=folders" in err
    assert "'probe' was asked for by name (--metric probe" in err and "recipe's metrics" not in err
    assert main(["evaluate", str(run.dir)]) == 2
    assert "'probe' is one of the metrics in the recipe of" in capsys.readouterr().err


def test_data_json_records_the_preprocessing_and_an_older_run_without_it_still_loads(labelled_run: Path, tmp_path: Path) -> None:
    recorded = json.loads((labelled_run / "data.json").read_text())
    assert recorded["preprocess"] == {"size": 16, "value_range": [-1.0, 1.0], "keep_aspect": False, "crop": None, "channels": 3}
    older = tmp_path / labelled_run.name
    os.symlink(labelled_run, older)
    data = labelled_run / "data.json"
    saved = data.read_text()
    try:
        data.write_text(json.dumps({k: v for k, v in recorded.items() if k != "preprocess"}))
        run = mixframe.load_run(older)
        assert run.spec.preprocess is None and run.to_input(Image.new("RGB", (30, 10))).shape == (1, 3, 16, 16)  # stretched
    finally:
        data.write_text(saved)


def test_interpolate_between_two_of_your_pictures_from_the_command_line(labelled_run: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    first, second = labelled_run.parent.parent / "pics" / "cats" / "cats1.png", labelled_run.parent.parent / "pics" / "owls" / "owls7.png"
    assert main(["interpolate", str(labelled_run), "--between", str(first), str(second), "--steps", "5",
                 "--out", str(tmp_path / "path.png")]) == 0
    run = mixframe.load_run(labelled_run)
    from mixframe.tools.interpolate import interpolation_gif, interpolation_png

    x = run.to_input([first, second])
    assert (tmp_path / "path.png").read_bytes() == interpolation_png([run], steps=5, x1=x[:1], x2=x[1:])
    assert main(["interpolate", str(labelled_run), "--between", str(first), str(second), "--steps", "5", "--mode", "bernoulli",
                 "--out", str(tmp_path / "path.gif")]) == 0
    gif = Image.open(tmp_path / "path.gif")
    assert gif.is_animated and gif.n_frames == 5 + 3  # there and back
    assert (tmp_path / "path.gif").read_bytes() == interpolation_gif(run, x[:1], x[1:], 5, "bernoulli")
    expected = run.to_images(run.interpolate(x[0], x[1], steps=5, mode="bernoulli")[0])  # the same code as Run.interpolate
    for j in (0, 2, 4):
        gif.seek(j)
        frame = gif.convert("RGB")
        scale = frame.width // 16
        decoded = np.asarray(frame.crop((0, 0, 16 * scale, 16 * scale)).resize((16, 16), Image.NEAREST), dtype=float)
        assert np.abs(decoded - np.asarray(expected[j], dtype=float)).mean() < 4  # the GIF palette rounds colours a little
    capsys.readouterr()
    assert main(["interpolate", str(labelled_run), str(labelled_run), "--out", str(tmp_path / "two.gif")]) == 2
    assert "an animated GIF shows one run's path" in capsys.readouterr().err
    assert main(["interpolate", str(labelled_run), "--between", str(first), str(tmp_path / "nope.png"), "--out", str(tmp_path / "n.png")]) == 2
    assert "nope.png" in capsys.readouterr().err
