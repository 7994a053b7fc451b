"""Time the engine's training step against a lean hand-written PyTorch loop doing the same work.

The variants train side by side in one process on the same fixed list of real minibatches:

* ``engine``: :meth:`mixframe.kernel.engine.Trainer.train_step`, as ``mixframe train`` runs it;
* ``hand``: the AMR mixup step written out by hand over a deep copy of the engine's modules, with
  fresh Adam optimizers of the same hyperparameters; critic-only minibatches run the forward pass
  under ``torch.no_grad`` (as the engine does); torch's default settings;
* ``hand+det``: the same under the engine's process-wide settings (deterministic algorithms on CPU),
  to separate their cost from the step's code;
* ``authors``: the same loop, but building the autoencoder's graph on every minibatch and throwing
  it away on critic-only ones (the authors' pattern), to show what skipping that graph saves.

Before timing, a few steps of each variant from identical states with the same seeds must give the
same parameters (checked with ``allclose``), so the comparison is of equal work. The variants are
then timed in alternating blocks (the order rotates each round); the table gives the median time
per minibatch and the median over rounds of the paired ratio to ``hand``, on process CPU time on
CPU (a shared machine disturbs it far less than wall time) and wall time on CUDA.

Peak memory: each variant runs again in a fresh child process (``spawn``). On CUDA it is the peak
of ``torch.cuda.max_memory_allocated`` during the steps minus what was allocated before them
(tensor bytes). On CPU it is the peak resident set size (``VmHWM``, reset through
``/proc/self/clear_refs``) during the steps minus the resident size before them: activations,
gradients, Adam state and whatever the allocator keeps, at page granularity; Linux only.

Eager against compiled: the engine's step is then timed with ``train.compile`` off and on (two
Trainers, alternating blocks after a warm-up that includes the compilation, which is timed apart),
in images per second; ``--no-compile`` skips it, ``--compile-backend`` picks torch.compile's backend.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/engine_step.py --threads 1``.
"""

from __future__ import annotations

import argparse
import copy
import math
import multiprocessing as mp
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mixframe.errors import MixframeError  # noqa: E402
from mixframe.kernel.engine import Trainer  # noqa: E402
from mixframe.kernel.model import Model  # noqa: E402
from mixframe.kernel.recipe import Recipe, TrainConfig, load_recipe, parse_override  # noqa: E402

DEFAULT_RECIPE = ROOT / "recipes" / "digits_amr_mixup.yaml"
VARIANTS = ("hand", "hand+det", "engine", "authors")
Settings = tuple[bool, bool]  # torch.use_deterministic_algorithms(mode, warn_only=...)
TORCH_DEFAULTS: Settings = (False, False)
TARGET = 1.05  # the engine may cost at most 5% more than the hand-written loop

Batch = tuple[Tensor, Tensor]
StepFn = Callable[[Tensor, Tensor], object]


