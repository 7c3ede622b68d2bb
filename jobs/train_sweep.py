"""Spark job: train every configuration of a sweep with Horovod; record them in MLflow.

    spark-submit jobs/train_sweep.py --config conf/sweep/default.yaml [--data DIR]
        [--num-proc N] [--epochs N] [--experiment NAME] [--force] [--verbose]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.cli import EXIT_FAILED, run_job
from pipeline.config import load_sweep_config
from pipeline.spark import build_session
from pipeline.train.sweep import SweepOptions, run_sweep


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="train_sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="sweep YAML, e.g. conf/sweep/default.yaml")
    p.add_argument("--data", help="prepared dataset folder (default data/processed/<dataset>)")
    p.add_argument("--num-proc", type=int, help="Horovod ranks (default: Spark's task slots)")
    p.add_argument("--epochs", type=int, help="override training.epochs for every configuration")
    p.add_argument("--experiment", help="MLflow experiment (default: the sweep's name)")
    p.add_argument("--force", action="store_true", help="re-run configurations already done")
    p.add_argument("--verbose", action="store_true", help="Keras progress bars from rank 0")
    p.add_argument("--checkpoint-dir", type=Path,
                   help="per-epoch checkpoints (default checkpoints/<experiment>; shared storage "
                        "on a cluster)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sweep = load_sweep_config(args.config)
    data_dir = Path(args.data or Path("data/processed") / sweep.dataset)
    opts = SweepOptions(data_dir, args.num_proc, args.epochs, args.experiment, args.force,
                        args.verbose, checkpoint_dir=args.checkpoint_dir)
    spark = build_session()
    result = run_sweep(spark, sweep, opts)
    print(f"sweep {sweep.name}: {len(result.summaries)} trained, {result.skipped} skipped, "
          f"{len(result.failed)} failed; experiment {result.experiment!r}, parent run "
          f"{result.parent_run_id}", flush=True)
    for name in result.failed:
        print(f"sweep {sweep.name}: failed: {name}", file=sys.stderr, flush=True)
    return EXIT_FAILED if result.failed else 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="train_sweep"))
