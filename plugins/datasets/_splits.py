"""Helpers shared by the generated datasets: seeded generators and fixed train/val/test splits.

Generated datasets draw all ``n_train + n_val + n_test`` examples at once from one generator seeded
by the config's ``seed`` and cut them in that order, so the same config always gives the same
splits.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset


def seeded(seed: int) -> torch.Generator:
    """A CPU generator fixed by ``seed``: the only source of randomness of a dataset."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def split_tensors(x: Tensor, y: Tensor, sizes: tuple[int, int, int]) -> tuple[Dataset, Dataset, Dataset]:
    """Consecutive train/val/test TensorDatasets of the given sizes."""
    a, b = sizes[0], sizes[0] + sizes[1]
    return TensorDataset(x[:a], y[:a]), TensorDataset(x[a:b], y[a:b]), TensorDataset(x[b:], y[b:])
