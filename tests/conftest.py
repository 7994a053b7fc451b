"""Shared test set-up: one thread per process (the CI machine has two cores)."""

import torch

torch.set_num_threads(1)
