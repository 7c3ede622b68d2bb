"""Job: read a sweep back from MLflow and write its leaderboard.

    spark-submit jobs/compare.py --experiment NAME [--output DIR] [--metric test_accuracy] [--all]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline import tracking
from pipeline.cli import run_job
from pipeline.report import write_report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", required=True, help="MLflow experiment (the sweep's name)")
    p.add_argument("--output", help="report folder (default reports/<experiment>)")
    p.add_argument("--metric", default="test_accuracy", help="column to rank by")
    p.add_argument("--all", action="store_true",
                   help="every run of the experiment, not only the latest sweep invocation")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    client = tracking.connect(tracking.tracking_uri())
    output = Path(args.output or Path("reports") / args.experiment)
    report = write_report(client, args.experiment, output, args.metric, args.all)
    best = report.leaderboard.iloc[0]
    print(f"compare: {len(report.leaderboard)} configurations; best {best['configuration']} "
          f"({args.metric}={best.get(args.metric, float('nan')):.4f})", flush=True)
    print(f"compare: leaderboard {report.markdown} and {report.csv}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="compare"))
