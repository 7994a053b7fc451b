"""Print markdown tables (mean ± std over seeds) from sweep folders, for docs/results.md.

    python docs/collect_results.py runs/results probe_acc probe_acc_10 cluster_acc midpoint_confidence mix_fid
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mixframe.evaluation import mean_spread, point_label


def main(root: Path, columns: list[str]) -> None:
    print("| sweep | point | seeds | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 3) + "|")
    for path in sorted(root.glob("sweep-*/sweep.json")):
        data = json.loads(path.read_text())
        by_point: dict[str, list[dict[str, float]]] = {}
        for rec in data["runs"]:
            by_point.setdefault(point_label(rec["point"]), []).append(rec["metrics"])
        name = Path(data["recipe"]).stem
        for label, runs in by_point.items():
            cells = []
            for col in columns:
                values = [r[col] for r in runs if col in r]
                mean, std = mean_spread(values) if values else (None, None)
                cells.append("" if mean is None else f"{mean:.3f} ± {std:.3f}")
            print(f"| {name} | {label} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
