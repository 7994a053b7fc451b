"""The engine: losses fall, schedules hold, runs record and resume exactly, failures keep work safe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from processes import torchrun

import mixframe
from mixframe.cli.main import main
from mixframe.errors import MixframeError
from mixframe.kernel.engine import Trainer, TrainingDiverged
from mixframe.kernel.model import Model
from mixframe.kernel.recipe import load_recipe
from mixframe.runs.folder import RunFolder, load_checkpoint, save_checkpoint
from mixframe.tools.pictures import loss_panels
from mixframe_plugins.callbacks.stall_watch import ReconstructionWatch, mean_image_loss

CHECKPOINT = RunFolder.CHECKPOINT

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
SMALL = ["data.n_train=512", "data.n_val=128", "data.n_test=128", "train.batch_size=64", "train.epochs=3",
         "encoder.hidden=[32, 32]", "decoder.hidden=[32, 32]", "discriminator.hidden=[32, 32]", "train.log_every=1",
         "callbacks=[{kind: training_pictures, every: 1}]"]


def small_spiral(*extra: str):  # noqa: ANN201
    return load_recipe(SPIRAL, [*SMALL, *extra])


def weights(state: dict) -> dict[str, torch.Tensor]:
    return state["model"]


def test_losses_fall_and_critic_and_autoencoder_follow_the_schedule() -> None:
    trainer = Trainer(small_spiral("train.update_g_every=4", "train.lr=1e-3"))
    x, y = next(iter(trainer.loader))
    ae_before = [p.detach().clone() for p in trainer.model.encoder.parameters()]
    critic = trainer.model.regularizers[0]
    critic_before = [p.detach().clone() for p in critic.critic_parameters()]
    for i in range(3):  # critic-only steps: the autoencoder must not move, the critic must
        logs = trainer.train_step(x, y)
        assert not any(k.startswith("ae/") for k in logs)
        assert all(torch.equal(a, p) for a, p in zip(ae_before, trainer.model.encoder.parameters()))
    assert not all(torch.equal(a, p) for a, p in zip(critic_before, critic.critic_parameters()))
    logs = trainer.train_step(x, y)  # the 4th minibatch updates the autoencoder
    assert "ae/reconstruction" in logs and "ae/1_consistency/consistency" in logs
    assert not all(torch.equal(a, p) for a, p in zip(ae_before, trainer.model.encoder.parameters()))

    trainer = Trainer(small_spiral("train.lr=1e-3"))  # every minibatch updates the autoencoder
    first = trainer.train_step(x, y)["ae/reconstruction"]
    for _ in range(200):
        logs = trainer.train_step(x, y)
    assert logs["ae/reconstruction"] < 0.5 * first
    assert logs["ae/reconstruction"] < 0.5 * mean_image_loss(trainer.data, trainer.model)  # it leaves the mean-image plateau


def test_a_critic_that_owns_its_settings_takes_its_own_steps_and_adam_settings_beside_the_recipes() -> None:
    trainer = Trainer(small_spiral("regularizers=[{kind: adversarial, spectral_norm: false}, {kind: wgan_gp, n_critic: 3, lr: 1.0e-4}]",
                                   "train.update_g_every=2"))
    x, y = next(iter(trainer.loader))
    for _ in range(4):  # two autoencoder updates
        trainer.train_step(x, y)
    adversarial, wgan = trainer.critic_opts["0_adversarial"], trainer.critic_opts["1_wgan_gp"]
    steps = {name: max(int(s["step"]) for s in opt.state.values()) for name, opt in trainer.critic_opts.items()}
    assert steps == {"0_adversarial": 4, "1_wgan_gp": 6}  # one per minibatch (the recipe's); 3 per autoencoder update (its own)
    assert [trainer.critic_steps("1_wgan_gp", i) for i in range(4)] == [1, 2, 1, 2]  # spread over the update's minibatches
    assert wgan.param_groups[0]["betas"] == (0.0, 0.9) and wgan.param_groups[0]["lr"] == 1e-4
    assert adversarial.param_groups[0]["betas"] == (0.5, 0.99) and adversarial.param_groups[0]["lr"] == 2e-3  # the recipe's train.*
    state = trainer.state()
    again = Trainer(small_spiral("regularizers=[{kind: adversarial, spectral_norm: false}, {kind: wgan_gp, n_critic: 3, lr: 1.0e-4}]",
                                 "train.update_g_every=2"))
    again.load_state(state)  # a resumed run keeps each critic's own learning rate
    assert again.critic_opts["1_wgan_gp"].param_groups[0]["lr"] == 1e-4 and again.critic_opts["0_adversarial"].param_groups[0]["lr"] == 2e-3


def test_critic_only_steps_build_no_autoencoder_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(small_spiral("train.update_g_every=2"))
    seen: list[bool] = []
    original = trainer.model.forward_step

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        step, out = original(*args, **kwargs)
        seen.append(out.requires_grad)
        return step, out

    monkeypatch.setattr(trainer.model, "forward_step", spy)
    x, y = next(iter(trainer.loader))
    for _ in range(4):
        trainer.train_step(x, y)
    assert seen == [False, True, False, True]


def test_train_writes_a_complete_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", str(SPIRAL), "--out", str(tmp_path), "--no-progress"]
    for s in SMALL:
        args += ["--set", s]
    assert main(args) == 0
    assert main(args) == 0  # a second run never reuses the first one's folder
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 2
    run = runs[0]
    for name in ("recipe.yaml", "run.json", "environment.json", "plugins.json", CHECKPOINT, "metrics.csv", "loss_curves.png", "grid.png"):
        assert (run / name).exists(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["epoch"] == 3 and info["overrides"] == SMALL
    assert load_recipe(run / "recipe.yaml") == small_spiral()
    environment = json.loads((run / "environment.json").read_text())
    assert "torch" in environment["packages"] and environment["cpu"]["model"] and environment["cpu"]["capability"]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,name,value" and any("d_real_chance" in r for r in rows)
    assert main(["resume", str(run)]) == 0
    assert "already complete" in capsys.readouterr().out


def test_an_autoencoder_stuck_at_the_mean_image_is_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", str(SPIRAL), "--out", str(tmp_path), "--no-progress"]
    for s in [*SMALL, "train.lr=1e-12", "callbacks=[{kind: stall_watch, patience: 2}]", "regularizers=[]", "mixer={kind: none}"]:
        args += ["--set", s]
    assert main(args) == 0
    run = next(tmp_path.iterdir())
    warning = (run / "warnings.log").read_text()
    assert warning.startswith("warning: ae/reconstruction (") and "no better than outputting the mean training example" in warning
    assert "nearly unchanged, for 2 epochs" in warning and "mean training example" in capsys.readouterr().out
    curves = RunFolder(run).epoch_curves()
    assert "epoch/ae/reconstruction_chance" in curves  # drawn as the reconstruction panel's dashed level, not as a curve
    panels = dict(loss_panels(curves))
    assert sorted(panels["reconstruction (dashed: mean image)"]) == ["epoch/ae/reconstruction", "epoch/val/reconstruction"]  # training, validation
    assert not any(k.endswith("_chance") for series in panels.values() for k in series)


def watch(losses: list[float], level: float, patience: int = 3) -> list[tuple[int, str]]:
    w = ReconstructionWatch(level, patience)
    return [(epoch, msg) for epoch, loss in enumerate(losses, 1) if (msg := w.update(loss, epoch == len(losses)))]


def test_reconstruction_watch_on_measured_runs() -> None:
    # Per-epoch losses of real runs (docs/results-issue14.md): dSprites at batch 64 converging onto the mean-image
    # level from above and ending there; a dSprites run sitting on the plateau; digits passing through it.
    converging_onto = watch([6.242, 1.874, 1.371, 1.259, 1.216, 1.200], level=1.205)
    assert [e for e, _ in converging_onto] == [6] and "training ends with" in converging_onto[0][1]
    plateau = watch([2.10, 1.22, 1.21, 1.21, 1.20, 1.19, 1.18, 0.88], level=1.205)
    assert [e for e, _ in plateau] == [5] and "nearly unchanged, for 3 epochs" in plateau[0][1]
    assert watch([5.54, 4.09, 3.41, 3.10, 2.79, 2.60, 2.54, 2.36, 2.28, 2.22], level=3.04) == []
    assert watch([1.96, 1.18, 1.17, 0.98, 0.49, 0.33, 0.21], level=1.205) == []  # left the plateau after two flat epochs


def test_a_learning_autoencoder_is_not_warned_about_the_mean_image(tmp_path: Path) -> None:
    # Loss still falling from its start (above the mean-image level early on) is not a plateau.
    args = ["train", str(SPIRAL), "--out", str(tmp_path), "--no-progress"]
    for s in [*SMALL, "train.lr=2e-3", "callbacks=[{kind: stall_watch, patience: 1}]", "train.epochs=4", "regularizers=[]",
              "mixer={kind: none}"]:
        args += ["--set", s]
    assert main(args) == 0
    run = next(tmp_path.iterdir())
    curves = RunFolder(run).epoch_curves()
    assert curves["epoch/ae/reconstruction"][0][1] > curves["epoch/ae/reconstruction_chance"][0][1]  # it did start above the level
    assert "mean training example" not in ((run / "warnings.log").read_text() if (run / "warnings.log").exists() else "")


def test_new_run_dirs_never_collide(tmp_path: Path) -> None:
    dirs = {RunFolder.create(tmp_path, "x").path for _ in range(5)}
    assert len(dirs) == 5


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = mixframe.train(SPIRAL, [*SMALL, "train.epochs=2"], out=tmp_path, progress=False)
    good = run.folder.load_checkpoint()
    monkeypatch.setattr(Model, "reconstruction_loss", lambda self, out, x: torch.tensor(float("nan")))
    with pytest.raises(TrainingDiverged, match="became nan or infinite at epoch 3.*the last good checkpoint was kept"):
        mixframe.resume(run.dir, ["train.epochs=4"], progress=False)
    kept = run.folder.load_checkpoint()
    assert kept["epoch"] == 2 and all(torch.equal(kept["model"][k], good["model"][k]) for k in good["model"])
    info = run.folder.info()
    assert info["status"] == "diverged" and "became nan" in info["error"]


def test_nan_before_any_checkpoint_says_none_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Model, "reconstruction_loss", lambda self, out, x: torch.tensor(float("inf")))
    with pytest.raises(TrainingDiverged, match="no checkpoint had been written yet"):
        mixframe.train(SPIRAL, SMALL, out=tmp_path, progress=False)


def test_resume_applies_a_new_learning_rate_and_more_epochs(tmp_path: Path) -> None:
    run = mixframe.train(SPIRAL, [*SMALL, "train.epochs=1"], out=tmp_path, progress=False)
    resumed = mixframe.resume(run.dir, ["train.epochs=2", "train.lr=5e-4"], progress=False)
    assert resumed.epoch == 2 and resumed.recipe.train.lr == 5e-4
    state = run.folder.load_checkpoint()  # the optimizers stepped with the new rates (not the ones saved with them)
    assert {g["lr"] for g in state["ae_opt"]["param_groups"]} == {5e-4}
    assert {g["lr"] for o in state["critic_opts"].values() for g in o["param_groups"]} == {resumed.recipe.train.critic_lr or 5e-4}
    assert run.folder.read_recipe().train.epochs == 2  # recipe.yaml says what the run now is
    resume = run.folder.info()["resumes"][-1]
    assert {k: resume[k] for k in ("at_epoch", "overrides", "after")} == {"at_epoch": 1, "overrides": ["train.epochs=2", "train.lr=5e-4"],
                                                                          "after": {"status": "complete"}}
    with pytest.raises(MixframeError, match="resume changes only the train section"):
        mixframe.resume(run.dir, ["mixer.sampler=per_example"])


class Payload:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("touch /tmp/mixframe-checkpoint-pwned",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / CHECKPOINT
    torch.save({"model": {}, "evil": Payload()}, path)
    marker = Path("/tmp/mixframe-checkpoint-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(MixframeError, match="would run code when loaded; refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_checkpoint_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / CHECKPOINT
    state = {"model": {}, "epoch": 1, "step": 4}
    save_checkpoint(path, state)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mixframe.runs.folder.os.fsync", full_disk)
    with pytest.raises(MixframeError, match="No space left on device; the previous checkpoint is kept"):
        save_checkpoint(path, {**state, "epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path) == state
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]  # no temporary file left behind


def test_a_torch_file_that_is_not_a_checkpoint_is_a_message(tmp_path: Path) -> None:
    for content in ({"foo": 1}, torch.zeros(3)):
        torch.save(content, tmp_path / CHECKPOINT)
        with pytest.raises(MixframeError, match="not a mixframe checkpoint"):
            load_checkpoint(tmp_path / CHECKPOINT)


def test_recipe_mistakes_in_model_assembly_are_messages() -> None:
    with pytest.raises(MixframeError, match="adversarial needs a mixer that mixes at least two codes"):
        Trainer(small_spiral("mixer=null"))
    with pytest.raises(MixframeError, match="batch_size 4096 is larger than the training split"):
        Trainer(small_spiral("train.batch_size=4096"))


@pytest.mark.slow
def test_torchrun_two_processes_keep_identical_weights(tmp_path: Path) -> None:
    cmd = ["-m", "mixframe", "train", str(SPIRAL), "--out", str(tmp_path), "--no-progress", "--set", "train.device=cpu"]
    for s in [*SMALL, "train.epochs=2"]:
        cmd += ["--set", s]
    result = torchrun(cmd)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = list(tmp_path.iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2 and info["ranks_identical"] is True
    # each rank saw half the data per epoch: 512 / 2 / 64 = 4 minibatches per epoch
    assert info["step"] == 8


def test_missing_dataset_is_a_message_and_leaves_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIXFRAME_DATA", raising=False)
    code = main(["train", str(ROOT / "recipes" / "full" / "mnist_amr_mixup.yaml"), "--out", str(tmp_path / "runs")])
    assert code == 2
    assert "set data.root to the folder holding the mnist files" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("order", ["critic_first", "autoencoder_first"])
def test_train_order_decides_who_steps_first(order: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(small_spiral(f"train.order={order}"))
    steps: list[str] = []
    monkeypatch.setattr(trainer.ae_opt, "step", lambda *a, **k: steps.append("autoencoder"))
    for opt in trainer.critic_opts.values():
        monkeypatch.setattr(opt, "step", lambda *a, **k: steps.append("critic"))
    x, y = next(iter(trainer.loader))
    logs = trainer.train_step(x, y)
    assert steps == (["critic", "autoencoder"] if order == "critic_first" else ["autoencoder", "critic"])
    assert "ae/reconstruction" in logs and any(k.startswith("critic/") for k in logs)


def test_one_tensorboard_event_file_per_training_session_and_a_resume_replaces_what_it_redoes(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def sessions(run: Path) -> list[EventAccumulator]:
        return [EventAccumulator(str(f), size_guidance={"images": 0, "scalars": 0, "tensors": 0}).Reload()
                for f in sorted((run / "tb").glob("events.out.tfevents.*"))]

    run = mixframe.train(SPIRAL, SMALL, out=tmp_path, progress=False).dir
    (first,) = sessions(run)  # scalars, pictures and the recipe all in one file
    tags = first.Tags()
    assert "epoch/ae/reconstruction" in tags["scalars"] and "interpolation/grid" in tags["images"]
    assert "recipe/text_summary" in tags["tensors"]
    steps = [e.step for e in first.Scalars("epoch/ae/reconstruction")]
    mixframe.resume(run, ["train.epochs=5"], progress=False)
    merged = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0}).Reload()  # as TensorBoard reads the folder
    assert len(sessions(run)) == 2
    again = [e.step for e in merged.Scalars("epoch/ae/reconstruction")]
    assert again[:3] == steps and len(again) == 5 and again == sorted(set(again))  # the resumed epochs added, none twice


def hparams_tab(logdir: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    """What TensorBoard's HParams tab shows for ``logdir``, from its own backend: the metric columns, and per session
    (its TensorBoard run) the metric values."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    backend = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), multiplexer=mux,
                                                            data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir))))
    request = context.RequestContext()
    experiment = get_experiment.Handler(request, backend, "", api_pb2.GetExperimentRequest()).run()
    asked = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100, allowed_statuses=[api_pb2.STATUS_SUCCESS])
    for info in experiment.metric_infos:
        asked.col_params.add(metric=info.name)
    groups = list_session_groups.Handler(request, backend, "", asked).run().session_groups
    return [m.name.tag for m in experiment.metric_infos], {g.name: {m.name.tag: m.value for m in g.metric_values} for g in groups}


