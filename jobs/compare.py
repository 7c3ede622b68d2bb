"""Job: read a sweep back from MLflow and write its leaderboard.

    spark-submit jobs/compare.py --experiment NAME [--output DIR] [--metric test_accuracy] [--all]
        [--study conf/study/NAME.yaml [--quick]]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.cli import console_logging, run_job
from pipeline.config.study import load_study
from pipeline.report.writer import write_report
from pipeline.storage import report_dir
from pipeline.tracking import store, summary, view


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", required=True, help="MLflow experiment (the sweep's name)")
    p.add_argument("--output", help="report folder (default reports/<experiment>); replaced "
                                    "whole, so it must be new, empty or an earlier report")
    p.add_argument("--metric", help="metric to rank by (default: the task's primary one: "
                                     "test_accuracy, test_auc, test_micro_f1 or test_rmse)")
    p.add_argument("--all", action="store_true",
                   help="every run of the experiment, not only the latest sweep invocation")
    p.add_argument("--no-register", action="store_true",
                   help="do not register the best model as @champion")
    p.add_argument("--study", help="a study file (conf/study/<name>.yaml): its published "
                                   "figures beside the measured ones, first on the page")
    p.add_argument("--quick", action="store_true",
                   help="with --study: the sweep ran the study's quick form (the page says so)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console_logging()
    output = report_dir(args.output, args.experiment)  # before anything is read or written
    study = load_study(args.study, quick=args.quick) if args.study else None
    uri = store.tracking_uri()
    client = store.connect(uri)
    exp = client.get_experiment_by_name(args.experiment)  # None: write_report says so
    # The sweep the report reads (with --all, the whole experiment: no one parent to summarize)
    parent = store.latest_parent(client, exp.experiment_id) if exp and not args.all else None
    report = write_report(client, uri, args.experiment, output, args.metric, args.all,
                          register=not args.no_register, study=study)
    if parent is not None:
        found = summary.publish(client, parent, report, args.metric)
        print(f"compare: {found.cells} configurations, {found.runs} runs; summary on sweep run "
              f"{parent.info.run_id}", flush=True)
    else:
        print(f"compare: {len(report.leaderboard)} configurations", flush=True)
    store.mark_model_training(client, exp)
    view.save(client, exp)
    for line in report.answer:
        print(f"compare: {line}", flush=True)
    if report.champion:
        c = report.champion
        print(f"compare: champion {c.configuration} ({c.metric}={c.value:.4f}) -> {c.uri}",
              flush=True)
    print(f"compare: report {report.index.resolve()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="compare"))
