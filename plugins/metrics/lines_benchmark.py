"""ACAI's synthetic lines benchmark (Berthelot et al., 2019): are latent interpolations realistic and smooth?

Each example of the ``lines`` dataset is an image of a line from the centre at some angle. For
``n_pairs`` random pairs of test images, the codes are interpolated linearly in ``steps`` steps
(both ends included: t = 0, 1/(steps-1), ..., 1), and the interpolants are decoded. The dataset's
generator answers ``angle_of(images) -> (angles, distances)``: the angle (radians) of the nearest
true line and the distance to it, as the dataset defines it (mixframe's ``lines``: root-mean-square
pixel difference to the nearest of a fine grid of rendered lines; ACAI used the cosine distance).

- ``lines_distance``: the mean distance of every interpolant to its nearest true line (0 is ideal).
- ``lines_smoothness``, ACAI's definition: along one path, with the recovered angles unwrapped
  (so that no step jumps by more than half a period), the largest absolute change of angle between
  consecutive interpolants divided by the total change between the ends, minus its ideal value
  ``1 / (steps - 1)``. 0 is ideal (evenly spaced angles, monotone path); a path that stays on one
  line and jumps to the other at once scores ``1 - 1 / (steps - 1)``; a path that overshoots and
  comes back scores more than that. It is undefined for a path whose ends have (nearly) the same
  angle; such paths are left out of the mean (ACAI counted them as 0, rewarding a decoder that
  ignores its code), and their fraction is reported as ``lines_smoothness_undefined``.
- ``pixel_lines_*``: the same numbers for the no-learning reference, the same pairs faded in pixel space
  with the same steps, so that every run's table has the row a learned interpolation must beat.
- ``own_mix_lines_distance``, only for a run with a mixer of two or more sources: the mean distance to
  the nearest true line of the same pairs' codes mixed once by the run's own mixer (``run.mix``, its
  random draws seeded by the metric's seed) and decoded; a k-source mixer gets each pair plus k - 2
  further test examples drawn with the metric's seed. It scores a method on the mixes it trained on.

Why a column of its own rather than the benchmark redone with the run's mixer: the benchmark measures
a sweep of positions t = 0 ... 1 along each pair, ends included, and its smoothness needs that ordered
sweep; a mixer draws one mix per pair at a position of its own choosing (mixup's random alpha, a
Bernoulli mask), so it makes no path, and its single mixes are not the sweep ``lines_distance``
averages over (whose ends are reconstructions). Hence the distance only, under a name of its own.

The angle period is the generator's ``angle_period`` if it has one, else 2 pi (a line from the
centre, as in ACAI).
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from mixframe import BuildContext, Component, KnowsLineAngles, Metric, MixframeError, RunView, hookimpl, in_range, param, positive
from mixframe_plugins.metrics._nets import load, metric_rng, random_pairs, to_numpy

MIN_TOTAL_CHANGE = 1e-4


def smoothness(angles: np.ndarray, period: float = 2 * np.pi) -> np.ndarray:
    """ACAI's smoothness of each path of recovered angles ``(paths, steps)``: 0 is ideal, NaN when undefined."""
    angles = np.atleast_2d(np.asarray(angles, dtype=np.float64))
    unwrapped = np.unwrap(angles, axis=1, period=period)
    largest = np.abs(np.diff(unwrapped, axis=1)).max(axis=1)
    total = np.abs(unwrapped[:, -1] - unwrapped[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        score = largest / total - 1.0 / (angles.shape[1] - 1)
    return np.where(total < MIN_TOTAL_CHANGE, np.nan, score)


def interpolate(h1: torch.Tensor, h2: torch.Tensor, steps: int) -> torch.Tensor:
    """Codes ``(pairs * steps, *code_shape)``: for each pair, ``(1 - t) h1 + t h2`` at ``steps`` evenly spaced t in [0, 1]."""
    t = torch.linspace(0.0, 1.0, steps, dtype=h1.dtype).view(1, steps, *([1] * (h1.dim() - 1)))
    path = (1 - t) * h1.unsqueeze(1) + t * h2.unsqueeze(1)
    return path.reshape(-1, *h1.shape[1:])


def lines_scores(angles: np.ndarray, distances: np.ndarray, period: float = 2 * np.pi) -> dict[str, float]:
    """The benchmark's numbers from the recovered angles and distances of every interpolant, ``(paths, steps)`` each."""
    scores = smoothness(angles, period)
    defined = ~np.isnan(scores)
    return {
        "lines_distance": float(np.mean(distances)),
        "lines_smoothness": float(scores[defined].mean()) if defined.any() else float("nan"),
        "lines_smoothness_undefined": float(1.0 - defined.mean()),
    }


@attrs.frozen(kw_only=True)
class LinesConfig:
    n_pairs: int = param(64, validator=positive, help="random pairs of test images interpolated")
    steps: int = param(16, validator=in_range(3, None), help="interpolants per path, both ends included (ACAI: 16)")
    seed: int = param(0, help="evaluation seed, the same for every run (not the run's seed), to draw the pairs and seed the run's mixer")


class LinesMetric(Metric):
    """Distance to the data and smoothness of latent interpolations on the lines dataset."""
    directions = {"lines_distance": "min", "lines_smoothness": "min", "own_mix_lines_distance": "min"}
    references = {"lines_distance": "pixel_lines_distance", "lines_smoothness": "pixel_lines_smoothness"}
    meanings = {
        "lines_distance": "mean distance of each decoded linear interpolant of two test codes (the whole sweep, ends included) to its "
                          "nearest true line image (ACAI's realism); lower is better, 0 ideal",
        "lines_smoothness": "ACAI's smoothness: largest angle step along a path over its total change, minus the even step 1/(steps-1); "
                            "lower is better, 0 ideal",
        "lines_smoothness_undefined": "fraction of paths whose two ends have nearly the same angle, left out of lines_smoothness",
        "pixel_lines_distance": "the no-learning reference: lines_distance of the same pairs faded in pixel space",
        "pixel_lines_smoothness": "the no-learning reference: lines_smoothness of the same pairs faded in pixel space",
        "pixel_lines_smoothness_undefined": "the no-learning reference: lines_smoothness_undefined of the pixel fades",
        "own_mix_lines_distance": "mean distance to the nearest true line of the same pairs mixed once by the run's own mixer (its draws "
                                  "seeded by the metric's seed) and decoded; only for runs whose mixer mixes two or more codes; lower is better, 0 ideal",
    }

    def __init__(self, config: LinesConfig, context: BuildContext) -> None:
        self.config = config

    def evaluate(self, run: RunView, split: str = "test") -> dict[str, float]:
        generator = run.data.generator
        if not isinstance(generator, KnowsLineAngles):
            raise MixframeError("metric 'lines' needs the 'lines' dataset (its generator's angle_of finds the nearest true line); "
                                "it does not apply to other datasets")
        cfg = self.config
        rng = metric_rng(cfg.seed)
        examples = getattr(run.data, split)
        first, second = random_pairs(len(examples), cfg.n_pairs, rng)
        x1, y1 = load(examples, first)
        x2, y2 = load(examples, second)
        shape = (cfg.n_pairs, cfg.steps)
        period = float(generator.angle_period)

        def scores(images: torch.Tensor) -> dict[str, float]:
            angles, distances = generator.angle_of(images)
            return lines_scores(to_numpy(angles).reshape(shape), to_numpy(distances).reshape(shape), period)

        h1, h2 = run.encode(x1).cpu(), run.encode(x2).cpu()
        learned = scores(run.decode(interpolate(h1, h2, cfg.steps)).cpu())
        faded = scores(interpolate(x1.float(), x2.float(), cfg.steps))
        out = learned | {f"pixel_{key}": value for key, value in faded.items()}
        mixer = run.mixer
        if mixer is not None and mixer.num_sources > 1:  # a one-source mixer ("none") makes no mixes, only reconstructions
            codes, labels = [h1, h2], [y1, y2]
            for _ in range(mixer.num_sources - 2):
                xk, yk = load(examples, rng.integers(0, len(examples), size=cfg.n_pairs))
                codes.append(run.encode(xk).cpu())
                labels.append(yk)
            mixed = run.mix(*codes, labels=[y.to(run.device) for y in labels] if mixer.uses_labels else None, seed=cfg.seed)
            _, distances = generator.angle_of(run.decode(mixed.codes).cpu())
            out["own_mix_lines_distance"] = float(np.mean(to_numpy(distances)))
        return out


@hookimpl
def mixframe_components() -> list[Component]:
    from mixframe.kernel.registry_types import Requires

    requires = (Requires("line_angles", "it measures decoded interpolants against the nearest true line"),)
    return [Component(kind="metric", name="lines", implementation=LinesMetric, config=LinesConfig,
                      requires=requires, provides=(),
                      summary="ACAI lines benchmark: distance of decoded interpolants to the nearest true line, and angle smoothness")]