def test_tensorboard_hparams_carry_the_recipe_the_final_losses_and_every_evaluation(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    one = mixframe.train(SPIRAL, [*SMALL, "train.epochs=1"], out=tmp_path, progress=False)
    other = mixframe.train(SPIRAL, [*SMALL, "train.epochs=1", "train.lr=0.002"], out=tmp_path, progress=False)
    test = one.evaluate(["reconstruction"])
    val = one.evaluate(["reconstruction"], split="val")  # a study's tuning runs are scored so
    one.evaluate(["reconstruction"], seed=7)  # a measurement of evaluation noise: not the run's number, not recorded
    assert main(["evaluate", str(other.dir), "--metric", "reconstruction"]) == 0

    session = EventAccumulator(str(one.dir / "tb" / "hparams"), size_guidance={"scalars": 0}).Reload()
    summaries = session.PluginTagToContent(metadata.PLUGIN_NAME)
    assert metadata.EXPERIMENT_TAG not in summaries  # TensorBoard then lists every session's scalars as its metrics
    start = metadata.parse_session_start_info_plugin_data(summaries[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["train.lr"].number_value == pytest.approx(one.recipe.train.lr) and start.hparams["mixer.kind"].string_value == "mixup"
    assert set(session.Tags()["scalars"]) == {"epoch/ae/reconstruction", "epoch/val/reconstruction", "epoch/ae/total",
                                              *(f"eval/test/{k}" for k in test), *(f"eval/val/{k}" for k in val)}
    assert session.Scalars("eval/test/rec_mse")[-1].value == pytest.approx(test["rec_mse"], rel=1e-6)
    assert session.Scalars("eval/val/rec_mse")[-1].value == pytest.approx(val["rec_mse"], rel=1e-6)
    assert session.Scalars("eval/test/rec_mse")[-1].step == one.step

    # as TensorBoard's HParams tab shows the folder of both runs: a column per evaluation value, a row per run
    columns, rows = hparams_tab(tmp_path)
    assert {"eval/test/rec_mse", "eval/val/rec_mse", "epoch/ae/reconstruction"} <= set(columns)
    other_mse = json.loads((other.dir / "evaluation.json").read_text())["metrics"]["rec_mse"]
    assert rows[f"{one.dir.name}/tb/hparams"]["eval/test/rec_mse"] == pytest.approx(test["rec_mse"], rel=1e-6)
    assert rows[f"{other.dir.name}/tb/hparams"]["eval/test/rec_mse"] == pytest.approx(other_mse, rel=1e-6)
    assert "eval/val/rec_mse" not in rows[f"{other.dir.name}/tb/hparams"]

    # a resumed run starts its session afresh: its new settings, and no evaluation of the earlier model
    mixframe.resume(one.dir, ["train.epochs=2"], progress=False)
    session = EventAccumulator(str(one.dir / "tb" / "hparams"), size_guidance={"scalars": 0}).Reload()
    start = metadata.parse_session_start_info_plugin_data(session.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["train.epochs"].number_value == 2 and not any(t.startswith("eval/") for t in session.Tags()["scalars"])
