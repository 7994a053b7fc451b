"""How long the commands that neither train nor evaluate take to start, in fresh processes.

    .venv/bin/python benchmarks/startup.py [--repeats 7] [--recipe digits_amr_mixup]

Each repeat of each command is a new Python process (``python -m mixframe ...``), timed from the
outside (wall clock, process start included). The table gives the median and the range, and the
ratio of the median to a fresh ``python -c "import torch"``, measured the same way side by side:
a command below 1.0 starts without waiting for torch. The targets (issue 11, on the 2-core
machine): ``mixframe --help`` under 0.5 s and ``mixframe recipe check`` of a shipped recipe under 2 s.
``--check`` exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TARGETS = {"--help": 0.5, "recipe check": 2.0}


def commands(recipe: str) -> list[tuple[str, list[str]]]:
    mixframe = [sys.executable, "-m", "mixframe"]
    return [
        ("python (nothing)", [sys.executable, "-c", "pass"]),
        ("import torch", [sys.executable, "-c", "import torch"]),
        ("import mixframe", [sys.executable, "-c", "import mixframe"]),
        ("--help", [*mixframe, "--help"]),
        ("--version", [*mixframe, "--version"]),
        ("recipes", [*mixframe, "recipes"]),
        ("plugins", [*mixframe, "plugins"]),
        ("explain", [*mixframe, "explain", "mixer", "mixup"]),
        ("components", [*mixframe, "components"]),
        ("recipe check", [*mixframe, "recipe", "check", recipe]),
        ("recipe show", [*mixframe, "recipe", "show", recipe, "--resolved"]),
    ]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[2:])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per command (default 7)")
    parser.add_argument("--recipe", default="digits_amr_mixup", help="the recipe for check and show (default: the shipped digits_amr_mixup)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    todo = commands(args.recipe)
    for _, argv in todo:  # warm the file cache once, untimed
        timed(argv)
    samples: dict[str, list[float]] = {name: [] for name, _ in todo}
    for _ in range(args.repeats):  # interleaved, so that a busy moment of a shared machine hits every command alike
        for name, argv in todo:
            samples[name].append(timed(argv))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    torch = medians["import torch"]
    print(f"median of {args.repeats} fresh processes each ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})")
    print(f"{'command':<18} {'median s':>9} {'range s':>13} {'/ torch':>8}  target")
    missed = []
    for name, values in samples.items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = medians[name] < target
            verdict = f"< {target} s: {'met' if ok else 'MISSED'}"
            if not ok:
                missed.append(name)
        print(f"{name:<18} {medians[name]:9.3f} {min(values):6.3f}-{max(values):6.3f} {medians[name] / torch:8.2f}  {verdict}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
