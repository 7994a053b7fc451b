"""The mlflow callback against a real MLflow tracking store (SQLite), read back with MlflowClient."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient  # in the test extra (pip install -e '.[test]')

import mixframe
from mixframe import MixframeError

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["data.n_train=256", "data.n_val=64", "data.n_test=64", "train.batch_size=64", "train.epochs=2", "train.checkpoint_every=1",
         "encoder.hidden=[16, 16]", "decoder.hidden=[16, 16]", "discriminator.hidden=[16, 16]"]


def tracked_recipe(folder: Path, store: str, extra: str = "") -> Path:
    recipe = folder / "tracked.yaml"
    recipe.write_text(f"""\
extends: {ROOT / 'recipes' / 'spiral_amr.yaml'}
callbacks: [{{kind: training_pictures, every: 1}}, {{kind: mlflow, tracking_uri: '{store}', experiment: spirals{extra}, artifact_location: '{folder / "artifacts"}'}}]
""")
    return recipe


def test_a_run_goes_to_mlflow_with_its_recipe_epochs_evaluation_and_folder_and_a_resume_continues_it(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    run = mixframe.train(tracked_recipe(tmp_path, store, ", evaluate: true"), SMALL, out=tmp_path / "runs", progress=False)
    stored = json.loads((run.dir / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=store)
    (found,) = client.search_runs([client.get_experiment_by_name("spirals").experiment_id])
    assert found.info.run_id == stored["run_id"] and found.info.run_name == run.name and found.info.status == "FINISHED"
    params = found.data.params
    assert params["train.epochs"] == "2" and params["mixer.kind"] == "mixup" and params["regularizers.0.kind"] == "adversarial"
    logged = run.logged()
    for name in ("epoch/ae/reconstruction", "epoch/val/reconstruction"):  # the validation loss too: logged after the callbacks
        history = client.get_metric_history(found.info.run_id, name)
        assert [m.step for m in history] == [1, 2]
        assert [m.value for m in history] == pytest.approx([v for _, v in logged[name]], rel=1e-5)
    evaluation = run.folder.evaluation()["metrics"]
    assert found.data.metrics["eval/on_manifold_fraction"] == pytest.approx(evaluation["on_manifold_fraction"])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"grid.png", "loss_curves.png", "recipe.yaml", "run.json", "evaluation.json", "metrics.csv", "tb"} <= artifacts
    assert "checkpoint.pt" not in artifacts
    uploaded = json.loads(Path(client.download_artifacts(found.info.run_id, "run.json", str(tmp_path))).read_text())
    assert uploaded["status"] == "complete"  # sent after the run folder's record was closed

    mixframe.resume(run.dir, ["train.epochs=3"], progress=False)
    (again,) = client.search_runs([client.get_experiment_by_name("spirals").experiment_id])
    assert again.info.run_id == found.info.run_id and again.info.status == "FINISHED"  # the same MLflow run, continued
    assert [m.step for m in client.get_metric_history(found.info.run_id, "epoch/ae/reconstruction")] == [1, 2, 3]
    assert again.data.params["train.epochs"] == "2" and again.data.tags["changed_on_resume.train.epochs"] == "3"


def test_an_evaluation_made_later_is_sent_to_the_same_mlflow_run(tmp_path: Path) -> None:
    from mixframe_plugins.callbacks.mlflow import log_evaluation

    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    run = mixframe.train(tracked_recipe(tmp_path, store), [*SMALL, "train.epochs=1"], out=tmp_path / "runs", progress=False)
    run.evaluate(["manifold"])
    run_id = log_evaluation(run.dir)
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(run_id).data.metrics["eval/on_manifold_fraction"] == pytest.approx(run.folder.evaluation()["metrics"]["on_manifold_fraction"])
    plain = mixframe.train(ROOT / "recipes" / "spiral_amr.yaml", [*SMALL, "train.epochs=1"], out=tmp_path / "plain", progress=False)
    with pytest.raises(MixframeError, match="was not trained with the mlflow callback"):
        log_evaluation(plain.dir)


def test_without_mlflow_installed_the_message_says_how_to_install_it_and_no_run_folder_is_made(tmp_path: Path,
                                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what a missing package looks like to import
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(MixframeError, match=r"needs MLflow, which is not installed here: pip install 'mixframe\[mlflow\]'"):
        mixframe.train(tracked_recipe(tmp_path, f"sqlite:///{tmp_path / 'm.db'}"), SMALL, out=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
