"""Send a run to MLflow: the resolved recipe as parameters, every epoch's values as metrics, evaluation results,
and the run folder (pictures included) as artifacts.

One MLflow run per mixframe run, in the experiment ``experiment`` of the tracking server ``tracking_uri``
(a ``sqlite:///mlruns.db`` file, an ``http://`` server, a folder; null: MLflow's own default, from
``MLFLOW_TRACKING_URI``). Its id is kept in the run folder (``mlflow.json``), so that ``mixframe resume``
continues the same MLflow run: the epochs after the checkpoint are logged under the same metric names,
and a training setting the resume changed is recorded as a tag (MLflow's parameters cannot change).
Metric names are those of metrics.csv and TensorBoard (``epoch/ae/reconstruction``), with the epoch as
MLflow's step. At the end the run folder's files go up as artifacts (checkpoints only with
``checkpoints: true``), and evaluation.json's values as ``eval/NAME`` metrics (with ``evaluate: true`` the
recipe's metrics are computed first); after a later ``mixframe evaluate``, :func:`log_evaluation` sends them.

The callback places its work after every other callback (it appends its own last callback when training
starts), so that it sees the validation loss of each epoch, the pictures drawn at the end and the final
run.json. MLflow is imported only here: ``pip install 'mixframe[mlflow]'``; mixframe itself starts without it.
Rank 0 of a run folder only.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import attrs

from mixframe import BuildContext, Callback, Component, MixframeError, RunFolder, hookimpl, param

logger = logging.getLogger("mixframe.mlflow")

FILE = "mlflow.json"  # in the run folder: where its MLflow run is (tracking URI, experiment, run id)
MAX_PARAMS_PER_BATCH = 100  # MLflow's limit for one log_batch call


@attrs.frozen(kw_only=True)
class MlflowConfig:
    tracking_uri: str | None = param(None, help="the MLflow tracking store: sqlite:///PATH.db, http://HOST:PORT, a folder; "
                                                "null: MLflow's default (MLFLOW_TRACKING_URI)")
    experiment: str = param("mixframe", help="the MLflow experiment the run goes to (created when missing)")
    artifact_location: str | None = param(None, help="where a new experiment keeps its artifacts (a folder or URI); null: "
                                                     "MLflow's default, which for a database store is ./mlruns in the current folder")
    evaluate: bool = param(False, help="compute the recipe's metrics when training ends and send them (else only an "
                                       "evaluation.json already in the run folder)")
    checkpoints: bool = param(False, help="send checkpoint.pt and checkpoint_best.pt with the run folder's other files")


def client(tracking_uri: str | None) -> Any:
    """An MlflowClient, or a MixframeError saying how to install MLflow."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MixframeError("the mlflow callback needs MLflow, which is not installed here: pip install 'mixframe[mlflow]' "
                            "(or remove {kind: mlflow} from the recipe's callbacks)") from None
    return MlflowClient(tracking_uri=tracking_uri)


class Mlflow(Callback):
    """Starts (or, on resume, reopens) the MLflow run; its :class:`_Last` part logs epochs and the end."""

    def __init__(self, config: MlflowConfig, context: BuildContext) -> None:
        self.config = config
        self.client = client(config.tracking_uri)  # before any run folder is made: a missing MLflow is said at once
        self.run_id: str | None = None

    def on_start(self, trainer: Any) -> None:
        if trainer.run is None:
            return
        from mixframe.runs.folder import read_json, write_json
        from mixframe_plugins.callbacks.tensorboard_hparams import flatten

        stored = read_json(trainer.run.file(FILE))
        params = {k: str(v)[:6000] for k, v in flatten(trainer.recipe.to_dict()).items()}
        if stored.get("run_id"):  # a resume: the same MLflow run, in the store it was made in
            self.client = client(stored.get("tracking_uri"))
            self.run_id = stored["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            logged = self.client.get_run(self.run_id).data.params
            changed = {f"changed_on_resume.{k}": v for k, v in params.items() if k in logged and logged[k] != v}
            for key, value in changed.items():
                self.client.set_tag(self.run_id, key, value)
            params = {k: v for k, v in params.items() if k not in logged}
        else:
            experiment = self.client.get_experiment_by_name(self.config.experiment)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
                self.config.experiment, artifact_location=self.config.artifact_location)
            created = self.client.create_run(experiment_id, run_name=trainer.run.name,
                                             tags={"mixframe.run_folder": str(trainer.run.path.resolve())})
            self.run_id = created.info.run_id
            write_json(trainer.run.file(FILE), {"tracking_uri": self.client.tracking_uri, "experiment": self.config.experiment,
                                                "experiment_id": experiment_id, "run_id": self.run_id})
        self._log_params(params)
        logger.info(f"mlflow: run {self.run_id} in experiment {self.config.experiment!r} at {self.client.tracking_uri}")
        trainer.callbacks.append(_Last(self))  # after every callback, the run folder's own included

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + MAX_PARAMS_PER_BATCH])

    def log_values(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if math.isfinite(float(v))]
        for start in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[start:start + 1000])


