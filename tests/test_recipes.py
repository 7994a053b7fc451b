"""Recipes: every shipped recipe checks, bad recipes get the expected messages, merge and overrides."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixframe.cli.main import main
from mixframe.kernel.recipe import RecipeError, apply_overrides, check, load_recipe, merge, resolve_file
from mixframe.kernel.registry import Registry, get_registry

ROOT = Path(__file__).resolve().parent.parent
BAD = sorted((ROOT / "tests" / "bad_recipes").glob("*.yaml"))
SHIPPED = sorted([*(ROOT / "recipes").glob("*.yaml"), *(ROOT / "recipes" / "full").glob("*_amr_*.yaml")])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipes_check_and_round_trip(path: Path) -> None:
    recipe = load_recipe(path)
    again = check(yaml.safe_load(recipe.to_yaml()), "resolved")
    assert again == recipe


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_recipe_messages(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = [line.split("# expect:", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith("# expect:")]
    assert expected, f"{path.name} states no expected message"
    code = main(["recipe", "check", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in:\n{err}"


def test_python_tag_runs_nothing(tmp_path: Path) -> None:
    marker = Path("/tmp/mixframe-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(RecipeError):
        load_recipe(ROOT / "tests" / "bad_recipes" / "python_tag.yaml")
    assert not marker.exists()


def test_three_mistakes_from_the_command_line_exit_2_without_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "mixframe", "recipe", "check", str(ROOT / "tests/bad_recipes/three_mistakes.yaml")],
                            capture_output=True, text=True, timeout=120, env=os.environ)
    assert result.returncode == 2
    assert "has 3 problems" in result.stderr and "Traceback" not in result.stderr


def test_merge_rules() -> None:
    base = {"train": {"epochs": 5, "lr": 1e-4}, "regularizers": [{"kind": "a"}, {"kind": "b"}], "mixer": {"kind": "mixup", "fold": True}}
    over = {"train": {"epochs": 7}, "regularizers": [{"kind": "c"}], "mixer": {"kind": "bernoulli"}}
    merged = merge(base, over)
    assert merged["train"] == {"epochs": 7, "lr": 1e-4}  # mappings merge
    assert merged["regularizers"] == [{"kind": "c"}]  # lists replace
    assert merged["mixer"] == {"kind": "bernoulli"}  # another kind replaces the section
    assert merge(base, {"mixer": {"fold": False}})["mixer"] == {"kind": "mixup", "fold": False}
    assert merge(base, {"mixer": None})["mixer"] is None  # null removes


def test_extends_chain_and_null_removes_a_section() -> None:
    raw = resolve_file(ROOT / "recipes" / "digits_ae.yaml")
    assert raw["discriminator"] is None and raw["data"]["kind"] == "digits"
    recipe = check(raw)
    assert recipe.discriminator is None and recipe.mixer is None and recipe.regularizers == ()


def test_overrides() -> None:
    reg = get_registry()
    raw = resolve_file(ROOT / "recipes" / "digits_amr_mixup.yaml")
    raw = apply_overrides(raw, ["mixer.per_channel=true", "train.betas=[0.9, 0.999]", "regularizers.0.weight=2"], reg)
    recipe = check(raw)
    assert recipe.mixer.config.per_channel is True
    assert recipe.train.betas == (0.9, 0.999)
    assert recipe.regularizers[0].config.weight == 2.0
    with pytest.raises(RecipeError, match=r"mixer.alhpa: --set: no such key; valid keys here: fold, kind, per_channel"):
        apply_overrides(resolve_file(ROOT / "recipes" / "digits_amr_mixup.yaml"), ["mixer.alhpa=0.4"], reg)
    with pytest.raises(RecipeError, match="is not an index"):
        apply_overrides(resolve_file(ROOT / "recipes" / "digits_amr_mixup.yaml"), ["regularizers.3.weight=1"], reg)
    with pytest.raises(RecipeError, match="KEY.PATH=VALUE"):
        apply_overrides({}, ["mixer"], reg)


def test_the_override_message_gives_working_examples() -> None:
    reg = get_registry()
    with pytest.raises(RecipeError) as info:
        apply_overrides({}, ["mixer"], reg)
    examples = re.findall(r"\b([a-z_.0-9]+=\S+)", str(info.value).split("for example", 1)[1])
    assert examples
    for example in examples:
        check(apply_overrides(resolve_file(ROOT / "recipes" / "digits_amr_mixup.yaml"), [example], reg))


def _needs_problems(raw: dict, registry: Registry | None = None) -> list[tuple[str, str]]:
    with pytest.raises(RecipeError) as info:
        check(raw, registry=registry)
    return info.value.problems


def test_unmet_needs_are_reported_at_check_time_with_the_other_problems() -> None:
    raw = resolve_file(ROOT / "recipes" / "digits_acai.yaml")
    problems = _needs_problems({**raw, "mixer": {"kind": "mixup", "per_channel": True}, "seed": "x", "discriminator": None})
    paths = [path for path, _ in problems]
    assert paths == ["seed", "regularizers[0]", "regularizers[0]"]
    assert "the recipe's mixer 'mixup' provides it only with per_channel: false" in problems[1][1]
    assert problems[2][1].startswith("acai needs a critic network (critic), because it trains a critic")
    assert "the recipe has no 'discriminator:' section; discriminators that provide it: betavae, conv, mlp" in problems[2][1]
    # only the most specific unmet need per providing kind: no second message about 'mix'
    [(path, message)] = _needs_problems({**raw, "mixer": None})
    assert path == "regularizers[0]" and "(per_example_weight)" in message and "the recipe has no 'mixer:' section" in message
    # the reconstruction loss needs a matching decoder output
    [(path, message)] = _needs_problems({**raw, "decoder": {"kind": "betavae"}})
    assert path == "reconstruction.loss" and message.startswith("the l2 loss needs a decoder whose output is linear")
    # metrics: caught before training, not after it
    [(path, message)] = _needs_problems({**raw, "metrics": [{"kind": "reconstruction"}, {"kind": "disentanglement"}]})
    assert path == "metrics[1]" and "datasets that provide it: dsprites" in message


def test_needs_are_not_checked_against_components_that_could_not_be_checked_or_declare_nothing() -> None:
    raw = resolve_file(ROOT / "recipes" / "digits_acai.yaml")
    [(path, _)] = _needs_problems({**raw, "mixer": {"kind": "mixpu"}})  # no guess about what 'mixpu' would provide
    assert path == "mixer.kind"

    import attrs

    from mixframe import Component, hookimpl

    @attrs.frozen(kw_only=True)
    class PlainConfig:
        pass

    class ThirdParty:
        @staticmethod
        @hookimpl
        def mixframe_components():  # noqa: ANN205
            return [Component(kind="mixer", name="plain", implementation=object, config=PlainConfig, summary="declares nothing")]

    reg = Registry(autoload=False, plugins=[("third_party", ThirdParty)])
    assert check({**raw, "mixer": {"kind": "plain"}}, registry=reg).mixer.name == "plain"


def test_resolved_recipe_printed_by_the_cli_loads_to_the_same_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "recipes" / "digits_amr_mixup.yaml"
    assert main(["recipe", "show", str(path), "--resolved", "--set", "train.epochs=3"]) == 0
    printed = capsys.readouterr().out
    (tmp_path / "resolved.yaml").write_text(printed)
    assert load_recipe(tmp_path / "resolved.yaml") == load_recipe(path, ["train.epochs=3"])
    assert "extends" not in printed and "batch_size: 64" in printed


def test_explain_and_components(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "mixer", "bernoulli"]) == 0
    out = capsys.readouterr().out
    assert "sampler" in out and "per_batch" in out
    assert main(["explain", "mixer", "mixpu"]) == 2
    assert "did you mean 'mixup'" in capsys.readouterr().err
    assert main(["components", "mixers"]) == 2
    assert "did you mean 'mixer'" in capsys.readouterr().err
    assert main(["explain", "callback", "stall_watch"]) == 0  # a default callback says how to switch it off
    assert "{kind: stall_watch, enabled: false}" in capsys.readouterr().out


def test_recipe_check_takes_several_recipes_and_reports_every_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    bad = ROOT / "tests" / "bad_recipes" / "callback_off_with_settings.yaml"
    assert main(["recipe", "check", str(ROOT / "recipes" / "spiral_amr.yaml"), str(bad), str(ROOT / "recipes" / "spiral_ae.yaml")]) == 2
    captured = capsys.readouterr()
    assert "spiral_amr.yaml: ok" in captured.out and "spiral_ae.yaml: ok" in captured.out  # the one after the bad file is checked too
    assert "callbacks[0].enabled" in captured.err and "1 of 3 recipe(s) have problems" in captured.err


def test_a_callback_switched_off_is_not_built_not_added_back_as_a_default_and_stays_off_in_the_record(tmp_path: Path) -> None:
    from mixframe.runs.callbacks import recipe_callbacks

    raw = resolve_file(ROOT / "recipes" / "spiral_amr.yaml")
    raw["callbacks"] = [{"kind": "stall_watch", "enabled": False}, {"kind": "validation", "enabled": True, "every": 2}]
    recipe = check(raw, "test")
    names = {spec.name: spec for spec in recipe.callbacks}
    assert names["stall_watch"].off and not names["validation"].off and names["validation"].config.every == 2
    assert {"training_pictures", "tensorboard_hparams"} <= set(names)  # the other defaults are still added
    built = {type(c).__name__ for c in recipe_callbacks(recipe, None)}  # type: ignore[arg-type]
    assert "StallWatch" not in built and "Validation" in built
    again = check(yaml.safe_load(recipe.to_yaml()), "resolved")  # a run's recipe.yaml, read back on resume or load
    assert again == recipe and {"kind": "stall_watch", "enabled": False} in yaml.safe_load(recipe.to_yaml())["callbacks"]
