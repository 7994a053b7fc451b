"""How long ``mixframe.load_run`` takes beyond ``import torch``, in fresh processes (the issue's target: under 1 s).

    .venv/bin/python benchmarks/load_run.py [RUN_DIR] [--repeats 5]

Without RUN_DIR it trains a tiny digits run into a temporary folder first. Each repeat is a new
Python process that times ``import torch``, then ``import mixframe``, then ``mixframe.load_run``;
the table gives the median of each and the ratio of (mixframe import + load) to the torch import.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import json, sys, time
t0 = time.perf_counter(); import torch
t1 = time.perf_counter(); import mixframe
t2 = time.perf_counter(); run = mixframe.load_run(sys.argv[1])
t3 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "mixframe": t2 - t1, "load_run": t3 - t2}))
"""


def tiny_run(out: Path) -> Path:
    import mixframe

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "digits_amr_mixup.yaml"
    return mixframe.train(recipe, ["train.epochs=1", "train.max_steps=2"], out=out, progress=False).dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or tiny_run(Path(tmp))
        samples = [json.loads(subprocess.run([sys.executable, "-c", PROBE, str(run_dir)], capture_output=True, text=True,
                                             check=True).stdout) for _ in range(args.repeats)]
    medians = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    for name, seconds in medians.items():
        print(f"{name:<10} {seconds:6.3f} s   (median of {args.repeats} fresh processes)")
    beyond = medians["mixframe"] + medians["load_run"]
    print(f"beyond import torch: {beyond:.3f} s; ratio to import torch: {beyond / medians['torch']:.2f}")


if __name__ == "__main__":
    main()