class HandLoop:
    """The AMR mixup step written out by hand over a deep copy of the engine's modules.

    ``always_graph`` builds the autoencoder's forward graph on critic-only minibatches too, as the
    authors' code does; otherwise those run under ``torch.no_grad``.
    """

    def __init__(self, model: Model, cfg: TrainConfig, always_graph: bool = False) -> None:
        check_supported(model)
        self.model = copy.deepcopy(model)
        self.enc, self.dec = self.model.encoder, self.model.decoder
        critic = self.model.regularizers[0]
        self.body, self.head = critic.body, critic.head
        self.critic_params = list(critic.parameters())
        self.gan_weight = critic.config.weight
        self.rec_weight = model.recipe.reconstruction.weight
        betas = tuple(cfg.betas)
        self.ae_opt = torch.optim.Adam([*self.enc.parameters(), *self.dec.parameters()], lr=cfg.lr, betas=betas,
                                       weight_decay=cfg.weight_decay)
        self.d_opt = torch.optim.Adam(self.critic_params, lr=cfg.critic_lr or cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
        self.every, self.always_graph, self.step = cfg.update_g_every, always_graph, 0

    def critic(self, x: Tensor) -> Tensor:
        return self.head(self.body(x)).squeeze(1)

    def train_step(self, x: Tensor, y: Tensor) -> None:
        update_ae = (self.step + 1) % self.every == 0
        with torch.set_grad_enabled(update_ae or self.always_graph):
            h = self.enc(x)
            x_rec = self.dec(h)
            perm = torch.randperm(x.shape[0], device=x.device)
            alpha = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=h.dtype)
            x_mix = self.dec(alpha * h + (1 - alpha) * h[perm])
        d_real = self.critic(x)
        d_rec = self.critic(x_rec.detach())
        d_mix = self.critic(x_mix.detach())
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_rec, torch.zeros_like(d_rec))
                  + F.binary_cross_entropy_with_logits(d_mix, torch.zeros_like(d_mix)))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        if update_ae:
            for p in self.critic_params:
                p.requires_grad_(False)
            g_rec, g_mix = self.critic(x_rec), self.critic(x_mix)
            loss = (self.rec_weight * F.l1_loss(x_rec, x)
                    + self.gan_weight * F.binary_cross_entropy_with_logits(g_rec, torch.ones_like(g_rec))
                    + self.gan_weight * F.binary_cross_entropy_with_logits(g_mix, torch.ones_like(g_mix)))
            self.ae_opt.zero_grad(set_to_none=True)
            loss.backward()
            for p in self.critic_params:
                p.requires_grad_(True)
            self.ae_opt.step()
        self.step += 1


def check_supported(model: Model) -> None:
    """The hand-written loop is AMR with mixup and one BCE critic; refuse recipes it does not match."""
    recipe = model.recipe
    mixer = recipe.mixer
    regs = recipe.regularizers
    problems = []
    if mixer is None or mixer.name != "mixup" or mixer.config.per_channel or mixer.config.fold:
        problems.append("mixer must be mixup with per_channel: false and fold: false")
    if len(regs) != 1 or regs[0].name != "adversarial":
        problems.append("regularizers must be exactly one adversarial regularizer")
    else:
        cfg = regs[0].config
        if set(cfg.judge) != {"reconstruction", "mix"} or cfg.loss != "bce" or cfg.conditional != "none":
            problems.append("the adversarial regularizer must judge [reconstruction, mix] with loss: bce, conditional: none")
    if recipe.reconstruction.loss != "l1" or model.decoder.outputs_logits:
        problems.append("reconstruction.loss must be l1 with a linear decoder output")
    if recipe.train.amp:
        problems.append("train.amp must be false")
    if problems:
        raise MixframeError("benchmarks/engine_step.py writes the AMR mixup step out by hand and cannot time this recipe: "
                            + "; ".join(problems) + ". Use recipes/digits_amr_mixup.yaml or --set overrides that keep these")


def current_settings() -> Settings:
    return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()


def apply_settings(settings: Settings) -> None:
    torch.use_deterministic_algorithms(settings[0], warn_only=settings[1])


def variant_settings(engine: Settings) -> dict[str, Settings]:
    """The process-wide torch settings each variant runs under.

    The Trainer turns on deterministic algorithms on CPU (which also fills every new tensor with
    NaN); a lean loop would not, so ``hand`` and ``authors`` run with torch's defaults, and
    ``hand+det`` (the hand loop under the engine's settings) separates that cost from the step's code.
    """
    return {"hand": TORCH_DEFAULTS, "hand+det": engine, "engine": engine, "authors": TORCH_DEFAULTS}


def make_variant(name: str, trainer: Trainer, base: Model) -> StepFn:
    if name == "engine":
        return trainer.train_step
    return HandLoop(base, trainer.cfg, always_graph=name == "authors").train_step


