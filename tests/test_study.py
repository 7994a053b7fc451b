"""Studies: a study file checked like a recipe, equal tuning budgets scored on the validation split, table runs on
the test split with disjoint seeds, paired statistics with Holm-adjusted p, and a killed study resumed to the same table."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

import mixframe
from mixframe import Launcher, MixframeError, RunTask
from mixframe.cli.main import main
from mixframe.tools.results import compare, holm, paired_t, results
from mixframe.tools.study import check_study, resume_study, shipped_root, shipped_studies, study

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"data.n_train": 256, "data.n_val": 128, "data.n_test": 128, "train.batch_size": 64, "train.epochs": 2,
         "encoder.hidden": [16, 16], "decoder.hidden": [16, 16], "callbacks": [], "metrics": [{"kind": "manifold", "n_mixes": 200}]}


def tiny_study(folder: Path, **changes: Any) -> Path:
    """The done-when study: two methods, 2 epochs, 3 trials, 1 tuning seed, 3 table seeds, on the spiral recipes."""
    spec: dict[str, Any] = {
        "schema": 1, "description": "tiny", "metric": "mix_distance_mean", "baseline": "ae",
        "methods": {"ae": {"recipe": "spiral_ae"}, "amr": {"recipe": "spiral_amr", "set": {"discriminator.hidden": [16, 16]}}},
        "set": SMALL,
        "tune": {"trials": 3, "seeds": [100], "space": {"train.lr": {"low": 1e-3, "high": 1e-2, "log": True},
                                                         "train.critic_lr": {"low": 1e-3, "high": 1e-2, "log": True}}},
        "seeds": [0, 1, 2], "eval_seeds": [1], **changes}
    path = folder / "tiny.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


class InProcess(Launcher):
    """Runs each task in this process, one thread (fast for tests; the numbers are those of the local launcher's processes)."""

    def launch(self, tasks: Sequence[RunTask], events: Any) -> None:
        from mixframe.tools.sweep import run_task

        for task in tasks:
            task = attrs.evolve(task, threads=1)
            events.started(task, "here")
            events.finished(task, run_task(task))


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.mark.slow
def test_a_tiny_study_tunes_on_val_with_equal_budgets_and_tables_on_test_with_disjoint_seeds(tmp_path: Path) -> None:
    import optuna

    folder = study(tiny_study(tmp_path), out=tmp_path / "out", launcher=InProcess(), progress=False)
    frame = mixframe.results(folder)
    tune, table = frame[frame["phase"] == "tune"], frame[frame["phase"] == "table"]
    assert set(tune["split"]) == {"val"} and set(table["split"]) == {"test"}
    assert set(tune["seed"]) == {100} and set(table["seed"]) == {0, 1, 2}
    assert tune.groupby("method").size().to_dict() == {"ae": 3, "amr": 3}  # the same budget for every method
    assert table.groupby("method").size().to_dict() == {"ae": 3, "amr": 3}
    # the critic's learning rate is tuned for AMR and skipped for the AE, which has no critic
    assert all(set(s) == {"train.lr"} for s in tune[tune["method"] == "ae"]["settings"])
    assert all(set(s) == {"train.lr", "train.critic_lr"} for s in tune[tune["method"] == "amr"]["settings"])
    text = (folder / "table.md").read_text()
    assert "ae: train.critic_lr (the method has no critic)" in text
    # each method with a mixer is also scored on its own mixes; the AE has none, so nothing is compared with it there
    own = text.split("On each method's own mixes (own_mix_distance_mean")[1].split("Chosen settings")[0]
    assert "| amr | 3 |" in own and "| ae |" not in own and "nothing is compared" in own and "minus None" not in own
    assert "Code: every run at commit" in text  # one version of the code made the whole table
    storage = f"sqlite:///{folder / 'optuna.db'}"
    for method in ("ae", "amr"):
        trials = optuna.load_study(study_name=method, storage=storage).trials
        assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
        best = min(trials, key=lambda t: t.value)
        # the table trains the best trial's settings (chosen on val) with the table's seeds
        assert all(s == best.params for s in table[table["method"] == method]["settings"])
        assert best.value == pytest.approx(tune[(tune["method"] == method) & (tune["trial"] == best.number)]["mix_distance_mean"].mean())
    # a table run's test value is the run's own evaluation.json, and its evaluation seeds were scored again
    row = table.iloc[0]
    assert json.loads((Path(row["run"]) / "evaluation.json").read_text())["metrics"]["mix_distance_mean"] == row["mix_distance_mean"]
    assert set(row["eval_seeds"]) == {1}
    cmp = compare(frame)
    amr = cmp[cmp["method"] == "amr"].iloc[0]
    assert amr["t_low"] < amr["diff"] < amr["t_high"] and 0 <= amr["p"] <= amr["p_holm"] <= 1
    assert amr["verdict"] in ("shown better", "shown worse", "not shown to differ")
    assert cmp.iloc[0]["role"] == "reference" and cmp.iloc[0]["method"].startswith("data_mix_distance_mean")
    assert cmp[cmp["method"] == "ae"].iloc[0]["role"] == "baseline"


@pytest.mark.slow
def test_a_study_killed_with_sigkill_and_resumed_ends_with_the_table_of_one_left_alone(tmp_path: Path) -> None:

    path = tiny_study(tmp_path)
    alone = study(path, out=tmp_path / "alone", launcher=InProcess(), progress=False)
    script = tmp_path / "go.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_study import InProcess
        from mixframe.tools.study import study
        study({str(path)!r}, out={str(tmp_path / 'killed')!r}, launcher=InProcess(), progress=False)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:  # kill it once the tuning is under way, past its first round
            states = list((tmp_path / "killed").glob("*/study.json"))
            try:
                done = sum(r["status"] == "complete" for r in json.loads(states[0].read_text())["runs"]) if states else 0
            except ValueError:
                done = 0
            if done >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the study ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    (killed,) = (tmp_path / "killed").glob("study-*")
    before = json.loads((killed / "study.json").read_text())
    assert before["state"] == "tuning"
    complete_before = {r["key"]: r["run"] for r in before["runs"] if r["status"] == "complete"}
    resume_study(killed, launcher=InProcess(), progress=False)
    after = json.loads((killed / "study.json").read_text())
    assert after["state"] == "complete"
    assert all({r["key"]: r["run"] for r in after["runs"]}[k] == run for k, run in complete_before.items())  # kept, not redone
    columns = ["method", "mean", "sd", "per_seed", "diff", "t_low", "t_high", "p", "p_holm", "verdict"]
    assert compare(killed)[columns].equals(compare(alone)[columns])
    assert results(killed)["settings"].tolist() == results(alone)["settings"].tolist()


def test_a_bad_study_file_gives_every_problem_at_once_with_paths_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        schema: 1
        metric: on_manifold_fraction
        baseline: vae
        methods:
          ae: {recipe: spiral_ae, sett: {}}
          amr: {recipe: no_such_recipe}
        tune:
          trials: 0
          seeds: [0]
          space:
            train.lr: {low: 1.0e-2, high: 1.0e-4, log: true}
        seeds: [0, 1]
        eval_seed: [1]
        constraints:
          rec_mse: {}
          no_such_metric: {max: 1}
          rec_mes: {max: 1}
          mix_distance_mean: {min: 2, max: 1}
    """))
    assert main(["study", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for where in ("eval_seed: unknown key", "baseline: 'vae' is not one of the methods", "methods.ae.sett: unknown key",
                  "methods.amr:", "no_such_recipe", "tune.trials:", "tune.seeds: [0] are also table seeds",
                  "tune.space.train.lr: low (0.01) must be below high (0.0001)", "constraints.rec_mse: give min, max or both",
                  "constraints.no_such_metric: no metric the methods compute gives 'no_such_metric' (they give: ",
                  "constraints.rec_mes: no metric the methods compute gives 'rec_mes'; did you mean 'rec_mse' or 'rec_ssim'? (they give: ",
                  "constraints.mix_distance_mean: min (2) must be below max (1)"):
        assert where in err, where


def test_tuning_never_chooses_a_trial_outside_the_constraints() -> None:
    import optuna
    from optuna.distributions import FloatDistribution

    from mixframe.tools.study import BoundSpec, Method, RangeSpec, best_of, violations

    bounds = {"rec_mse": BoundSpec(max=0.01)}
    assert violations({"rec_mse": 0.005}, bounds) == []
    assert violations({"rec_mse": 0.5}, bounds) == ["rec_mse 0.5 (needs <= 0.01)"]
    assert violations({}, bounds) == ["rec_mse nan (needs <= 0.01)"]  # not measured: not known to be usable
    assert violations({"acc": 0.1}, {"acc": BoundSpec(min=0.2, max=0.9)}) == ["acc 0.1 (needs >= 0.2 and <= 0.9)"]
    opt = optuna.create_study(direction="maximize")
    lr = FloatDistribution(1e-4, 1e-2, log=True)
    for value, x, outside in ((1.0, 1e-3, 0.49), (0.6, 2e-3, 0.0), (0.4, 3e-3, 0.0)):  # trial 0: a collapsed decoder with the best score
        opt.add_trial(optuna.trial.create_trial(params={"train.lr": x}, distributions={"train.lr": lr}, value=value,
                                                system_attrs={"constraints:rec_mse": outside}))
    method = Method(name="amr", recipe="r.yaml", overrides=(), space={"train.lr": RangeSpec(low=1e-4, high=1e-2, log=True)}, skipped={})
    chosen = best_of(opt, method, "max")
    assert chosen["trial"] == 1 and chosen["settings"] == {"train.lr": 2e-3} and chosen["infeasible"] == 1
    none_fit = optuna.create_study(direction="maximize")
    none_fit.add_trial(optuna.trial.create_trial(params={"train.lr": 1e-3}, distributions={"train.lr": lr}, value=1.0,
                                                 system_attrs={"constraints:rec_mse": 0.49}))
    unusable = best_of(none_fit, method, "max")  # said in table.md and left out of the table; the study goes on
    assert unusable["trial"] is None and unusable["settings"] == {} and unusable["unusable"] == "no tuning trial met the constraints (rec_mse)"


@pytest.mark.slow
def test_a_study_whose_every_trial_breaks_a_constraint_says_so(tmp_path: Path) -> None:
    import optuna

    path = tiny_study(tmp_path, constraints={"on_manifold_threshold": {"max": 0.0}},
                      tune={"trials": 2, "seeds": [100], "space": {"train.lr": {"low": 1e-3, "high": 1e-2, "log": True}}})
    with pytest.raises(MixframeError, match="the baseline ae: no tuning trial met the constraints"):  # nothing to compare with
        study(path, out=tmp_path / "out", launcher=InProcess(), progress=False)
    storage = f"sqlite:///{next((tmp_path / 'out').iterdir()) / 'optuna.db'}"
    for method in ("ae", "amr"):  # kept in the storage, where TPE and a resumed study read them
        trials = optuna.load_study(study_name=method, storage=storage).trials
        assert [t.constraints for t in trials] == [{"on_manifold_threshold": pytest.approx(0.06)}] * 2  # the threshold, above max 0


def test_a_study_counts_the_commits_its_runs_ran_at(tmp_path: Path) -> None:
    from mixframe.tools.study import code_versions

    runs = []
    for i, commit in enumerate(["abc", "abc", "def+dirty"]):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "environment.json").write_text(json.dumps({"commit": commit}))
        runs.append({"run": str(folder)})
    runs.append({"run": None})  # not finished: not counted
    assert code_versions({"runs": runs}) == {"abc": 2, "def+dirty": 1}


def test_a_search_key_a_method_lacks_is_skipped_and_said(tmp_path: Path) -> None:
    path = tiny_study(tmp_path, tune={"trials": 2, "seeds": [100], "space": {"regularizers.1.weight": {"low": 0.0, "high": 10.0}}})
    plan = check_study(path)
    assert plan.methods["ae"].skipped == {"regularizers.1.weight": "the recipe has no such key"}
    assert list(plan.methods["amr"].space) == ["regularizers.1.weight"]
    assert plan.direction == "min"  # from the manifold plugin: mix_distance_mean, lower is better


def test_every_shipped_study_checks(capsys: pytest.CaptureFixture[str]) -> None:
    names = shipped_studies()
    assert {"spiral", "digits", "lines", "dsprites", "supervised"} <= set(names)
    for name in names:
        plan = check_study(name)
        assert plan.tune is not None and not set(plan.tune.seeds) & set(plan.spec.seeds)
    assert main(["study", "list"]) == 0
    assert "spiral" in capsys.readouterr().out and (shipped_root() / "spiral.yaml").is_file()


def test_holm_and_the_paired_t_interval() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, float("nan")])[0] == 0.5
    low, high, p = paired_t([0.1, 0.2, 0.3])
    assert low == pytest.approx(0.2 - 4.302653 * 0.1 / 3**0.5, rel=1e-5) and high == pytest.approx(0.2 + 4.302653 * 0.1 / 3**0.5, rel=1e-5)
    assert p == pytest.approx(0.0742, abs=1e-3)  # t = 3.46 on 2 degrees of freedom


def test_progress_lines_count_against_every_run_the_study_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixframe.tools.study import StudyState

    state = StudyState(tmp_path, {"runs": [{"status": "complete"}, {"status": "running"}]}, progress=True, planned=39)
    state.say("tune ae trial 1 seed 100: started")
    assert capsys.readouterr().out == "[1/39 runs done] tune ae trial 1 seed 100: started\n"  # not 1/2: the runs asked so far


def test_table_md_shows_each_critics_last_probe_and_flags_one_near_chance() -> None:
    import pandas as pd

    from mixframe.tools.study import critic_lines

    frame = pd.DataFrame([{"method": "ae", "phase": "table", "seed": 0, "critic_probe_auc": float("nan")},
                          {"method": "gan", "phase": "tune", "seed": 100, "critic_probe_auc": 0.51},  # tuning runs are not the table
                          {"method": "gan", "phase": "table", "seed": 1, "critic_probe_auc": 0.55},
                          {"method": "gan", "phase": "table", "seed": 0, "critic_probe_auc": 0.85}])
    lines = critic_lines(frame)
    assert lines[-1] == "- gan: 0.700, per seed 0.850 0.550; **near chance (<= 0.6)**: seed 1 (0.55)"
    assert not any(line.startswith("- ae") for line in lines)  # no critic, no line
    assert critic_lines(frame[frame["method"] == "ae"]) == []


def test_results_of_something_that_is_not_a_study_is_a_message(tmp_path: Path) -> None:
    with pytest.raises(MixframeError, match="holds no study"):
        results(tmp_path)


@pytest.mark.slow
def test_sweeps_of_shipped_recipes_by_name_read_as_results_and_compare_paired_by_seed(tmp_path: Path) -> None:
    from mixframe.tools.stats import paired_difference
    from mixframe.tools.sweep import read_sweep, sweep

    small = [f"{k}={json.dumps(v)}" for k, v in SMALL.items()]
    ae = sweep("spiral_ae", seeds=2, overrides=small, out=tmp_path, launcher=InProcess(), progress=False)
    amr = sweep("shipped:spiral_amr", seeds=2, overrides=[*small, "discriminator.hidden=[16, 16]"], out=tmp_path, launcher=InProcess(),
                progress=False)
    assert ":" not in amr.name and amr.name.startswith("sweep-spiral_amr-")  # a shipped name makes a plain folder name
    assert all(run["status"] == "complete" for folder in (ae, amr) for run in read_sweep(folder)["runs"])
    frame = results(tmp_path)  # a folder holding both sweeps
    assert sorted(frame["method"]) == ["spiral_ae", "spiral_ae", "spiral_amr", "spiral_amr"] and set(frame["phase"]) == {"sweep"}
    table = compare(frame, "mix_distance_mean", "spiral_ae")
    values = {m: dict(zip(frame[frame["method"] == m]["seed"], frame[frame["method"] == m]["mix_distance_mean"])) for m in ("spiral_ae", "spiral_amr")}
    row = table[table["method"] == "spiral_amr"].iloc[0]
    boot = paired_difference(values["spiral_amr"], values["spiral_ae"])
    assert row["diff"] == pytest.approx(boot.mean) and (row["boot_low"], row["boot_high"]) == pytest.approx((boot.low, boot.high))
    assert row["verdict"] in ("shown better", "shown worse", "not shown to differ")
    assert table.attrs["direction"] == "min"
    assert main(["results", str(tmp_path), "--metric", "mix_distance_mean", "--baseline", "spiral_ae", "--format", "csv"]) == 0


def test_metrics_score_the_split_they_are_given_and_only_test_at_their_own_seed_is_written(tmp_path: Path) -> None:
    small = [f"{k}={json.dumps(v)}" for k, v in {**SMALL, "train.epochs": 1}.items()]
    run = mixframe.train("spiral_ae", small, out=tmp_path, progress=False)
    test = run.evaluate(["manifold", "reconstruction"])
    written = json.loads((run.dir / "evaluation.json").read_text())["metrics"]
    val = run.evaluate(["manifold", "reconstruction"], split="val")
    again = run.evaluate(["manifold"], seed=1)
    assert val["rec_mse"] != test["rec_mse"] and val["mix_distance_mean"] != test["mix_distance_mean"]  # other examples
    assert again["mix_distance_mean"] != test["mix_distance_mean"]  # other pairs from another evaluation seed
    assert json.loads((run.dir / "evaluation.json").read_text())["metrics"] == written == test  # val and seed 1 not written
    with pytest.raises(MixframeError, match="split 'train': choose one of val, test"):
        run.evaluate(["manifold"], split="train")


# -- mixframe report of a study or a sweep folder ------------------------------------------------------------------
def tiny_finished_study(folder: Path) -> Path:
    """The smallest study with every part: two methods, one tuning trial with one seed, two table seeds, one epoch."""
    path = tiny_study(folder, set={**SMALL, "train.epochs": 1}, seeds=[0, 1], eval_seeds=[],
                      tune={"trials": 1, "seeds": [100], "space": {"train.lr": {"low": 1e-3, "high": 1e-2, "log": True}}})
    return study(path, out=folder / "out", launcher=InProcess(), progress=False)


def metric_row(page: str, key: str, table: str = "metrics") -> list[tuple[bool, str]]:
    """The cells of ``key``'s row in the page's metrics table: (marked best, text)."""
    body = page[page.index(f'<table class="{table}">'):]
    row = re.search(rf"<tr><td class=\"value\"><code>{re.escape(key)}</code>.*?</tr>", body[:body.index("</table>")])
    assert row, key
    return [(bool(best), text) for best, text in re.findall(r'<td class="num( best)?"[^>]*>([^<&]*)', row.group(0))]


def best_positions(values: Sequence[float], direction: str) -> set[int]:
    target = min(values) if direction == "min" else max(values)
    return set() if len(set(values)) == 1 else {i for i, v in enumerate(values) if v == target}


@pytest.mark.slow
def test_results_runs_with_a_metric_shows_each_run_and_that_metric_and_a_typo_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tiny_finished_study(tmp_path)
    capsys.readouterr()
    assert main(["results", str(folder), "--runs", "--metric", "mix_distance_mean"]) == 0
    head, *rows = capsys.readouterr().out.splitlines()
    assert head.split() == ["method", "phase", "seed", "split", "trial", "settings", "critic_probe_auc", "mix_distance_mean"]
    assert len(rows) == 2 + 2 * 2 and all(str(tmp_path) not in row for row in rows)  # 1 trial + 2 table seeds per method
    assert any(re.search(r"\bamr +tune +100 +val +0 +train\.lr=[0-9.e-]+ ", row) for row in rows)
    assert main(["results", str(folder), "--runs", "--metric", "mix_distance_maen"]) == 2
    err = capsys.readouterr().err
    assert "no run measured 'mix_distance_maen'; did you mean 'mix_distance_mean' or 'own_mix_distance_mean'? (the runs have: " in err and "Traceback" not in err


@pytest.mark.slow
def test_a_study_folder_is_reported_by_method_and_seed_with_the_best_marked_and_the_comparison(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixframe.tools.report import format_value

    folder = tiny_finished_study(tmp_path)
    capsys.readouterr()  # the runs' output
    out = tmp_path / "report" / "report.html"
    assert main(["report", str(folder), "--out", str(out), "--pairs", "2", "--steps", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out) and [p.name for p in out.parent.iterdir()] == ["report.html"]
    page = out.read_text()
    frame = results(folder)
    table = frame[frame["phase"] == "table"]
    names = [f"{row['method']} seed {row['seed']}" for _, row in table.iterrows()]
    assert names == ["ae seed 0", "ae seed 1", "amr seed 0", "amr seed 1"]
    for i, (name, (_, row)) in enumerate(zip(names, table.iterrows()), 1):  # a section per table run, its folder named in it
        assert f"<h2>{i}. {name}</h2>" in page and f"run folder: <code>{row['run']}</code>" in page
    # every metric per run, the best of each row marked by its plugin's direction (manifold: distances lower, fractions higher)
    for key, direction in (("mix_distance_mean", "min"), ("rec_distance_mean", "min"), ("on_manifold_fraction", "max")):
        cells = metric_row(page, key)
        values = [float(v) for v in table[key]]
        assert [text for _, text in cells] == [format_value(v) for v in values], key
        assert {i for i, (best, _) in enumerate(cells) if best} == best_positions(values, direction), key
    assert "on green: the best value of its row" in page
    # the study's comparison, as compare() gives it, its best mean marked
    cmp = compare(frame)
    section = page[page.index("<h2>comparison</h2>"):page.index("<h2>runs</h2>")]
    assert "mix_distance_mean mean ± SD" in section and "(baseline)" in section
    amr = cmp[cmp["method"] == "amr"].iloc[0]
    assert amr["verdict"] in section and f"{amr['diff']:+.4g} [{amr['t_low']:+.4g}, {amr['t_high']:+.4g}]" in section
    methods = cmp[cmp["role"] != "reference"]
    best_method = methods.loc[methods["mean"].idxmin(), "method"]
    assert re.search(rf"<tr><td>{best_method}</td><td class=\"num\">2</td><td class=\"num best\"", section)
    # the tuning runs, grouped by trial, the chosen one marked; the interpolations labelled by method
    assert "<h2>tuning</h2>" in page and "ae trial 0" in page and "amr trial 0" in page and "seed 100: " in page
    assert page.count("chosen (the best mean)") == 2
    assert "linear interpolation: ae seed 0, amr seed 0" in page

    # a study that has not finished is a message naming it and the command that finishes it
    unfinished = tmp_path / "unfinished"
    shutil.copytree(folder, unfinished)
    state = json.loads((unfinished / "study.json").read_text())
    (unfinished / "study.json").write_text(json.dumps({**state, "state": "table"}))
    assert main(["report", str(unfinished), "--out", str(tmp_path / "u.html")]) == 2
    err = capsys.readouterr().err
    assert f"the study {unfinished} has not finished" in err and f"mixframe study --resume {unfinished}" in err
    assert "Traceback" not in err and not (tmp_path / "u.html").exists()
    # a study is reported alone
    assert main(["report", str(folder), str(table.iloc[0]["run"]), "--out", str(tmp_path / "m.html")]) == 2
    assert "reported alone" in capsys.readouterr().err


def test_a_folder_that_is_no_run_sweep_or_study_is_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"{empty} is not a mixframe run folder (no recipe.yaml), nor a study folder (no study.json) or a sweep folder" in err
    assert "a study folder (mixframe study)" in err and "Traceback" not in err
    (tmp_path / "holder" / "sweep-x").mkdir(parents=True)
    (tmp_path / "holder" / "sweep-x" / "sweep.json").write_text("{}")
    with pytest.raises(MixframeError, match=r"holds 1 such folder\(s\) \(.*sweep-x\): report one of them"):
        mixframe.report.build_report([tmp_path / "holder"])
    assert not (tmp_path / "r.html").exists()


def test_a_sweep_folder_is_reported_by_grid_point_and_seed(tmp_path: Path) -> None:
    from mixframe.tools.sweep import read_sweep, sweep

    small = [f"{k}={json.dumps(v)}" for k, v in {**SMALL, "train.epochs": 1}.items()]
    folder = sweep("spiral_ae", ["train.lr=0.001,0.01"], overrides=small, out=tmp_path, launcher=InProcess(), progress=False)
    out = mixframe.report.write_report([folder], tmp_path / "sweep.html", interpolation=False, metric="mix_distance_mean")
    page = out.read_text()
    runs = read_sweep(folder)["runs"]
    labels = [f"train.lr={run['point']['train.lr']} seed {run['seed']}" for run in runs]
    assert [f"<h2>{i}. {label}</h2>" in page for i, label in enumerate(labels, 1)] == [True, True]
    values = [run["metrics"]["mix_distance_mean"] for run in runs]
    cells = metric_row(page, "mix_distance_mean")
    assert {i for i, (best, _) in enumerate(cells) if best} == best_positions(values, "min")
    assert "<h2>comparison</h2>" in page and "spiral_ae: train.lr=0.01" in page  # compare()'s methods, with --metric
    # a run that did not finish is named, with the command that runs it again
    record = json.loads((folder / "sweep.json").read_text())
    record["runs"][1].update(status="failed", message="diverged at step 3")
    (folder / "sweep.json").write_text(json.dumps(record))
    page = mixframe.report.build_report([folder], interpolation=False)
    assert f"Not finished: {labels[1]} (failed: diverged at step 3)" in page and f"mixframe sweep --resume {folder}" in page
    assert f"<h2>1. {labels[0]}</h2>" in page and "<h2>2. " not in page


def test_the_study_report_names_the_trials_outside_the_constraints() -> None:
    from mixframe.tools.report import tuning_section

    def run(trial: int, value: float, rec: float) -> dict[str, Any]:
        return {"phase": "tune", "method": "amr", "trial": trial, "seed": 100, "status": "complete", "settings": {"train.lr": 0.01},
                "metrics": {"on_manifold_fraction": value, "rec_mse": rec}}

    record = {"metric": "on_manifold_fraction", "direction": "max", "constraints": {"rec_mse": {"min": None, "max": 0.01}},
              "runs": [run(0, 1.0, 0.5), run(1, 0.6, 0.001)], "best": {"amr": {"trial": 1, "edges": {}}}}
    html = tuning_section(record)
    collapsed, chosen = html.split("amr trial 0")[1].split("amr trial 1")
    assert "outside the constraints: rec_mse 0.5 (needs &lt;= 0.01)" in collapsed  # the best score, but a collapsed decoder
    assert "chosen (the best mean)" in chosen and "outside" not in chosen
