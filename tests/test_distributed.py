"""Data parallelism and a GPU-ready engine: N processes train what one does, steps do not wait for the device,
compiled steps train what eager ones do."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import torch
from processes import torchrun

import mixframe
from mixframe.kernel.engine import Trainer, epoch_sampler
from mixframe.kernel.model import Model
from mixframe.kernel.recipe import load_recipe
from mixframe.runs.folder import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
SMALL_SPIRAL = ["data.n_train=512", "data.n_val=128", "data.n_test=128", "train.batch_size=64", "train.epochs=1",
                "encoder.hidden=[32, 32]", "decoder.hidden=[32, 32]", "discriminator.hidden=[32, 32]", "callbacks=[]"]
# Small conv nets without InstanceNorm: a bias before InstanceNorm has a zero gradient, whose rounding noise Adam
# turns into steps of +-lr; without it every weight's gradient means something and the comparison is tight.
SMALL_DIGITS = ["train.device=cpu", "train.epochs=1", "train.max_steps=6", "encoder.depth=4", "decoder.depth=4",
                "encoder.instance_norm=false", "decoder.instance_norm=false", "callbacks=[]"]
RECIPES = {"digits_ae": [], "digits_ae_gan": ["discriminator.depth=4"]}  # plain AE; AE+GAN (its critic is compared too)

TRAIN_BOTH = """
import logging
import sys
import mixframe
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)  # the library's messages, shown
out, batch = sys.argv[1], sys.argv[2]
for name, extra in {recipes!r}.items():
    mixframe.train("{root}/recipes/" + name + ".yaml", [*{small!r}, *extra, "train.batch_size=" + batch], out=out + "/" + name,
                   progress=False)