class _Last(Callback):
    """The part of :class:`Mlflow` that must hear each event after every other callback."""

    def __init__(self, owner: Mlflow) -> None:
        self.owner = owner

    def on_epoch_end(self, trainer: Any, means: dict[str, float]) -> None:
        self.owner.log_values(means, trainer.epoch)

    def on_end(self, trainer: Any, summary: dict[str, float]) -> None:
        if self.owner.config.evaluate:
            _evaluate(trainer)
        send_folder(self.owner.client, self.owner.run_id, trainer.run, checkpoints=self.owner.config.checkpoints)
        self.owner.client.set_terminated(self.owner.run_id, "FINISHED")

    def on_failure(self, trainer: Any, error: BaseException) -> None:
        try:
            self.owner.client.set_terminated(self.owner.run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        except Exception as err:  # noqa: BLE001 - the error that stopped training is the one to report
            logger.warning(f"mlflow: could not mark run {self.owner.run_id} as stopped: {err}")


def _evaluate(trainer: Any) -> None:
    """The recipe's metrics on the trained model, into evaluation.json (a metric that cannot run is a printed note)."""
    from mixframe.runs.api import Run
    from mixframe.runs.evaluation import evaluate

    if not trainer.recipe.metrics:
        logger.info("mlflow: the recipe names no metrics; nothing to evaluate (evaluate: true)")
        return
    try:
        evaluate(Run(trainer.run, trainer.model.eval(), data=trainer.data, epoch=trainer.epoch, step=trainer.step), ())
    except MixframeError as err:
        logger.warning(f"mlflow: evaluation skipped: {err}")


def send_folder(mlflow_client: Any, run_id: str, folder: RunFolder, *, checkpoints: bool = False) -> None:
    """The run folder's files as artifacts (its layout kept; checkpoints only when asked), evaluation.json's values as metrics."""
    send_evaluation(mlflow_client, run_id, folder.evaluation())
    for path in sorted(folder.path.rglob("*")):
        relative = path.relative_to(folder.path)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue  # temporary files of atomic writes
        if path.suffix == ".pt" and not checkpoints:
            continue
        parent = relative.parent.as_posix()
        mlflow_client.log_artifact(run_id, str(path), artifact_path=None if parent == "." else parent)


def send_evaluation(mlflow_client: Any, run_id: str, evaluation: dict[str, Any]) -> None:
    """evaluation.json's values as ``eval/NAME`` metrics, at the step of the epoch evaluated."""
    from mlflow.entities import Metric

    metrics = evaluation.get("metrics")
    if not isinstance(metrics, dict):
        return
    now, step = int(time.time() * 1000), int(evaluation.get("epoch", 0))
    values = [Metric(f"eval/{k}", float(v), now, step) for k, v in metrics.items()
              if isinstance(v, (int, float)) and math.isfinite(float(v))]
    if values:
        mlflow_client.log_batch(run_id, metrics=values)


def log_evaluation(run_dir: str | Path) -> str:
    """After ``mixframe evaluate RUN``: send the run's evaluation.json (as ``eval/NAME`` metrics and an artifact) to the
    MLflow run its training made; returns that run's id."""
    from mixframe.runs.folder import read_json

    folder = RunFolder.open(run_dir)
    stored = read_json(folder.file(FILE))
    if not stored.get("run_id"):
        raise MixframeError(f"{folder.path} has no {FILE}: it was not trained with the mlflow callback "
                            "(callbacks: [{kind: mlflow, tracking_uri: ...}])")
    mlflow_client = client(stored.get("tracking_uri"))
    evaluation = folder.evaluation()
    if not evaluation:
        raise MixframeError(f"{folder.path} has no {RunFolder.EVALUATION}; run 'mixframe evaluate {folder.path}' first")
    send_evaluation(mlflow_client, stored["run_id"], evaluation)
    mlflow_client.log_artifact(stored["run_id"], str(folder.file(RunFolder.EVALUATION)))
    return str(stored["run_id"])


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="callback", name="mlflow", implementation=Mlflow, config=MlflowConfig,
                      summary="the run in MLflow: recipe as parameters, epoch values as metrics, evaluation and run folder "
                              "as artifacts; a resumed run continues its MLflow run (pip install 'mixframe[mlflow]')")]
