"""Shared helpers for the built-in metrics: seeding, loading splits, and a small judge network.

Not a plugin (no entry point names it). Every metric draws its randomness from
:func:`metric_rng`, so that a metric's numbers depend only on its own evaluation ``seed`` (the same
for every run of a dataset, whatever the run's training seed), never on global random state: every
run is scored on the same pairs, subsets and judges, so methods can be compared seed for seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from mixframe import DataBundle, MixframeError, RunView


def metric_rng(seed: int) -> np.random.Generator:
    """A numpy generator determined by the metric's evaluation seed only (not the run's training seed)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF]))


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU torch generator seeded from ``rng`` (for torch-side sampling)."""
    return torch.Generator().manual_seed(int(rng.integers(0, 2**62)))


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a tensor (any device) or array-like."""
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def batches(dataset: Dataset, batch_size: int = 256) -> Iterator[tuple[Tensor, Tensor]]:
    """The dataset's ``(x, y)`` in order, batch by batch (no shuffling, no workers)."""
    yield from DataLoader(dataset, batch_size=batch_size, shuffle=False)


def load(dataset: Dataset, indices: Sequence[int] | np.ndarray | None = None, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """All of ``dataset`` (or the examples at ``indices``) as two stacked tensors ``(x, y)``."""
    subset = dataset if indices is None else Subset(dataset, [int(i) for i in indices])
    if len(subset) == 0:  # type: ignore[arg-type]
        raise MixframeError("the split to evaluate on is empty; check the dataset's split sizes")
    xs, ys = [], []
    for x, y in batches(subset, batch_size):
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def pick(n_total: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct indices of ``range(n_total)`` drawn with ``rng`` (all of them, in order, when n is None or too big)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, size=n, replace=False))


def random_pairs(n_total: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` with ``i != j`` drawn uniformly (needs at least two examples)."""
    if n_total < 2:
        raise MixframeError(f"need at least 2 test examples to form pairs, the test split has {n_total}")
    first = rng.integers(0, n_total, size=n_pairs)
    second = (first + rng.integers(1, n_total, size=n_pairs)) % n_total
    return first, second


OWN_MIX_STREAM = 7919
"""Own mixes draw their examples from a stream of their own (the evaluation seed and this), so that adding
them changed none of the numbers a metric measured before, whose draws come from ``metric_rng(seed)``."""


def own_mixes(run: RunView, examples: Dataset, n: int, seed: int) -> Tensor | None:
    """Codes mixed by the run's own trained mixer from ``n`` random groups of test examples (the second and
    later sources differ from the first), or None for a run trained without mixing.

    Why: the common measure decodes linear midpoints for every run, a mix that a Bernoulli or 3-way run never
    trained on; these are the mixes each method did train on, so a column of them says how its own mixes look.
    The mixer's random draws (alpha, masks) are seeded from the same stream, the same for every run."""
    if run.mixer is None or run.mixer.num_sources < 2:  # no mixer, or the "none" mixer: its "mixes" are reconstructions
        return None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, OWN_MIX_STREAM]))
    total = len(examples)  # type: ignore[arg-type]
    first, _ = random_pairs(total, n, rng)
    groups = [first] + [(first + rng.integers(1, total, size=n)) % total for _ in range(run.mixer.num_sources - 1)]
    loaded = [load(examples, group) for group in groups]
    codes = [run.encode(x) for x, _ in loaded]
    labels = [y for _, y in loaded] if run.mixer.uses_labels else None
    return run.mix(*codes, labels=labels, seed=int(rng.integers(0, 2**31))).codes.cpu()


def require_class_labels(data: DataBundle, metric: str) -> int:
    """The number of classes; a MixframeError when the dataset has no integer class labels."""
    if data.label_kind != "class" or not data.spec.num_classes:
        raise MixframeError(
            f"metric {metric!r} needs integer class labels, but this dataset's labels are {data.label_kind!r} "
            f"(num_classes={data.spec.num_classes}); use a dataset with class labels (for a folder of pictures in class "
            "sub-folders: train with data.labels=folders)"
        )
    return int(data.spec.num_classes)


class Judge(nn.Module):
    """A small classifier whose penultimate features serve as a learned embedding of the data.

    Images ``(C, H, W)`` go through three 3x3 convolutions (the last two with stride 2) and a global
    average pool, which works for any image size; flat data goes through a two-layer MLP.
    """

    def __init__(self, shape: tuple[int, ...], num_classes: int, width: int = 32) -> None:
        super().__init__()
        if len(shape) == 3:
            channels = shape[0]
            self.features = nn.Sequential(
                nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
                nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            )
        else:
            size = int(np.prod(shape))
            self.features = nn.Sequential(nn.Flatten(), nn.Linear(size, 4 * width), nn.ReLU(), nn.Linear(4 * width, 2 * width), nn.ReLU())
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def train_judge(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    batch_size: int = 128,
    lr: float = 1e-3,
    width: int = 32,
) -> Judge:
    """A fresh :class:`Judge` trained on ``(x, y)`` with Adam; deterministic given ``seed`` on CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Judge(tuple(x.shape[1:]), num_classes, width)
    model.to(device).train()
    order_rng = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=order_rng)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def judge(model: Judge, x: Tensor, device: torch.device, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """The judge's class probabilities and penultimate features for ``x``, on the CPU."""
    model.eval()
    probs, feats = [], []
    for start in range(0, len(x), batch_size):
        f = model.features(x[start:start + batch_size].to(device))
        probs.append(model.head(f).softmax(dim=1).cpu())
        feats.append(f.cpu())
    return torch.cat(probs), torch.cat(feats)
