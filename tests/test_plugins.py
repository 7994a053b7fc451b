"""The plugin registry: built-ins, a third-party package, a broken one, a duplicate, a misspelt hook, commands."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mixframe.kernel.hookspecs import KINDS
from mixframe.kernel.recipe import RecipeError, check, resolve_file
from mixframe.kernel.registry import AmbiguousComponentError, Registry, UnknownComponentError

MIXER_SOURCE = '''
import attrs
import torch
from mixframe import Component, Mixer, MixResult, hookimpl, param, in_range


@attrs.frozen(kw_only=True)
class HalfConfig:
    weight: float = param(0.5, help="weight of the first code", validator=in_range(0, 1))


class HalfMixer(Mixer):
    """Always mixes with the same weight."""

    def __init__(self, config, context):
        super().__init__()
        self.config = config

    def forward(self, sources, labels=None):
        h, h2 = sources
        w = torch.full((h.shape[0], h.shape[1]), self.config.weight)
        return MixResult(codes=self.config.weight * h + (1 - self.config.weight) * h2, weights=torch.stack([w, 1 - w], 1))


@hookimpl
def mixframe_components():
    return [Component(kind="mixer", name="{name}", implementation=HalfMixer, config=HalfConfig, summary="a fixed-weight mix")]
'''


ROOT = Path(__file__).resolve().parent.parent


def make_distribution(site: Path, dist: str, module: str, source: str, version: str = "0.3.1",
                      commands: dict[str, tuple[str, str]] | None = None) -> None:
    """A distribution on ``site`` with its metadata and a ``mixframe`` entry point, as pip would leave it; ``commands``:
    NAME -> (module, source) of a light command module, declared in ``mixframe.commands`` as ``NAME = module:command``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    declared = f"[mixframe]\n{module} = {module}\n"
    if commands:
        declared += "\n[mixframe.commands]\n"
        for name, (command_module, command_source) in commands.items():
            (site / f"{command_module}.py").write_text(textwrap.dedent(command_source))
            declared += f"{name} = {command_module}:command\n"
    (info / "entry_points.txt").write_text(declared)


