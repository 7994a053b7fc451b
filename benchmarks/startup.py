"""How long the commands that neither train nor evaluate take to start, in fresh processes.

    .venv/bin/python benchmarks/startup.py [--repeats 7] [--recipe digits_amr_mixup]

Each repeat of each command is a new Python process (``python -m mixframe ...``), timed from the
outside (wall clock, process start included). The table gives the median and the range, and the
ratio of the median to a fresh ``python -c "import torch"``, measured the same way side by side:
a command below 1.0 starts without waiting for torch. The targets (issue 11, on the 2-core
machine): ``mixframe --help`` under 0.5 s and ``mixframe recipe check`` of a shipped recipe under 2 s;
(issue 20) with a third-party plugin installed whose component module imports torch at its top
(``--help (plugin)``: a distribution written into a temporary folder on PYTHONPATH, with a light
command module declared in ``mixframe.commands``), ``mixframe --help`` under 0.3 of ``import torch``.
``--check`` exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGETS = {"--help": 0.5, "recipe check": 2.0}
TORCH_RATIO_TARGETS = {"--help (plugin)": 0.3}

PLUGIN_COMPONENTS = """
import attrs
import torch  # at the top, as a component module may well do

from mixframe import Callback, Component, hookimpl


@attrs.frozen(kw_only=True)
class NothingConfig:
    pass


class Nothing(Callback):
    def __init__(self, config, context):
        self.device = torch.device("cpu")


@hookimpl
def mixframe_components():
    return [Component(kind="callback", name="nothing", implementation=Nothing, config=NothingConfig, summary="does nothing")]
"""

PLUGIN_COMMAND = """
from mixframe import Command


def command():
    return Command(name="bench-hello", help="a third-party command", add_arguments=lambda parser: None, run=lambda args: 0)
"""


def third_party_site(folder: Path) -> Path:
    """A third-party distribution as pip leaves it: a component module importing torch at its top, a light command."""
    (folder / "bench_plugin.py").write_text(textwrap.dedent(PLUGIN_COMPONENTS))
    (folder / "bench_plugin_cli.py").write_text(textwrap.dedent(PLUGIN_COMMAND))
    info = folder / "bench_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mixframe]\nbench_plugin = bench_plugin\n\n"
                                           "[mixframe.commands]\nbench-hello = bench_plugin_cli:command\n")
    return folder


def commands(recipe: str, site: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    mixframe = [sys.executable, "-m", "mixframe"]
    plain = {"OMP_NUM_THREADS": "1"}
    with_plugin = {**plain, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return [(name, argv, plain) for name, argv in [
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
    ]] + [("--help (plugin)", [*mixframe, "--help"], with_plugin)]


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[2:])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if "PYTHONPATH" in env and "bench-hello" not in done.stdout:
        sys.exit("--help with the third-party plugin installed does not list its command 'bench-hello'")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per command (default 7)")
    parser.add_argument("--recipe", default="digits_amr_mixup", help="the recipe for check and show (default: the shipped digits_amr_mixup)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        todo = commands(args.recipe, third_party_site(Path(folder)))
        for _, argv, env in todo:  # warm the file cache once, untimed
            timed(argv, env)
        samples: dict[str, list[float]] = {name: [] for name, _, _ in todo}
        for _ in range(args.repeats):  # interleaved, so that a busy moment of a shared machine hits every command alike
            for name, argv, env in todo:
                samples[name].append(timed(argv, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    torch = medians["import torch"]
    print(f"median of {args.repeats} fresh processes each ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})")
    print(f"{'command':<18} {'median s':>9} {'range s':>13} {'/ torch':>8}  target")
    missed = []
    for name, values in samples.items():
        target, ratio = TARGETS.get(name), TORCH_RATIO_TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = medians[name] < target
            verdict = f"< {target} s: {'met' if ok else 'MISSED'}"
        elif ratio is not None:
            ok = medians[name] / torch < ratio
            verdict = f"< {ratio} of import torch: {'met' if ok else 'MISSED'}"
        if verdict and not ok:
            missed.append(name)
        print(f"{name:<18} {medians[name]:9.3f} {min(values):6.3f}-{max(values):6.3f} {medians[name] / torch:8.2f}  {verdict}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
