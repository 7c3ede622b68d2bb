"""Successive halving's rung schedule against the full grid, side by side in one run: the default
sweep on the concurrent layout (one-rank trials, the layout it takes on one machine) trained
in full, then halved with eta 2 (the default: rungs at 1, 2, 4, 5 epochs) and eta 3 (rungs at
1, 3, 5). Each reports wall time, the segments it trained (a run's part between two rungs),
the run-epochs it trained and its best cell by the replicates' mean test accuracy.

    python -m bench.halving_rungs [--etas 2,3] [--data data/processed/mnist]
        -> bench/results/halving_rungs.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import sweeps
from bench.common import ROOT
from bench.scheduling import SWEEP, _best


def measure(spark, data_dir: str, etas: list[int], log) -> dict:
    from pipeline.config import HalvingConfig

    modes = [("full", None)] + [(f"eta{e}", HalvingConfig(enabled=True, eta=e)) for e in etas]
    out: dict = {}
    for name, halving in modes:
        fields = {"ranks_per_trial": 1} | ({"halving": halving} if halving else {})
        swept = sweeps.run(spark, SWEEP, data_dir, **fields)
        out[name] = summary(swept["wall_seconds"], swept["outcomes"])
        log(f"{name}: {out[name]['wall_seconds']:.0f}s, {out[name]['segments']} segments, "
            f"{out[name]['run_epochs']} run-epochs, best {out[name]['best_cell']}")
    out["ratios"] = ratios(out)
    return out


def summary(wall_seconds: float, outcomes: list) -> dict:
    """One schedule: its wall time, the segments it trained (each launch of a run, from one
    rung to the next) and their epochs, and its best cell."""
    trained = sum(o.epochs_run - o.resumed_from_epoch for o in outcomes)
    return {"wall_seconds": wall_seconds, "segments": len(outcomes), "run_epochs": trained,
            **_best(outcomes)}


def ratios(out: dict) -> dict:
    """Each halving schedule against the full grid."""
    full = out["full"]
    return {name: {"wall": r["wall_seconds"] / full["wall_seconds"],
                   "run_epochs": r["run_epochs"] / full["run_epochs"],
                   "same_best": r["best_cell"] == full["best_cell"]}
            for name, r in out.items() if name != "full"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT / "data" / "processed" / "mnist"))
    p.add_argument("--etas", default="2,3", help="comma-separated halving eta values")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "halving_rungs.json")
    args = p.parse_args(argv)
    from pipeline.spark import build_session

    spark = build_session()
    try:
        result = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "sweep": SWEEP,
                  **measure(spark, args.data, [int(e) for e in args.etas.split(",")],
                            lambda m: print(m, flush=True))}
    finally:
        spark.stop()
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["ratios"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