def mixframe(*args: str, site: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "mixframe", *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_builtins_register_through_the_entry_point_group() -> None:
    result = mixframe("plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["failures"] == []
    components = {(c["kind"], c["name"]) for p in data["plugins"] for c in p["components"]}
    for expected in [("mixer", "mixup"), ("mixer", "bernoulli"), ("mixer", "kway"), ("regularizer", "adversarial"),
                     ("encoder", "conv"), ("dataset", "digits")]:
        assert expected in components
    assert all(p["distribution"] == "mixframe" for p in data["plugins"])


def test_third_party_mixer_is_listed_and_usable_in_a_recipe(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-half", "mixframe_half", MIXER_SOURCE.replace("{name}", "half"))
    listed = mixframe("components", "mixer", site=site)
    assert listed.returncode == 0, listed.stderr
    assert "half" in listed.stdout and "mixframe_half" in listed.stdout
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {Path('recipes/digits_amr_mixup.yaml').resolve()}\nmixer: {{kind: half, weight: 0.3}}\n")
    checked = mixframe("recipe", "check", str(recipe), site=site)
    assert checked.returncode == 0, checked.stderr
    bad = mixframe("recipe", "check", str(recipe), "--set", "mixer.weight=2", site=site)
    assert bad.returncode == 2 and "mixer.weight: must be >= 0 and <= 1, got 2.0" in bad.stderr


def test_broken_plugin_is_reported_and_the_others_still_load(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-broken", "mixframe_broken", "import not_a_module_anywhere\n", version="9.9")
    make_distribution(site, "mixframe-half", "mixframe_half", MIXER_SOURCE.replace("{name}", "half"))
    result = mixframe("plugins", "--json", site=site)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    [failure] = data["failures"]
    assert failure["distribution"] == "mixframe-broken" and failure["version"] == "9.9"
    assert "not_a_module_anywhere" in failure["error"]
    assert "half" in {c["name"] for p in data["plugins"] for c in p["components"]}
    # an unknown name mentions the plugin that failed to load
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {Path('recipes/digits_amr_mixup.yaml').resolve()}\nmixer: {{kind: brokenmix}}\n")
    checked = mixframe("recipe", "check", str(recipe), site=site)
    assert checked.returncode == 2
    assert "mixframe-broken 9.9 failed to load" in checked.stderr and "Traceback" not in checked.stderr


def test_duplicate_component_name_warns_and_only_that_name_must_be_chosen(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-clash", "mixframe_clash", MIXER_SOURCE.replace("{name}", "mixup"))
    result = mixframe("components", "mixer", site=site)
    assert result.returncode == 0, result.stderr  # the clash stops nothing
    assert "mixer 'mixup' is provided by 2 plugins" in result.stderr
    assert "'mixers-mixup' (mixframe" in result.stderr and "'mixframe_clash' (mixframe-clash 0.3.1)" in result.stderr
    assert "kind: mixframe_clash:mixup" in result.stderr and "Traceback" not in result.stderr
    plain = mixframe("recipe", "check", str(Path("recipes/digits_ae.yaml").resolve()), site=site)
    assert plain.returncode == 0, plain.stderr  # a recipe that does not name the duplicate
    named = mixframe("recipe", "check", str(Path("recipes/digits_amr_mixup.yaml").resolve()), site=site)
    assert named.returncode == 2
    assert "mixer.kind: mixer 'mixup' is provided by 2 plugins" in named.stderr
    assert "say which one with kind: mixers-mixup:mixup or kind: mixframe_clash:mixup" in named.stderr
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {Path('recipes/digits_amr_mixup.yaml').resolve()}\nmixer: {{kind: 'mixframe_clash:mixup', weight: 0.3}}\n")
    chosen = mixframe("recipe", "check", str(recipe), site=site)
    assert chosen.returncode == 0, chosen.stderr


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)  # noqa: S102 - the test's own plugin source
    return module


def test_duplicate_in_process_leaves_the_registry_usable() -> None:
    clash = _module("clash_mixers", MIXER_SOURCE.replace("{name}", "mixup"))
    reg = Registry(autoload=False, plugins=[("clash", clash)])
    [conflict] = reg.conflicts
    assert (conflict.kind, conflict.name) == ("mixer", "mixup")
    assert [p.plugin for p in conflict.providers] == ["mixers-mixup", "clash"]  # built-ins first
    [warning] = reg.warnings()
    assert "mixer 'mixup' is provided by 2 plugins: plugin 'mixers-mixup' (mixframe" in warning
    assert "and plugin 'clash' ((in process))" in warning and "kind: clash:mixup" in warning
    # everything else still works
    assert reg.get("mixer", "bernoulli").name == "bernoulli"
    assert "mixup" in reg.names("mixer") and reg.providers("mixer", "mixup") == ["mixers-mixup", "clash"]
    with pytest.raises(AmbiguousComponentError, match=r"say which one with kind: mixers-mixup:mixup or kind: clash:mixup"):
        reg.get("mixer", "mixup")
    assert reg.get("mixer", "clash:mixup").implementation.__name__ == "HalfMixer"
    assert reg.get("mixer", "mixers-mixup:mixup").implementation.__name__ == "MixupMixer"
    assert reg.provider("mixer", "clash:mixup") == "clash"
    with pytest.raises(UnknownComponentError, match="plugin 'clash' provides no mixer 'bernoulli'; .* so write mixers-bernoulli:bernoulli"):
        reg.get("mixer", "clash:bernoulli")
    with pytest.raises(UnknownComponentError, match="no plugin is named 'nobody'"):
        reg.get("mixer", "nobody:nothing")
    assert ("mixer", "mixup") in next(p for p in reg.plugins() if p.name == "clash").components
    # a recipe names the provider with PLUGIN:NAME, and the resolved recipe keeps the choice
    raw = resolve_file(Path("recipes/digits_amr_mixup.yaml"))
    with pytest.raises(RecipeError, match="mixer.kind: mixer 'mixup' is provided by 2 plugins"):
        check(raw, registry=reg)
    recipe = check({**raw, "mixer": {"kind": "mixers-mixup:mixup", "fold": True}}, registry=reg)
    assert recipe.mixer.config.fold is True and recipe.to_dict()["mixer"]["kind"] == "mixers-mixup:mixup"


def test_the_plugin_name_form_works_without_a_duplicate() -> None:
    reg = Registry(autoload=False)
    assert reg.get("mixer", "mixers-bernoulli:bernoulli") is reg.get("mixer", "bernoulli")
    assert reg.conflicts == [] and not any("provided by" in w for w in reg.warnings())


HEAVY_COMPONENTS = """
import attrs
import torch  # at the top, as a plugin module may well do

from mixframe import Callback, Component, hookimpl


@attrs.frozen(kw_only=True)
class TickConfig:
    pass


class Tick(Callback):
    def __init__(self, config, context):
        self.config = config


@hookimpl
def mixframe_components():
    return [Component(kind="callback", name="tick", implementation=Tick, config=TickConfig, summary="ticks")]
"""

COMMAND_SOURCE = """
from mixframe import Command


def command():
    return Command(name="hello", help="say {who}", add_arguments=lambda parser: None, run=lambda args: {code})
"""


def test_a_third_party_command_is_listed_by_help_without_importing_its_components_or_torch(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-hello", "mixframe_hello", HEAVY_COMPONENTS,
                      commands={"hello": ("mixframe_hello_cli", COMMAND_SOURCE.replace("{who}", "hello").replace("{code}", "0"))})
    probe = ("import sys, contextlib, io\nfrom mixframe.cli.main import main\nout = io.StringIO()\n"
             "with contextlib.redirect_stdout(out):\n    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
             "print('hello' in out.getvalue() and 'say hello' in out.getvalue(), 'torch' in sys.modules, 'mixframe_hello' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"], done.stdout  # listed; neither torch nor the component module imported
    ran = mixframe("hello", site=site)
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    listed = mixframe("components", "callback", site=site)  # the components still load, when a command asks for them
    assert "tick" in listed.stdout, listed.stderr


def test_a_command_name_two_distributions_declare_warns_and_the_first_runs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-b", "mixframe_b", "", commands={"hello": ("b_cli", COMMAND_SOURCE.replace("{who}", "b").replace("{code}", "3"))})
    make_distribution(site, "mixframe-a", "mixframe_a", "", commands={"hello": ("a_cli", COMMAND_SOURCE.replace("{who}", "a").replace("{code}", "4"))})
    ran = mixframe("hello", site=site)
    assert ran.returncode == 4  # stable order: by distribution name
    assert "command 'hello' is provided by 2 plugins" in ran.stderr and "'mixframe hello' runs the one from mixframe-a" in ran.stderr


def test_a_command_that_fails_to_load_is_a_warning_and_the_others_run(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-bad", "mixframe_bad", "", version="2.0",
                      commands={"broken": ("bad_cli", "import not_a_module_anywhere\n")})
    helped = mixframe("--help", site=site)
    assert helped.returncode == 0 and "train" in helped.stdout
    assert "command 'broken' from mixframe-bad 2.0 failed to load: ModuleNotFoundError" in helped.stderr
    assert "'mixframe broken' is not available; upgrade or reinstall mixframe-bad, or uninstall it" in helped.stderr
    ran = mixframe("broken", site=site)
    assert ran.returncode == 2 and "failed to load" in ran.stderr and "Traceback" not in ran.stderr


def test_failed_plugins_are_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    class BadHook:
        from mixframe import hookimpl

        @staticmethod
        @hookimpl
        def mixframe_components():  # noqa: ANN205
            raise RuntimeError("out of cheese")

    monkeypatch.setenv("MIXFRAME_PLUGINS", "no_such_plugin_module")
    reg = Registry(autoload=False, plugins=[("bad", BadHook)])
    warnings = reg.warnings()
    assert any("plugin 'no_such_plugin_module' from MIXFRAME_PLUGINS failed to load" in w and "No module named" in w
               and "remove 'no_such_plugin_module' from MIXFRAME_PLUGINS" in w for w in warnings), warnings
    assert any("plugin 'bad' from (in process): its hook mixframe_components failed: RuntimeError: out of cheese" in w
               and "what its mixframe_components hook provides is not available" in w for w in warnings), warnings
    assert "mixup" in reg.names("mixer")


def test_misspelt_hook_is_an_error(tmp_path: Path) -> None:
    source = MIXER_SOURCE.replace("{name}", "half").replace("def mixframe_components", "def mixframe_component")
    site = tmp_path / "site"
    make_distribution(site, "mixframe-typo", "mixframe_typo", source)
    result = mixframe("components", site=site)
    assert result.returncode == 2
    assert "mixframe_component" in result.stderr and "unknown hook" in result.stderr


def test_autoload_can_be_switched_off(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-half", "mixframe_half", MIXER_SOURCE.replace("{name}", "half"))
    result = mixframe("components", "mixer", site=site, env={"MIXFRAME_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0
    assert "half" not in result.stdout and "mixup" in result.stdout
    explicit = mixframe("components", "mixer", site=site, env={"MIXFRAME_DISABLE_PLUGIN_AUTOLOAD": "1", "MIXFRAME_PLUGINS": "mixframe_half"})
    assert "half" in explicit.stdout


def test_in_process_plugin_and_value_checks() -> None:
    class NotAComponent:
        from mixframe import hookimpl

        @staticmethod
        @hookimpl
        def mixframe_components():  # noqa: ANN205
            return ["not a component"]

    reg = Registry(autoload=False, plugins=[("odd", NotAComponent)])
    assert any("must return mixframe.Component" in f.error for f in reg.failures)
    assert "mixup" in reg.names("mixer")
    # two plugins under one name: the first is kept, the second is reported, nothing stops
    twice = Registry(autoload=False, plugins=[("odd", NotAComponent), ("odd", types.ModuleType("other"))])
    assert any("the plugin name 'odd' is already taken" in w for w in twice.warnings())
    assert "mixup" in twice.names("mixer")


def test_the_hook_documents_every_kind() -> None:
    from mixframe.kernel import hookspecs

    for kind in KINDS:
        assert f'"{kind}"' in hookspecs.mixframe_components.__doc__


def _blocks(markdown: str, lang: str) -> list[str]:
    parts = markdown.split(f"```{lang}\n")[1:]
    return [p.split("```", 1)[0] for p in parts]


def test_contributing_walkthrough_builds_a_working_third_party_package(tmp_path: Path) -> None:
    """Follow CONTRIBUTING.md alone: its pyproject, modules (two mixers; a callback; a command) and test, installed with pip."""
    guide = (Path(__file__).resolve().parent.parent / "CONTRIBUTING.md").read_text()
    [pyproject] = [b for b in _blocks(guide, "toml") if "[project]" in b]
    python = _blocks(guide, "python")
    [mixers] = [b for b in python if "class HalfMixer" in b]
    [cutmix] = [b for b in python if "class LatentCutMix" in b]
    [callbacks] = [b for b in python if "class PlateauStop" in b]
    assert "class InterpolationStrip" in callbacks
    [cli] = [b for b in python if "def export_codes" in b]
    [first_test] = [b for b in python if "MixerContract" in b]
    pkg = tmp_path / "mixframe-half"
    (pkg / "src" / "mixframe_half").mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "pyproject.toml").write_text(pyproject.replace('dependencies = ["mixframe"]', "dependencies = []"))
    (pkg / "src" / "mixframe_half" / "__init__.py").write_text(mixers + "\n\n" + cutmix)
    (pkg / "src" / "mixframe_half" / "callbacks.py").write_text(callbacks)
    (pkg / "src" / "mixframe_half" / "cli.py").write_text(cli)
    (pkg / "tests" / "test_half.py").write_text(first_test)
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(pkg)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    listed = mixframe("components", site=site)
    assert listed.returncode == 0, listed.stderr
    for name in ("half", "cutmix", "plateau_stop", "interpolation_strip"):
        assert f"  {name} " in listed.stdout
    env = {**os.environ, "PYTHONPATH": str(site)}
    contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)
    assert contract.returncode == 0, contract.stdout[-2000:]
    assert "12 passed" in contract.stdout  # the six mixer contract tests, for half and for the spatial cutmix

    helped = mixframe("--help", site=site)
    assert "codes" in helped.stdout and "write a run's codes of one split" in helped.stdout
    recipe = tmp_path / "stop.yaml"  # the callback named in a recipe: the reconstruction of a frozen autoencoder never improves
    recipe.write_text(f"extends: {ROOT / 'recipes' / 'spiral_amr.yaml'}\nmixer: {{kind: mixup}}\nregularizers: []\n"
                      "callbacks: [{kind: plateau_stop, patience: 1}]\n"
                      "train: {epochs: 6, lr: 1.0e-12, batch_size: 64}\ndata: {kind: spiral, n_train: 256, n_val: 64, n_test: 64}\n")
    trained = mixframe("train", str(recipe), "--out", str(tmp_path / "runs"), "--no-progress", site=site)
    assert trained.returncode == 0, trained.stderr
    assert "plateau_stop: no better reconstruction for 1 epochs" in trained.stdout
    (run,) = (tmp_path / "runs").iterdir()
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["stopped_early"] is True and info["epoch"] < 6
    # the callback that draws an interpolation each epoch, written from CONTRIBUTING's TrainerView alone
    strips = tmp_path / "strips.yaml"
    strips.write_text(f"extends: {ROOT / 'recipes' / 'digits_ae.yaml'}\ncallbacks: [{{kind: interpolation_strip, steps: 5}}]\n"
                      "encoder: {depth: 4}\ndecoder: {depth: 4}\ntrain: {epochs: 2, batch_size: 256, device: cpu}\n")
    drawn = mixframe("train", str(strips), "--out", str(tmp_path / "strip_runs"), "--no-progress", site=site)
    assert drawn.returncode == 0, drawn.stderr
    (strip_run,) = (tmp_path / "strip_runs").iterdir()
    pictures = sorted((strip_run / "strips").iterdir())
    assert [p.name for p in pictures] == ["epoch_001.png", "epoch_002.png"]
    with Image.open(pictures[-1]) as picture:
        assert picture.size == (5 * 16, 16)  # five decoded 16x16 digits side by side
    steps = [float(row[3]) for row in csv.reader((strip_run / "metrics.csv").open()) if row[2] == "epoch/strip/step"]
    assert len(steps) == 2 and all(s > 0 for s in steps)  # its trainer.log value, recorded with the epoch's means

    exported = mixframe("codes", str(run), "--out", str(tmp_path / "test.npz"), site=site)
    assert exported.returncode == 0, exported.stderr
    assert np.load(tmp_path / "test.npz")["codes"].shape[0] == 64
    wrong = mixframe("codes", str(run), "--out", str(tmp_path / "test.csv"), site=site)
    assert wrong.returncode == 2 and "must end in .npz" in wrong.stderr and "Traceback" not in wrong.stderr


DECODERS_SOURCE = '''
import attrs
import torch
from mixframe import Component, Decoder, hookimpl, param


@attrs.frozen(kw_only=True)
class LinearConfig:
    size: int = param(2, help="output size")


class Linear(Decoder):
    """A decoder with a linear output, whatever it declares."""

    def __init__(self, config, context):
        super().__init__()
        self.net = torch.nn.Linear(context.code_shape[0], config.size)

    def forward(self, h):
        return self.net(h.flatten(1))


@hookimpl
def mixframe_components():
    return [Component(kind="decoder", name="claims_logits", implementation=Linear, config=LinearConfig, provides=("logits_decoder",),
                      summary="declares logits but outputs linear values"),
            Component(kind="decoder", name="silent", implementation=Linear, config=LinearConfig, summary="declares nothing"),
            Component(kind="mixer", name="not_a_mixer", implementation=Linear, config=LinearConfig, summary="builds a decoder")]
'''


def test_build_checks_the_interface_the_declarations_and_the_params() -> None:
    from mixframe import BuildContext, DataSpec, MixframeError

    reg = Registry(autoload=False, plugins=[("decoders", _module("decoders", DECODERS_SOURCE))])
    context = BuildContext(data=DataSpec(shape=(2,)), code_shape=(3,))
    assert reg.build("decoder", "silent", {"size": 2}, context).net.out_features == 2
    with pytest.raises(MixframeError, match=r"decoder 'claims_logits' declares that it provides logits_decoder .* but the Linear it built "
                                             r"does not; a bug in its plugin \(decoders\)"):
        reg.build("decoder", "claims_logits", {}, context)
    with pytest.raises(MixframeError, match="mixer 'not_a_mixer' built a Linear, not a mixframe.Mixer; its implementation must subclass one"):
        reg.build("mixer", "not_a_mixer", {}, context)
    with pytest.raises(RecipeError, match=r"decoder silent\.size: must be int, got .two."):
        reg.build("decoder", "silent", {"size": "two"}, context)


def test_the_model_checks_the_recipes_needs_against_what_it_built() -> None:
    """A decoder that declares nothing passes the recipe checker, but the built one must still meet the bce loss's need."""
    from mixframe import MixframeError
    from mixframe.kernel.model import Model

    reg = Registry(autoload=False, plugins=[("decoders", _module("decoders", DECODERS_SOURCE))])
    raw = resolve_file(ROOT / "recipes" / "digits_ae.yaml")
    recipe = check({**raw, "decoder": {"kind": "silent"}, "reconstruction": {"loss": "bce"}, "data": {**raw["data"], "scale": "unit"}},
                   registry=reg)
    from mixframe import DataSpec

    with pytest.raises(MixframeError, match=r"reconstruction.loss 'bce' needs a decoder that outputs logits \(logits_decoder\) because "
                                             r"binary cross-entropy is computed on the decoder's logits, but the decoder 'silent' as built"):
        Model(recipe, DataSpec(shape=(1, 16, 16), value_range=(0.0, 1.0)), registry=reg)
