"""The numbers beside Figure 13's CPU stand-in (docs/figures.md): AMR on scikit-image's faces, beta = 50 against beta = 0.

Trains recipes/faces_beta50.yaml and recipes/faces_beta0.yaml with three seeds each, one run at a
time, then measures every run's decoded interpolations between all pairs of the 16 held-out test
faces (120 pairs) with :func:`mixframe_plugins.metrics.paths.path_measures`, and prints per-seed values and
mean ± standard deviation (ddof 1) per beta as a Markdown table.

    OMP_NUM_THREADS=1 python docs/figure13_numbers.py --out runs/figure13     # trains 6 runs, one at a time (20-35 minutes on a shared 2-core machine)
    python docs/figure13_numbers.py --runs runs/figure13/*                    # measures runs trained before
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import torch

import mixframe
from mixframe_plugins.metrics.paths import path_measures

ROOT = Path(__file__).resolve().parents[1]
BETAS = (50, 0)
SEEDS = (0, 1, 2)
MEASURES = {
    "midpoint_nearest": "decoded midpoint to the nearest training face (RMS per pixel, [-1, 1] range; lower = closer to a real face)",
    "end_nearest": "decoded ends (reconstructions) to the nearest training face, for reference",
    "max_step_share": "largest step of an 8-step decoded path, as a share of its length (1/7 = 0.143 is even; 1 is one jump)",
    "midpoint_lean": "|d(m, a) - d(m, b)| / d(a, b) for the decoded midpoint m and ends a, b (0 = halfway, 1 = at one end)",
    "midpoint_drift": "|f(m) - h_mid| / |h1 - h2|: how far the re-encoded midpoint lands from its code (what beta pulls down)",
}


def train_all(out: Path) -> list[Path]:
    runs = []
    for beta in BETAS:
        for seed in SEEDS:
            run = mixframe.train(ROOT / "recipes" / f"faces_beta{beta}.yaml", [f"seed={seed}"], out=out,
                                 name=f"faces_beta{beta}_seed{seed}", progress=False)
            runs.append(run.dir)
    return runs


def measure(run_dir: Path) -> tuple[float, int, dict[str, float]]:
    """(beta, seed, measures) of one run."""
    run = mixframe.load_run(run_dir)
    beta = next(r.config.weight for r in run.recipe.regularizers if r.name == "consistency")
    test, _ = run.split("test")
    first, second = zip(*itertools.combinations(range(len(test)), 2))
    reference, _ = run.split("train")
    with torch.no_grad():
        values = path_measures(run, test[list(first)], test[list(second)], steps=8, reference=reference)
    return float(beta), run.seed, values


def table(results: list[tuple[float, int, dict[str, float]]]) -> str:
    lines = ["| measure | " + " | ".join(f"beta = {b:g}: mean ± sd (seeds {', '.join(str(s) for s in SEEDS)})" for b in BETAS) + " |",
             "|---|" + "---|" * len(BETAS)]
    for key in MEASURES:
        cells = []
        for beta in BETAS:
            rows = sorted((seed, values[key]) for b, seed, values in results if b == beta)
            numbers = [v for _, v in rows]
            if not numbers:
                cells.append("")
                continue
            spread = statistics.stdev(numbers) if len(numbers) > 1 else float("nan")
            cells.append(f"{statistics.mean(numbers):.4f} ± {spread:.4f} ({', '.join(f'{v:.4f}' for v in numbers)})")
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/figure13"), help="where to train the six runs")
    parser.add_argument("--runs", type=Path, nargs="+", help="measure these run folders instead of training")
    args = parser.parse_args()
    run_dirs = args.runs or train_all(args.out)
    results = [measure(d) for d in run_dirs]
    for beta, seed, values in results:
        print(f"beta={beta:g} seed={seed}: " + ", ".join(f"{k}={v:.4f}" for k, v in values.items()))
    print()
    print(table(results))
    print()
    for key, text in MEASURES.items():
        print(f"- `{key}`: {text}")


if __name__ == "__main__":
    main()
