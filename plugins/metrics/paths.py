"""How decoded interpolations between pairs behave: the numbers beside the paper's Figure 13 (seed section 7.2).

:func:`path_measures` measures given pairs (docs/figure13_numbers.py uses it on all pairs of the held-out
faces); the ``paths`` metric measures ``pairs`` seeded random pairs of a split, against the training split
as the reference of real examples, so that ``mixframe evaluate``, sweeps and reports get the numbers.
Distances are root-mean-square differences per value (per pixel for images), in the data's value range.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import Tensor

from mixframe import BuildContext, Component, Metric, RunView, blend, hookimpl, param, positive
from mixframe.kernel.interfaces import Mode, check_steps, interpolation_weights


@attrs.frozen(kw_only=True)
class PathsConfig:
    pairs: int = param(100, help="seeded random pairs of the split, one decoded path each", validator=positive)
    steps: int = param(8, help="decoded points per path, ends included (at least 2)", validator=positive)
    mode: Literal["linear", "bernoulli"] = param("linear", help="how codes move: linearly, or swapping feature maps")
    split: Literal["train", "val", "test"] = param("test", help="the split the pairs come from")
    reference: int = param(5000, help="training examples the decoded midpoints and ends are compared with (0: none)")
    seed: int = param(0, help="evaluation seed: the pairs (and the Bernoulli order)")


def path_measures(run: RunView, x1: Tensor, x2: Tensor, steps: int = 8, mode: Mode = "linear", seed: int = 0,
                  reference: Tensor | None = None) -> dict[str, float]:
    """How a run's decoded interpolations between pairs behave, as means over the pairs.

    Distances are root-mean-square differences per pixel, in the data's value range.

    * ``max_step_share``: the largest of the ``steps - 1`` steps along a decoded path as a share of
      the path's length: ``1 / (steps - 1)`` when the path moves evenly, 1 when it jumps at once
      (the uneven trajectory that the consistency loss is meant to smooth, seed section 7.2).
    * ``midpoint_lean``: ``| d(m, a) - d(m, b) | / d(a, b)`` for the decoded midpoint m and the
      decoded ends a, b: 0 when m is as far from both ends, 1 when it is one of them.
    * ``midpoint_drift``: ``|f(m) - h_mid| / |f(x1) - f(x2)|``, how far the re-encoded midpoint
      lands from the mixed code it was decoded from (what the consistency loss pulls down).
    * ``midpoint_nearest`` (with ``reference``, e.g. the training examples): the distance of each
      decoded midpoint to its nearest reference example; ``end_nearest`` the same for the decoded
      ends, the level a midpoint that looks as real as a reconstruction would reach.
    """
    check_steps(steps)
    x1, x2 = _batch(run, x1.float()).cpu(), _batch(run, x2.float()).cpu()
    size = float(x1[0].numel()) ** 0.5

    def dist(a: Tensor, b: Tensor) -> Tensor:
        return (a - b).flatten(1).norm(dim=1) / size

    paths = run.interpolate(x1, x2, steps, mode, seed).float()
    moves = torch.stack([dist(paths[:, j + 1], paths[:, j]) for j in range(steps - 1)], dim=1)
    share = moves.max(dim=1).values / moves.sum(dim=1).clamp_min(1e-12)
    a, m, b = run.interpolate(x1, x2, 3, mode, seed).float().unbind(dim=1)
    lean = (dist(m, a) - dist(m, b)).abs() / dist(a, b).clamp_min(1e-12)
    h1, h2 = run.encode(x1).cpu().float(), run.encode(x2).cpu().float()
    weights = interpolation_weights(h1.shape[1], 3, mode, seed)[1]  # the middle step's (2, C)
    h_mid = blend([h1, h2], weights.expand(len(h1), -1, -1))
    drift = (run.encode(m).cpu().float() - h_mid).flatten(1).norm(dim=1) / (h1 - h2).flatten(1).norm(dim=1).clamp_min(1e-12)
    out = {"max_step_share": float(share.mean()), "midpoint_lean": float(lean.mean()), "midpoint_drift": float(drift.mean())}
    if reference is not None:
        ref = reference.float().cpu().flatten(1)

        def nearest(x: Tensor) -> float:
            exact = torch.cdist(x.flatten(1), ref, compute_mode="donot_use_mm_for_euclid_dist")  # mm rounds small distances badly
            return float((exact.min(dim=1).values / size).mean())

        out["midpoint_nearest"] = nearest(m)
        out["end_nearest"] = nearest(torch.cat([a, b]))
    return out


def _batch(run: RunView, x: Tensor) -> Tensor:
    return x[None] if x.dim() == len(run.spec.shape) else x


class PathsMetric(Metric):
    """Path measures of seeded random pairs (see :func:`path_measures`)."""

    meanings = {
        "max_step_share": "largest step of a decoded path as a share of its length; 1/(steps-1) is even, 1 is one jump; lower is smoother",
        "midpoint_lean": "how much the decoded midpoint leans to one end (0: as far from both, 1: one of them)",
        "midpoint_drift": "how far the re-encoded decoded midpoint lands from the mixed code, relative to the codes' distance",
        "midpoint_nearest": "decoded midpoint to the nearest training example (RMS per value); lower = closer to real data",
        "end_nearest": "decoded ends (reconstructions) to the nearest training example: the level a realistic midpoint reaches",
    }

    def __init__(self, config: PathsConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: RunView) -> dict[str, float]:
        cfg = self.config
        dataset = getattr(run.data, cfg.split)
        n = min(cfg.pairs, len(dataset) // 2)
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(cfg.seed))[: 2 * n].tolist()
        xs = torch.stack([dataset[i][0] for i in order])
        reference = None
        if cfg.reference:
            train = run.data.train
            reference = torch.stack([train[i][0] for i in range(min(cfg.reference, len(train)))])
        return path_measures(run, xs[0::2], xs[1::2], steps=cfg.steps, mode=cfg.mode, seed=cfg.seed, reference=reference)


@hookimpl
def mixframe_components() -> list[Component]:
    return [Component(kind="metric", name="paths", implementation=PathsMetric, config=PathsConfig, provides=(),
                      summary="decoded interpolation paths: evenness, midpoint lean and drift, midpoint distance to real data (Figure 13)")]
