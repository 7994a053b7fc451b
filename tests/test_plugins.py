"""The plugin registry: built-ins, a third-party package, a broken one, a duplicate, a misspelt hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mixframe.hookspecs import KINDS
from mixframe.registry import PluginError, Registry

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
def mixframe_mixers():
    return [Component(kind="mixer", name="{name}", implementation=HalfMixer, config=HalfConfig, summary="a fixed-weight mix")]
'''


def make_distribution(site: Path, dist: str, module: str, source: str, version: str = "0.3.1") -> None:
    """A distribution on ``site`` with its metadata and a ``mixframe`` entry point, as pip would leave it."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mixframe]\n{module} = {module}\n")


def mixframe(*args: str, site: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    if site is not None:
        full_env["PYTHONPATH"] = str(site)
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


def test_duplicate_component_name_names_both_providers(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_distribution(site, "mixframe-clash", "mixframe_clash", MIXER_SOURCE.replace("{name}", "mixup"))
    result = mixframe("components", site=site)
    assert result.returncode == 2
    assert "mixer 'mixup' is provided twice" in result.stderr
    assert "mixers-mixup" in result.stderr and "mixframe_clash" in result.stderr
    assert "Traceback" not in result.stderr


def test_misspelt_hook_is_an_error(tmp_path: Path) -> None:
    source = MIXER_SOURCE.replace("{name}", "half").replace("def mixframe_mixers", "def mixframe_mixer")
    site = tmp_path / "site"
    make_distribution(site, "mixframe-typo", "mixframe_typo", source)
    result = mixframe("components", site=site)
    assert result.returncode == 2
    assert "mixframe_mixer" in result.stderr and "unknown hook" in result.stderr


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
        def mixframe_mixers():  # noqa: ANN205
            return ["not a component"]

    reg = Registry(autoload=False, plugins=[("odd", NotAComponent)])
    assert any("must return mixframe.Component" in f.error for f in reg.failures)
    assert "mixup" in reg.names("mixer")
    with pytest.raises(PluginError):
        Registry(autoload=False, plugins=[("odd", NotAComponent), ("odd", object())])


def test_every_hook_is_documented() -> None:
    from mixframe import hookspecs

    for kind in KINDS:
        spec = getattr(hookspecs, f"mixframe_{kind}s")
        assert spec.__doc__ and f'"{kind}"' in spec.__doc__


def _blocks(markdown: str, lang: str) -> list[str]:
    parts = markdown.split(f"```{lang}\n")[1:]
    return [p.split("```", 1)[0] for p in parts]


def test_contributing_walkthrough_builds_a_working_third_party_package(tmp_path: Path) -> None:
    """Follow CONTRIBUTING.md alone: its pyproject, module and test, installed with pip."""
    guide = (Path(__file__).resolve().parent.parent / "CONTRIBUTING.md").read_text()
    [pyproject] = [b for b in _blocks(guide, "toml") if "[project]" in b]
    [module] = [b for b in _blocks(guide, "python") if "class HalfMixer" in b]
    [first_test] = [b for b in _blocks(guide, "python") if "MixerContract" in b]
    pkg = tmp_path / "mixframe-half"
    (pkg / "src" / "mixframe_half").mkdir(parents=True)
    (pkg / "tests").mkdir()
    (pkg / "pyproject.toml").write_text(pyproject.replace('dependencies = ["mixframe"]', "dependencies = []"))
    (pkg / "src" / "mixframe_half" / "__init__.py").write_text(module)
    (pkg / "tests" / "test_half.py").write_text(first_test)
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(pkg)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    listed = mixframe("components", "mixer", site=site)
    assert listed.returncode == 0 and "half" in listed.stdout, listed.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    contract = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)
    assert contract.returncode == 0, contract.stdout[-2000:]
    assert "5 passed" in contract.stdout
