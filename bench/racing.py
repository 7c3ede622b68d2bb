"""Racing against the fixed budget, side by side on one grid: the same sweep file run twice
through spark-submit, as a user runs it, once with every cell at the file's ``repeats``
(``--no-racing``) and once racing (``--racing``: ``racing.initial`` replicates a cell, then one
more per round to the cells still undecided, within ``racing.budget_runs``). Each is reported
as its runs, wall time and the report's verdicts (best cell, cells tied with it, cells still
undecided), read from the leaderboard the compare job writes.

    python -m bench.racing [--sweep conf/sweep/default.yaml] [--epochs N]
        -> bench/results/racing.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT

SUBMIT = str(Path(sys.executable).parent / "spark-submit")


def run_mode(sweep: str, data: str, racing: bool, epochs: int | None, work: Path) -> dict:
    """One sweep and its report: runs, wall time and verdicts."""
    experiment = "racing" if racing else "fixed"
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable,
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    command = [SUBMIT, "--properties-file", "conf/spark/local.conf", "jobs/train_sweep.py",
               "--config", sweep, "--data", data, "--experiment", experiment,
               "--checkpoint-dir", str(work / f"ckpt-{experiment}"),
               "--racing" if racing else "--no-racing",
               *(["--epochs", str(epochs)] if epochs else [])]
    started = time.perf_counter()
    _run(command, env, work / f"{experiment}.log")
    wall = time.perf_counter() - started
    report = work / f"report-{experiment}"
    _run([SUBMIT, "--properties-file", "conf/spark/local.conf", "jobs/compare.py",
          "--experiment", experiment, "--output", str(report)], env,
         work / f"compare-{experiment}.log")
    return {"wall_seconds": wall, **verdicts(report)}


def verdicts(report: Path) -> dict:
    """The leaderboard's answer: runs, the best cell and the cells per verdict."""
    with (report / "leaderboard.csv").open() as f:
        board = list(csv.DictReader(f))
    with (report / "runs.csv").open() as f:
        runs = sum(1 for _ in csv.DictReader(f))
    by = {v: sorted(r["configuration"] for r in board if r["verdict"] == v)
          for v in ("best", "tied", "undecided", "worse")}
    best = next(r for r in board if r["verdict"] == "best")
    return {"runs": runs, "best_cell": best["configuration"], "best_mean": float(best["mean"]),
            "cells": {v: len(c) for v, c in by.items()}, "by_verdict": by,
            "replicates": {r["configuration"]: int(float(r["n_finished"])) for r in board}}


def _run(command: list[str], env: dict, log: Path) -> None:
    with log.open("w") as out:
        proc = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                              check=False, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:6])} failed (exit {proc.returncode}); see {log}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", default="conf/sweep/default.yaml")
    p.add_argument("--data", default="data/processed/mnist")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "racing.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-racing-") as tmp:
        work = Path(tmp)
        result = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "sweep": args.sweep,
                  "epochs": args.epochs}
        for racing in (False, True):
            name = "racing" if racing else "fixed"
            result[name] = run_mode(args.sweep, args.data, racing, args.epochs, work)
            print(f"{name}: {result[name]['runs']} runs, {result[name]['wall_seconds']:.0f}s, "
                  f"best {result[name]['best_cell']}, cells {result[name]['cells']}",
                  flush=True)
    fixed, race = result["fixed"], result["racing"]
    result["ratios"] = {"runs": race["runs"] / fixed["runs"],
                        "wall": race["wall_seconds"] / fixed["wall_seconds"],
                        "same_best": race["best_cell"] == fixed["best_cell"]}
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["ratios"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