def setup(recipe: Recipe, num_batches: int) -> tuple[Trainer, list[Batch]]:
    """A Trainer and a fixed list of real minibatches from its loader, on its device."""
    trainer = Trainer(recipe)
    trainer.model.train()
    batches: list[Batch] = []
    while len(batches) < num_batches:
        for x, y in trainer.loader:
            batches.append((x.to(trainer.device), y.to(trainer.device)))
            if len(batches) == num_batches:
                break
    return trainer, batches


def params_of(model: Model) -> list[Tensor]:
    return [p.detach() for p in [*model.encoder.parameters(), *model.decoder.parameters(), *model.regularizers[0].parameters()]]


def check_equal_work(trainer: Trainer, loops: dict[str, HandLoop], batches: Sequence[Batch], steps: int) -> float:
    """Run ``steps`` steps of every variant from identical states with the same seeds; compare weights.

    Returns the largest absolute parameter difference to the engine's (raises if not allclose).
    """
    for i in range(steps):
        x, y = batches[i % len(batches)]
        torch.manual_seed(12_345 + i)
        trainer.train_step(x, y)
        for loop in loops.values():
            torch.manual_seed(12_345 + i)
            loop.train_step(x, y)
    worst = 0.0
    ref = params_of(trainer.model)
    for name, loop in loops.items():
        mine = params_of(loop.model)
        for a, b in zip(ref, mine, strict=True):
            worst = max(worst, float((a - b).abs().max()))
            if not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
                raise AssertionError(f"the {name} loop and the engine disagree after {steps} steps "
                                     f"(max |diff| {float((a - b).abs().max()):.3g}): they do not do the same work")
    return worst


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variants(fns: dict[str, StepFn], settings: dict[str, Settings], batches: Sequence[Batch], device: torch.device,
                  block: int, rounds: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per minibatch of each variant on both clocks ("cpu": process CPU time, "wall"), one value per round.

    The order of the variants rotates every round, so none always runs first or last.
    """
    counters = dict.fromkeys(fns, 0)

    def run(name: str, n: int) -> tuple[float, float]:
        fn, k = fns[name], counters[name]
        apply_settings(settings[name])
        sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(k, k + n):
            x, y = batches[i % len(batches)]
            fn(x, y)
        sync(device)
        counters[name] = k + n
        return (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n

    for name in fns:
        run(name, warmup)
    names = list(fns)
    times: dict[str, dict[str, list[float]]] = {name: {"cpu": [], "wall": []} for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            cpu, wall = run(name, block)
            times[name]["cpu"].append(cpu)
            times[name]["wall"].append(wall)
    return times


def op_differences(fns: dict[str, StepFn], settings: dict[str, Settings], batches: Sequence[Batch], steps: int) -> str:
    """The aten ops (and autograd nodes) the engine calls more or less often than the hand loop, per minibatch.

    Both run under the engine's settings, so only the step's own code differs.
    """
    from torch.profiler import profile

    hand = "hand+det" if "hand+det" in fns else "hand"
    apply_settings(settings["engine"])
    counts = {}
    for name in ("engine", hand):
        with profile() as prof:
            for i in range(steps):
                fns[name](*batches[i % len(batches)])
        counts[name] = {e.key: e.count for e in prof.key_averages()}
    keys = sorted(set(counts["engine"]) | set(counts[hand]))
    lines = [f"  {k:<50} engine {counts['engine'].get(k, 0) / steps:6.1f}  {hand} {counts[hand].get(k, 0) / steps:6.1f}"
             for k in keys if counts["engine"].get(k, 0) != counts[hand].get(k, 0)]
    return f"ops per minibatch that differ (over {steps} minibatch(es)):\n" + ("\n".join(lines) or "  (none)")


# -- peak memory, in fresh child processes ---------------------------------------------------------
def _vm(field: str) -> int:
    """A field of /proc/self/status in bytes."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024  # type: ignore[union-attr]


def measure_memory(recipe_path: str, overrides: list[str], variant: str, threads: int, steps: int) -> float | None:
    """Peak extra memory (bytes) of ``steps`` steps of one variant, in this (fresh) process; None if unmeasurable."""
    torch.set_num_threads(threads)
    trainer, batches = setup(load_recipe(recipe_path, overrides), 8)
    fn = make_variant(variant, trainer, trainer.model)
    apply_settings(variant_settings(current_settings())[variant])
    device = trainer.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
            before = _vm("VmRSS")
        except OSError:
            return None
    for i in range(steps):
        x, y = batches[i % len(batches)]
        fn(x, y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - before)
    return float(_vm("VmHWM") - before)


def memory_in_child(recipe_path: str, overrides: list[str], variant: str, threads: int, steps: int) -> float | None:
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(measure_memory, (recipe_path, overrides, variant, threads, steps))


# -- the report --------------------------------------------------------------------------------------
def every_values(args: argparse.Namespace) -> list[int]:
    if args.every:
        return args.every
    for text in args.set:
        keys, value = parse_override(text)
        if keys == ["train", "update_g_every"]:
            return [int(value)]
    return [1, 5]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="an AMR mixup recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override, as for mixframe train")
    p.add_argument("--every", type=int, nargs="+", help="update_g_every values to time (default: the one --set gives, else 1 5)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (pin it: a shared machine varies several-fold)")
    p.add_argument("--rounds", type=int, default=10, help="alternating timing rounds")
    p.add_argument("--block", type=int, default=5, help="minibatches per variant per round (rounded up to a multiple of update_g_every)")
    p.add_argument("--warmup", type=int, default=5, help="untimed minibatches per variant first")
    p.add_argument("--batches", type=int, default=16, help="size of the fixed list of real minibatches (cycled)")
    p.add_argument("--memory-steps", type=int, default=5, help="minibatches per child process for peak memory (0: skip memory)")
    p.add_argument("--wall", action="store_true", help="rate by wall-clock time on CPU too (default there: process CPU time)")
    p.add_argument("--ops", action="store_true", help="also list the aten ops whose call counts per step differ from the hand loop's")
    p.add_argument("--check", action="store_true", help="exit with status 1 when the engine costs more than 5%% over the hand loop")
    p.add_argument("--no-compile", action="store_true", help="skip the eager / compiled comparison")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend of the compiled engine")
    p.add_argument("--compile-rounds", type=int, default=5, help="alternating timing rounds of eager and compiled")
    return p.parse_args(argv)


