"""``mixframe study FILE --out DIR``: methods tuned with the same budget on the validation split, their best settings
trained with the table's seeds and compared with the baseline on the test split (``mixframe.tools.study.study``);
``mixframe study --resume DIR`` finishes a stopped or killed study; ``mixframe study check FILE`` checks a study file;
``mixframe study list`` lists the shipped studies."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixframe import Command
from mixframe.cli.arguments import add_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="*", metavar="FILE | check FILE | list",
                        help="the study file (or a shipped study's name) to run; 'check FILE' checks it; 'list' lists the shipped studies")
    parser.add_argument("--resume", type=Path, metavar="STUDY_DIR", help="finish this study: only what did not finish runs")
    parser.add_argument("--out", type=Path, default=Path("studies"), help="folder that receives the study folder")
    parser.add_argument("--launcher", metavar="NAME", help="how runs are started: local (default), ray, slurm")
    parser.add_argument("--launcher-set", dest="launcher_options", action="append", default=[], metavar="KEY=VALUE",
                        help="a launcher option, parsed as YAML (repeatable; mixframe explain launcher NAME lists them)")
    parser.add_argument("--jobs", type=int, metavar="N", help="runs at once (the same as --launcher-set jobs=N)")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: SQLite in the study folder), e.g. postgresql://...")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    add_overrides(parser)


def run(args: argparse.Namespace) -> int:
    from mixframe import MixframeError
    from mixframe.tools import study as studies

    options = [*args.launcher_options, *([f"jobs={args.jobs}"] if args.jobs is not None else [])]
    words = list(args.words)
    if words[:1] == ["list"] and len(words) == 1:
        print(studies.format_studies())
        return 0
    if words[:1] == ["check"]:
        if len(words) != 2:
            raise MixframeError("write: mixframe study check FILE")
        plan = studies.check_study(words[1], args.overrides)
        print(f"{plan.source}: ok; {len(plan.methods)} methods, metric {plan.spec.metric} ({plan.direction}), baseline {plan.spec.baseline}")
        for method in plan.methods.values():
            skipped = "; skipped: " + ", ".join(f"{k} ({why})" for k, why in method.skipped.items()) if method.skipped else ""
            print(f"  {method.name}: {method.recipe}; tuned: {', '.join(method.space) or 'nothing'}{skipped}")
        return 0
    if args.resume is not None:
        if words or args.overrides or args.storage:
            raise MixframeError("--resume continues the study as it was planned; drop the study file, --set and --storage")
        folder = studies.resume_study(args.resume, launcher=args.launcher, launcher_options=options, progress=not args.quiet)
    else:
        if len(words) != 1:
            raise MixframeError("name one study file (mixframe study FILE --out DIR), or --resume STUDY_DIR, check FILE, list")
        folder = studies.study(words[0], out=args.out, overrides=args.overrides, launcher=args.launcher, launcher_options=options,
                               storage=args.storage, progress=not args.quiet)
    print()
    print((folder / studies.TABLE_FILE).read_text(), end="")
    print(f"\nstudy folder: {folder} (table.md, study.json; mixframe results {folder})")
    return 0


def command() -> Command:
    return Command(name="study", help="tune methods with the same budget, train their best with the table's seeds, compare with statistics",
                   add_arguments=add_arguments, run=run)
