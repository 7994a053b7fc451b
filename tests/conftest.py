"""Shared test set-up: one thread per process (the CI machine has two cores), and the tiny trained runs that
several test modules read (trained once per test process: copy one before changing it)."""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "recipes" / "spiral_amr.yaml"
TINY_SPIRAL = ["data.n_train=256", "data.n_val=64", "data.n_test=64", "train.batch_size=64", "train.epochs=2", "encoder.hidden=[16, 16]",
               "decoder.hidden=[16, 16]", "discriminator.hidden=[16, 16]", "train.log_every=1", "callbacks=[]"]


@pytest.fixture(scope="session")
def spiral_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished spiral AMR run (2 epochs of 4 minibatches, a checkpoint at each, no picture callbacks)."""
    import mixframe

    out = tmp_path_factory.mktemp("shared") / "spiral"
    return mixframe.train(SPIRAL, [*TINY_SPIRAL, "train.checkpoint_every=1"], out=out, progress=False).dir


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished, not evaluated, digits AMR mixup run (1 epoch cut at 3 minibatches, the recipe's callbacks)."""
    import mixframe

    out = tmp_path_factory.mktemp("shared") / "digits"
    return mixframe.train(ROOT / "recipes" / "digits_amr_mixup.yaml", ["train.epochs=1", "train.max_steps=3"], out=out, progress=False).dir
