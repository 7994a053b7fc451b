"""mixframe as an installed package: a built wheel holds the recipes, the license and every entry point, and
works from an empty folder; shipped recipes by name (list, extend, copy, train); the light commands start
without torch; the own-data example recipes train on a folder of pictures."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mixframe
from mixframe import MixframeError, shipped
from mixframe.kernel.recipe import RecipeError, copy_shipped, load_recipe

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "mixframe", "plugins", "recipes", "studies")


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, a --target folder it is installed into), built from a copy of the sources (the checkout stays untouched)."""
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} cannot build the SPDX license field; pip install 'setuptools>=77' (the test extra)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(ROOT / name, src / name)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(src)], tmp)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (tmp / "dist").glob("mixframe-*.whl")
    site = tmp / "site"
    installed = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)], tmp)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return wheel, site


@pytest.mark.slow
def test_the_wheel_holds_the_recipes_the_license_and_the_entry_points(wheel_site: tuple[Path, Path]) -> None:
    wheel, _ = wheel_site
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        [info] = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        metadata = whl.read(f"{info}/METADATA").decode()
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    recipes = {p.relative_to(ROOT / "recipes").as_posix() for p in (ROOT / "recipes").rglob("*.yaml")}
    assert recipes and {f"mixframe_recipes/{r}" for r in recipes} <= names  # every shipped recipe, subfolders included
    studies = {p.name for p in (ROOT / "studies").glob("*.yaml")}
    assert studies and {f"mixframe_studies/{n}" for n in studies} <= names  # every shipped study
    assert f"{info}/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    declared = (ROOT / "pyproject.toml").read_text()
    for line in entry_points.splitlines():
        if " = mixframe_plugins." in line:
            name, module = line.split(" = ")
            assert f'{name} = "{module}"' in declared
    assert "recipes = mixframe_plugins.commands.recipes:command" in entry_points