"""


@pytest.mark.slow
def test_two_processes_with_a_global_batch_of_64_reach_the_weights_of_one_process_with_64(tmp_path: Path) -> None:
    script = tmp_path / "train_both.py"
    script.write_text(TRAIN_BOTH.format(recipes=RECIPES, root=ROOT, small=SMALL_DIGITS))
    two = torchrun([str(script), str(tmp_path / "two"), "32"])
    assert two.returncode == 0, two.stderr[-3000:]
    # what a user reads at start: the number of processes, the batch per process and per optimizer step
    assert "data parallel: 2 processes (gloo, cpu); train.batch_size 32 per process, 64 per optimizer step in all" in two.stdout
    for name, extra in RECIPES.items():
        one = mixframe.train(ROOT / "recipes" / f"{name}.yaml", [*SMALL_DIGITS, *extra, "train.batch_size=64"], out=tmp_path / "one" / name,
                             progress=False)
        [two_dir] = list((tmp_path / "two" / name).iterdir())
        a, b = load_checkpoint(two_dir / "checkpoint.pt"), one.folder.load_checkpoint()
        assert a["step"] == b["step"] == 6
        initial = Model(one.recipe, one.spec).state_dict()  # seeded: the weights both runs started from
        moved = max(float((b["model"][k] - initial[k]).abs().max()) for k in b["model"] if not k.endswith(("_u", "_v")))
        worst = max(float((a["model"][k] - b["model"][k]).abs().max()) for k in b["model"])
        assert moved > 2e-4, f"{name}: training barely moved the weights ({moved:.2g}); the comparison would prove nothing"
        assert worst < 1e-5, f"{name}: 2 processes x 32 and 1 process x 64 differ by {worst:.3g} (weights moved {moved:.2g})"
        assert any(k.startswith("regularizers.0.") for k in b["model"]) == (name == "digits_ae_gan")


def test_the_sampler_is_pytorchs_and_n_ranks_see_what_one_process_sees() -> None:
    data = list(range(515))
    one = epoch_sampler(data, seed=3)
    shards = [epoch_sampler(data, seed=3, rank=r, world=2) for r in range(2)]
    assert isinstance(one, torch.utils.data.distributed.DistributedSampler)
    for epoch in range(3):
        one.set_epoch(epoch)
        for s in shards:
            s.set_epoch(epoch)
        order = list(one)
        ranks = [list(s) for s in shards]
        # minibatch k of a process with batch 64 holds exactly the examples of minibatch k of each of 2 ranks with 32
        for k in range(len(ranks[0]) // 32):
            assert sorted(order[64 * k : 64 * (k + 1)]) == sorted(ranks[0][32 * k : 32 * (k + 1)] + ranks[1][32 * k : 32 * (k + 1)])
        assert set(ranks[0]).isdisjoint(ranks[1])
    again = epoch_sampler(data, seed=3)
    again.set_epoch(2)
    assert list(again) == order  # each epoch's order depends only on (seed, epoch): a resumed run sees the same batches
    one.set_epoch(1)
    assert list(one) != order


SYNCS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy")


def host_reads(trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls that read a tensor's value back to the host (a device synchronisation on a GPU) during ``fit``; Adam's
    step counters are left out (they live on the host whatever the device)."""
    calls: Counter[str] = Counter()

    def counting(name: str):  # noqa: ANN202
        original = getattr(torch.Tensor, name)

        def spy(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            steps = [s.get("step") for opt in (trainer.ae_opt, *trainer.critic_opts.values()) for s in opt.state.values()]
            if not any(self is s for s in steps):
                calls[name] += 1
            return original(self, *args, **kwargs)

        return spy

    with monkeypatch.context() as m:
        for name in SYNCS:
            m.setattr(torch.Tensor, name, counting(name))
        trainer.fit()
    return calls


def test_an_ordinary_step_reads_nothing_back_from_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # One epoch of 4 minibatches and one of 12, logged every 1000: whatever reads values back happens per epoch
    # (means, pictures, watches), so both epochs read the same number of times.
    counts = []
    for n_train in (256, 768):
        trainer = Trainer(load_recipe(SPIRAL, [*SMALL_SPIRAL, f"data.n_train={n_train}", "train.log_every=1000"]))
        counts.append(host_reads(trainer, monkeypatch))
        assert trainer.step == n_train // 64
    assert counts[0] == counts[1], f"reads per epoch depend on the number of steps: {counts}"
    # logging every step reads the logged values (and checks them for NaN) once per step
    trainer = Trainer(load_recipe(SPIRAL, [*SMALL_SPIRAL, "data.n_train=256", "train.log_every=1"]))
    assert sum(host_reads(trainer, monkeypatch).values()) > sum(counts[0].values())


def test_compile_trains_what_eager_does_and_leaves_the_model_as_it_was() -> None:
    # aot_eager: torch.compile's graph capture and compiled autograd without generating code (seconds, not minutes)
    weights = {}
    for compiled in (False, True):
        trainer = Trainer(load_recipe(SPIRAL, [*SMALL_SPIRAL, "train.max_steps=4", f"train.compile={str(compiled).lower()}",
                                              "train.compile_backend=aot_eager"]))
        keys = list(trainer.model.state_dict())
        trainer.fit()
        weights[compiled] = trainer.model.state_dict()
        assert list(weights[compiled]) == keys  # checkpoints keep their keys
        assert "forward" not in trainer.model.encoder.__dict__  # the plain modules again after training
    assert all(torch.equal(weights[True][k], weights[False][k]) for k in weights[False])


@pytest.mark.skipif(os.environ.get("MIXFRAME_TEST_INDUCTOR") != "1",
                    reason="inductor code generation takes 30 s (MLP) to 80 s (conv) on the 2-core CPU; MIXFRAME_TEST_INDUCTOR=1 runs it")
def test_compile_with_inductor_trains_what_eager_does() -> None:
    weights = {}
    for compiled in (False, True):
        trainer = Trainer(load_recipe(SPIRAL, [*SMALL_SPIRAL, "train.max_steps=4", f"train.compile={str(compiled).lower()}"]))
        trainer.fit()
        weights[compiled] = trainer.model.state_dict()
    assert all(torch.allclose(weights[True][k], weights[False][k], atol=1e-6) for k in weights[False])


def test_a_spectral_norm_critic_stays_eager_under_compile(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="mixframe")
    trainer = Trainer(load_recipe(ROOT / "recipes" / "digits_amr_mixup.yaml", [*SMALL_DIGITS, "discriminator.depth=4", "train.compile=true",
                                                                                 "train.compile_backend=aot_eager"]))
    assert trainer.parallel.eager == ["0_adversarial.body (spectral norm)", "0_adversarial.head (spectral norm)"]
    assert "train.compile: left eager: 0_adversarial.body (spectral norm), 0_adversarial.head" in caplog.text
    x, y = trainer.to_device(*next(iter(trainer.loader)))
    for _ in range(2):
        trainer.train_step(x, y)  # critic-only and autoencoder steps run


def test_channels_last_trains_the_same_on_cpu() -> None:
    weights = {}
    for fmt in ("false", "true"):
        trainer = Trainer(load_recipe(ROOT / "recipes" / "digits_amr_mixup.yaml",
                                      [*SMALL_DIGITS, "discriminator.depth=4", "train.max_steps=2", f"train.channels_last={fmt}"]))
        conv = next(p for p in trainer.model.decoder.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1)
        assert conv.is_contiguous(memory_format=torch.channels_last) == (fmt == "true") != conv.is_contiguous()
        trainer.fit()
        weights[fmt] = trainer.model.state_dict()
    assert all(torch.allclose(weights["true"][k], weights["false"][k], atol=1e-5) for k in weights["false"])


THREE_RUNS = """
import sys
import mixframe
for i in range(3):
    run = mixframe.train("{spiral}", {small!r} + ["train.max_steps=3", "seed=" + str(i)], out=sys.argv[1], name="run" + str(i), progress=False)
    print("finished", i, run.step, flush=True)
"""


@pytest.mark.slow
def test_three_trains_in_one_torchrun_process_finish(tmp_path: Path) -> None:
    # Leaving the group after each run and joining again re-created it through torchrun's store, where a rank could read
    # the previous group's peers: the second train() hung in 1 of 3 runs (10 of 16 under load).
    script = tmp_path / "three.py"
    script.write_text(THREE_RUNS.format(spiral=SPIRAL, small=[*SMALL_SPIRAL, "train.device=cpu"]))
    result = torchrun([str(script), str(tmp_path / "runs")], timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(line for line in result.stdout.splitlines() if line.startswith("finished")) == [f"finished {i} 3" for i in range(3) for _rank in range(2)]
    for i in range(3):
        [run] = (tmp_path / "runs").glob(f"run{i}-*")
        info = json.loads((run / "run.json").read_text())
        assert (info["status"], info["world_size"], info["ranks_identical"]) == ("complete", 2, True)


def test_the_process_group_is_joined_once_per_process_and_a_callers_own_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import atexit

    import torch.distributed as dist

    from mixframe.kernel.engine import distributed

    joins, leaves = [], []
    real_init = dist.init_process_group
    monkeypatch.setattr(dist, "init_process_group",  # one process standing in for torchrun's group
                        lambda backend, timeout: joins.append(timeout) or real_init(backend, store=dist.HashStore(), rank=0, world_size=1))
    monkeypatch.setattr(atexit, "register", leaves.append)
    monkeypatch.setenv("MIXFRAME_DIST_TIMEOUT", "42")
    monkeypatch.setattr(distributed, "world_size", lambda: 1)
    assert distributed.join("cpu") == (0, 1) and joins == []  # one process: no group at all
    monkeypatch.setattr(distributed, "world_size", lambda: 2)  # as torchrun announces it
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    try:
        assert distributed.join("cpu") == (0, 2) and distributed.join("cpu") == (0, 2)
        assert [t.total_seconds() for t in joins] == [42.0]  # joined once, with the timeout asked for
        assert dist.is_initialized() and len(leaves) == 1  # kept for the next run, left at interpreter exit
        leaves[0]()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    joins.clear()
    leaves.clear()
    real_init("gloo", store=dist.HashStore(), rank=0, world_size=1)  # the caller's own group, joined before any run
    try:
        assert distributed.join("cpu") == (0, 2)
        assert joins == [] and leaves == []  # used as it is, and left to the caller
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(("env", "message"), [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE is 'two', not a number of processes; unset it"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE is 0; it counts processes"),
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 is set but RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not: this process was not started by torchrun"),
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost", "MASTER_PORT": "1", "MIXFRAME_DIST_TIMEOUT": "soon"},
     "MIXFRAME_DIST_TIMEOUT is 'soon'; give it a number of seconds"),
])
def test_a_stray_or_malformed_distributed_environment_is_a_message(env: dict[str, str], message: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from mixframe.cli.main import main

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "MIXFRAME_DIST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["train", str(SPIRAL), "--out", str(tmp_path / "runs"), *[a for s in SMALL_SPIRAL for a in ("--set", s)]])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_collective_that_times_out_names_the_rank_and_the_step() -> None:
    import torch.distributed as dist

    from mixframe.errors import MixframeError
    from mixframe.kernel.engine import distributed

    lost = distributed.rank_failure(dist.DistError("[gloo] Timed out waiting 60000ms for recv operation to complete"), "training",
                                    rank=1, step=17)
    assert isinstance(lost, MixframeError)
    assert str(lost).startswith("rank 1 stopped waiting for the other processes while training at step 17: [gloo] Timed out")
    assert "MIXFRAME_DIST_TIMEOUT" in str(lost)
    assert distributed.rank_failure(ValueError("Timed out"), "training", rank=0) is None  # other errors pass through