def fmt_mem(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    worst_ratio = 0.0
    for every in every_values(args):
        overrides = [*args.set, f"train.update_g_every={every}"]
        recipe = load_recipe(args.recipe, overrides)
        trainer, batches = setup(recipe, args.batches)
        device = trainer.device
        settings = variant_settings(current_settings())
        names = [n for n in VARIANTS if n != "hand+det" or settings["hand+det"] != settings["hand"]]
        loops = {name: HandLoop(trainer.model, trainer.cfg, always_graph=name == "authors") for name in names if name != "engine"}
        diff = check_equal_work(trainer, loops, batches, max(every, 2))
        print(f"update_g_every={every}: the engine and the hand-written loops agree after {max(every, 2)} steps "
              f"(max |param diff| {diff:.2g}); timing on {device}, {torch.get_num_threads()} thread(s)", flush=True)
        fns: dict[str, StepFn] = {name: trainer.train_step if name == "engine" else loops[name].train_step for name in names}
        block = math.ceil(args.block / every) * every
        warmup = math.ceil(args.warmup / every) * every
        clock = "wall" if args.wall or device.type == "cuda" else "cpu"
        times = time_variants(fns, settings, batches, device, block, args.rounds, warmup)
        if args.ops:
            print(op_differences(fns, settings, batches, every), flush=True)
        for name in names:
            ratios = [t / h for t, h in zip(times[name][clock], times["hand"][clock])]
            measure = args.memory_steps and name != "hand+det"  # its memory is the hand loop's
            mem = memory_in_child(args.recipe, overrides, name, args.threads, max(args.memory_steps, every)) if measure else None
            rows.append((every, name, statistics.median(times[name]["cpu"]), statistics.median(times[name]["wall"]),
                         statistics.median(ratios), min(ratios), max(ratios), mem))
            if name == "engine":
                worst_ratio = max(worst_ratio, statistics.median(ratios))

    print(f"\n{args.recipe}  overrides: {' '.join(args.set) or '(none)'}")
    print(f"device {device}, torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds of {args.block}+ minibatches "
          f"per variant, alternating. ratio: median over rounds of (variant / hand) in the same round, on {clock} time")
    head = (f"{'g_every':>7}  {'variant':<8}  {'cpu ms':>8}  {'wall ms':>8}  {'img/s':>7}  {'ratio':>6}  {'ratio range':>13}"
            f"  {'peak MiB':>8}")
    print(head)
    print("-" * len(head))
    batch = load_recipe(args.recipe, args.set).train.batch_size
    for every, name, cpu, wall, ratio, lo, hi, mem in rows:
        print(f"{every:>7}  {name:<8}  {cpu * 1e3:>8.2f}  {wall * 1e3:>8.2f}  {batch / wall:>7.0f}  {ratio:>6.3f}  {lo:>6.3f}-{hi:<6.3f}"
              f"  {fmt_mem(mem):>8}")
    print("ms: median per minibatch (cpu = CPU time of this process, all threads; wall = elapsed, after a device sync on CUDA); "
          "img/s: training images per second of wall time")
    print(f"peak MiB: {'CUDA tensor bytes' if device.type == 'cuda' else 'resident memory (VmHWM - VmRSS)'} above the level "
          "before the first step, in a fresh process per variant")
    verdict = "within" if worst_ratio <= TARGET else "OVER"
    print(f"engine / hand, worst over update_g_every: {worst_ratio:.3f} ({verdict} the {TARGET:.2f} target)")
    if not args.no_compile:
        compare_compiled(args)
    return 1 if args.check and worst_ratio > TARGET else 0


def compare_compiled(args: argparse.Namespace) -> None:
    """Images per second of the engine's step, eager and under torch.compile, per update_g_every; compile time apart."""
    print(f"\neager / compiled engine (train.compile, backend {args.compile_backend}): {args.compile_rounds} alternating rounds")
    print(f"{'g_every':>7}  {'variant':<8}  {'wall ms':>8}  {'img/s':>7}  {'warm-up s':>9}")
    for every in every_values(args):
        fns, batches, warm = {}, None, {}
        for compiled in (False, True):
            overrides = [*args.set, f"train.update_g_every={every}", f"train.compile={str(compiled).lower()}",
                         f"train.compile_backend={args.compile_backend}"]
            trainer, batches = setup(load_recipe(args.recipe, overrides), args.batches)
            name = "compiled" if compiled else "eager"
            fns[name] = trainer.train_step
            # the first steps compile (a critic-only and an autoencoder graph, with and without gradients): timed apart
            device = trainer.device
            sync(device)
            start = time.perf_counter()
            for i in range(2 * max(every, 2)):
                fns[name](*batches[i % len(batches)])
            sync(device)
            warm[name] = time.perf_counter() - start
        settings = dict.fromkeys(fns, current_settings())
        block = math.ceil(args.block / every) * every
        times = time_variants(fns, settings, batches, device, block, args.compile_rounds, every)
        batch = batches[0][0].shape[0]
        for name in fns:
            wall = statistics.median(times[name]["wall"])
            print(f"{every:>7}  {name:<8}  {wall * 1e3:>8.2f}  {batch / wall:>7.0f}  {warm[name]:>9.1f}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MixframeError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