@pytest.mark.slow
def test_an_installed_wheel_works_from_an_empty_folder(wheel_site: tuple[Path, Path], tmp_path: Path) -> None:
    _, site = wheel_site
    env = {"PYTHONPATH": str(site)}
    mixframe_cmd = [sys.executable, "-m", "mixframe"]
    where = run([sys.executable, "-c", "import mixframe, mixframe_plugins, mixframe_recipes as r; print(mixframe.__file__); print(r.__file__)"],
                tmp_path, env)
    assert where.returncode == 0 and all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout + where.stderr

    listed = run([*mixframe_cmd, "recipes"], tmp_path, env)
    assert listed.returncode == 0, listed.stderr
    assert "digits_amr_mixup " in listed.stdout and "full/mnist_amr_mixup" in listed.stdout and str(site) in listed.stdout
    checked = run([*mixframe_cmd, "recipe", "check", "digits_amr_mixup"], tmp_path, env)
    assert checked.returncode == 0 and "digits_amr_mixup: ok" in checked.stdout, checked.stderr

    copied = run([*mixframe_cmd, "recipe", "copy", "spiral_amr", "mine.yaml"], tmp_path, env)
    assert copied.returncode == 0, copied.stderr
    (tmp_path / "child.yaml").write_text("extends: shipped:spiral_amr\ndescription: mine\nmixer: {kind: bernoulli}\n")
    for recipe in ("mine.yaml", "child.yaml"):
        assert run([*mixframe_cmd, "recipe", "check", recipe], tmp_path, env).returncode == 0

    trained = run([*mixframe_cmd, "train", "spiral_amr", "--set", "train.epochs=1", "--set", "train.max_steps=2", "--no-progress",
                   "--set", "data.n_train=128", "--set", "data.n_val=32", "--set", "data.n_test=32"], tmp_path, env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    [folder] = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("spiral_amr-") and "epoch 1/1" in (folder / "train.log").read_text()


def test_the_light_commands_import_no_torch(tmp_path: Path) -> None:
    probe = ("import sys, contextlib, io\nfrom mixframe.cli.main import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    for argv in (['--help'], ['recipes'], ['recipe', 'copy', 'digits_ae', 'x.yaml'], ['recipe', '--help']):\n"
             "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
             "print(sorted(m for m in ('torch', 'torchvision', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules))")
    done = run([sys.executable, "-c", probe], tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
    assert (tmp_path / "x.yaml").is_file()


def test_the_command_table_imports_no_command_until_asked_and_the_registry_loads_in_one_phase() -> None:
    import attrs

    from mixframe import Component, hookimpl
    from mixframe.kernel.registry import Commands, Registry, watch_warnings

    table = Commands(autoload=False)
    assert {"recipes", "train", "masks"} <= set(table.names())
    assert table.entry("train").value == "mixframe_plugins.commands.train:command"
    assert table.get("train").name == "train" and table.get("masks").name == "masks"

    @attrs.frozen
    class NoConfig:
        pass

    class Clash:  # a second "mixup"
        @staticmethod
        @hookimpl
        def mixframe_components() -> list[Component]:
            return [Component(kind="mixer", name="mixup", implementation=object, config=NoConfig, summary="a clash")]

    heard: list[str] = []
    stop = watch_warnings(heard.append)
    try:
        registry = Registry(autoload=False, plugins=[("clash", Clash)])
    finally:
        stop()
    loaded = {name for name, _ in registry.manager.list_name_plugin()}
    assert {"mixers-mixup", "networks-conv", "clash"} <= loaded  # everything, in the constructor
    assert registry.providers("mixer", "mixup") == ["mixers-mixup", "clash"]
    assert len(heard) == 1 and "mixer 'mixup' is provided by 2 plugins" in heard[0]  # the watcher hears the clash at once
    assert registry.warnings() == heard


def test_shipped_recipes_are_described_with_their_scale() -> None:
    recipes = shipped.catalogue()
    names = [r.name for r in recipes]
    assert "digits_amr_mixup" in names and "base/digits" in names and "examples/image_folder_amr" in names
    for recipe in recipes:
        if not recipe.is_base:  # a description that ends in its scale, as the listing shows it
            assert "CPU" in recipe.scale or "GPU" in recipe.scale, recipe
            assert recipe.description and "(" not in recipe.description[-3:], recipe
    [digits] = [r for r in recipes if r.name == "digits_amr_mixup"]
    assert (digits.scale, digits.notes) == ("CPU", "a few minutes")
    assert {r.name for r in recipes if r.is_base} >= {"base/digits", "full/base_32px"}


def test_shipped_names_in_recipes_and_their_mistakes(tmp_path: Path) -> None:
    assert load_recipe("digits_amr_mixup").mixer.name == "mixup"  # a name, not a path
    assert load_recipe("shipped:full/mnist_amr_mixup.yaml").data.name == "mnist"
    child = tmp_path / "child.yaml"
    child.write_text("extends: [shipped:base/digits, shipped:digits_amr_bernoulli]\ntrain: {epochs: 3}\n")
    recipe = load_recipe(child)
    assert recipe.mixer.name == "bernoulli" and recipe.train.epochs == 3
    child.write_text("extends: shipped:digits_amr_mixpu\n")
    with pytest.raises(RecipeError, match=r"extends: no shipped recipe is named 'digits_amr_mixpu'; choices: .*digits_amr_mixup.*"
                                          r"did you mean 'digits_amr_mixup'"):
        load_recipe(child)
    with pytest.raises(RecipeError, match=r"\(file\): not found, and no shipped recipe has that name; shipped recipes: .*base/digits"):
        load_recipe("digits_amr_mixpu")
    with pytest.raises(RecipeError, match="not found; check the path"):  # an absolute path is never looked up by name
        load_recipe(tmp_path / "nowhere.yaml")


def test_recipe_copy_stands_alone_and_never_overwrites(tmp_path: Path) -> None:
    dest = copy_shipped("digits_acai", tmp_path / "mine" / "acai.yaml")
    text = dest.read_text()
    assert text.startswith("# Started from the shipped recipe digits_acai") and "extends" not in text.split("\n# ")[-1]
    assert load_recipe(dest).to_dict() == load_recipe("digits_acai").to_dict()
    with pytest.raises(MixframeError, match="already exists; it is left as it is"):
        copy_shipped("digits_ae", dest)
    assert dest.read_text() == text
    assert copy_shipped("digits_ae", tmp_path).name == "digits_ae.yaml"  # a folder receives NAME.yaml
    with pytest.raises(MixframeError, match="no shipped recipe is named 'nope'"):
        copy_shipped("nope", tmp_path / "x.yaml")


# -- your own pictures: the example recipes of docs/own-data.md ------------------------------------------------------


def picture_folder(folder: Path, n: int = 40) -> Path:
    """``n`` small pictures (a coloured disc or square on a background, subfolders too) and attributes.csv (round, red)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        round_, red = i % 2, (i // 2) % 2
        yy, xx = np.mgrid[:40, :40]
        cx, cy = rng.integers(12, 28, size=2)
        inside = ((xx - cx) ** 2 + (yy - cy) ** 2 < 64) if round_ else ((abs(xx - cx) < 7) & (abs(yy - cy) < 7))
        pixels = np.full((40, 40, 3), rng.integers(0, 80), dtype=np.uint8)
        pixels[inside] = (220, 40, 40) if red else (40, 90, 220)
        name = f"{'set_a' if i < n // 2 else 'set_b'}/picture_{i:03d}.png"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name)
        rows.append([name, round_, red])
    with (folder / "attributes.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["filename", "round", "red"], *rows])
    return folder


@pytest.mark.slow
def test_the_own_data_examples_train_on_a_folder_of_pictures(tmp_path: Path) -> None:
    folder = picture_folder(tmp_path / "pictures")
    small = [f"data.root={folder}", "train.epochs=1", "train.max_steps=2", "encoder.depth=4", "decoder.depth=4", "discriminator.depth=4"]
    plain = mixframe.train("examples/image_folder_amr", small, out=tmp_path / "runs", progress=False)
    assert plain.spec.shape == (3, 32, 32) and plain.folder.info()["status"] == "complete"
    assert "epoch/val/reconstruction" in plain.logged()
    assert plain.folder.file("checkpoint_best.pt").is_file() and mixframe.load_run(plain.dir, best=True).epoch == 1
    labelled = mixframe.train("examples/image_folder_attributes", small, out=tmp_path / "runs", progress=False)
    assert labelled.spec.attribute_names == ("round", "red") and labelled.recipe.mixer.name == "class_mixer"
    # docs/own-data.md: interpolate two of your own pictures with the Python API, the training data gone
    shutil.rmtree(folder)
    run = mixframe.load_run(plain.dir)
    mine = picture_folder(tmp_path / "mine", n=2)
    x = run.to_input([mine / "set_a" / "picture_000.png", mine / "set_b" / "picture_001.png"])
    frames = run.to_images(run.interpolate(x[0], x[1], steps=6)[0])
    assert len(frames) == 6 and frames[0].size == (32, 32)
    json.dumps(run.logged())  # plain data
