"""Spark job: a larger training set of randomly distorted copies of a prepared one.

    spark-submit jobs/augment.py --config conf/augment/mnist_x10.yaml [--copies N] [--force]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pipeline.cli import console_logging, run_job
from pipeline.config import load_augment_config
from pipeline.data.augment import augment
from pipeline.spark import build_session


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="augment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="augment YAML, e.g. conf/augment/mnist_x10.yaml")
    p.add_argument("--input", help="prepared dataset folder (overrides input)")
    p.add_argument("--output", help="parent folder of the new dataset (overrides output)")
    p.add_argument("--copies", type=int, help="distorted copies per image (overrides copies)")
    p.add_argument("--force", action="store_true", help="rewrite even if up to date")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console_logging()
    cfg = load_augment_config(args.config)
    overrides = {k: v for k, v in (("input", args.input), ("output", args.output),
                                   ("copies", args.copies)) if v is not None}
    cfg = replace(cfg, **overrides)
    spark = build_session()
    manifest, written = augment(spark, cfg, force=args.force)
    print(f"augment: {manifest.summary(Path(cfg.output) / cfg.name, written)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="augment"))
