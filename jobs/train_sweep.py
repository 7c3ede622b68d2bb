"""Spark job: train every configuration of a sweep with Horovod; record them in MLflow.

    spark-submit jobs/train_sweep.py --config conf/sweep/default.yaml [--data DIR]
        [--num-proc N] [--ranks-per-trial N] [--halving | --racing] [--epochs N] [--repeats K]
        [--experiment NAME] [--force] [--verbose]
        [--checkpoint-dir DIR] [--spool-dir DIR] [--replay-spool] [--check]

Exit status: 0 all done; 1 configurations failed; 2 bad input or MLflow unreachable at the
start; 3 everything trained but some records could not reach MLflow and wait in the spool
(the next invocation, or --replay-spool, delivers them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli import EXIT_FAILED, EXIT_SPOOLED, console_logging, run_job
from pipeline.config import SweepConfig, load_sweep_config
from pipeline.config.resolve import Overrides, resolve
from pipeline.train.driver.plan import check_heads_before_session

if TYPE_CHECKING:
    from pipeline.train.driver.sweep import SweepResult


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="train_sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="sweep YAML, e.g. conf/sweep/default.yaml")
    p.add_argument("--data", help="prepared dataset folder (default data/processed/<dataset>)")
    p.add_argument("--num-proc", type=int, help="Horovod ranks (default: Spark's task slots)")
    p.add_argument("--ranks-per-trial", type=int,
                   help="ranks of each trial's Horovod job; the ranks hold num-proc // N trials "
                        "at once (default: the sweep's ranks_per_trial, else chosen from the "
                        "resources: one-rank trials side by side on one machine, every rank on "
                        "each trial on a cluster; the sweep's first line says which and why)")
    p.add_argument("--halving", action=argparse.BooleanOptionalAction, default=None,
                   help="successive halving: train every configuration to a rung, keep the best "
                        "1/eta, resume those (default: the sweep's halving.enabled)")
    p.add_argument("--racing", action=argparse.BooleanOptionalAction, default=None,
                   help="adaptive replicates: racing.initial per configuration, then one more "
                        "per round to those still undecided, up to racing.max_replicates "
                        "(default: the sweep's racing.enabled; not with --halving)")
    p.add_argument("--epochs", type=int, help="override training.epochs for every configuration")
    p.add_argument("--repeats", type=int,
                   help="replicates (seeds) per configuration (default: the sweep's repeats)")
    p.add_argument("--experiment", help="MLflow experiment (default: the sweep's name)")
    p.add_argument("--force", action="store_true", help="re-run configurations already done")
    p.add_argument("--verbose", action="store_true", help="Keras progress bars from rank 0")
    p.add_argument("--checkpoint-dir", type=Path,
                   help="per-epoch checkpoints (default checkpoints/<experiment>; shared storage "
                        "on a cluster)")
    p.add_argument("--spool-dir", type=Path, default=Path("spool"),
                   help="records MLflow could not take, <dir>/<experiment>/<run_id>.jsonl "
                        "(default spool)")
    p.add_argument("--check", action="store_true",
                   help="only check the sweep file's names (and its heads against the dataset's "
                        "manifest when there is one), then exit: no Spark, MLflow or Horovod")
    p.add_argument("--replay-spool", action="store_true",
                   help="only deliver the spooled records to MLflow, then exit (no training)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console_logging()
    sweep = load_sweep_config(args.config)  # every name checked: no session for a typo
    if args.replay_spool:
        return replay_only(sweep, args)
    # The command line merged and every range checked, before any JVM starts.
    resolve(sweep, Overrides(epochs=args.epochs, repeats=args.repeats, num_proc=args.num_proc,
                             ranks_per_trial=args.ranks_per_trial, halving=args.halving,
                             racing=args.racing))
    data_dir = Path(args.data or Path("data/processed") / sweep.dataset)
    check_heads_before_session(sweep, args.config, data_dir)
    if args.check:
        print(f"{args.config}: every name known", flush=True)
        return 0
    # Spark, MLflow and Horovod take seconds to import: only once the input is known good,
    # so a typo is refused at once.
    from pipeline.spark import build_session
    from pipeline.train.driver.sweep import SweepOptions, run_sweep

    opts = SweepOptions(data_dir, num_proc=args.num_proc, ranks_per_trial=args.ranks_per_trial,
                        halving=args.halving, racing=args.racing, epochs=args.epochs,
                        repeats=args.repeats, experiment=args.experiment, force=args.force,
                        verbose=args.verbose, checkpoint_dir=args.checkpoint_dir,
                        spool_dir=args.spool_dir)
    spark = build_session()
    result = run_sweep(spark, sweep, opts)
    return report(sweep, result)


def report(sweep: SweepConfig, result: SweepResult) -> int:
    """The summary line, one line per configuration or run needing attention, the status."""
    from pipeline.tracking import store
    from pipeline.tracking.vocab import PAUSED

    trained = [o for o in result.outcomes if o.status != PAUSED]
    pruned = f", {len(result.pruned)} pruned" if result.rungs else ""
    print(f"sweep {sweep.name}: {len(trained)} trained{pruned}, {result.skipped} skipped, "
          f"{len(result.elsewhere)} left to other sweeps, {len(result.failed)} failed; "
          f"experiment {result.experiment!r}, parent run {result.parent_run_id}", flush=True)
    print(f"sweep {sweep.name}: MLflow UI (make ui): "
          f"{store.experiment_link('http://127.0.0.1:5000', result.experiment_id)}", flush=True)
    for name, reason in result.elsewhere:
        print(f"sweep {sweep.name}: not run here: {name}: {reason}", flush=True)
    for name in result.failed:
        why = result.unstarted.get(name, "")
        print(f"sweep {sweep.name}: failed: {name}{': ' + why if why else ''}",
              file=sys.stderr, flush=True)
    for path in result.spooled:
        print(f"sweep {sweep.name}: MLflow did not take every record; spooled in {path} "
              f"(delivered by the next run of this sweep, or --replay-spool)",
              file=sys.stderr, flush=True)
    if result.failed:
        return EXIT_FAILED
    return EXIT_SPOOLED if result.spooled else 0


def replay_only(sweep: SweepConfig, args: argparse.Namespace) -> int:
    """--replay-spool: deliver the experiment's spool; 3 if anything is still left in it."""
    from pipeline.tracking import spool, store
    from pipeline.train.driver.sweep import replay_spool

    uri = store.tracking_uri()
    client = store.connect(uri)
    experiment = args.experiment or sweep.name
    retry = spool.Retry(sweep.tracking.retries, sweep.tracking.backoff_seconds)
    folder = (args.spool_dir / experiment).resolve()
    done = replay_spool(client, folder, retry, log=lambda m: print(m, flush=True))
    print(f"spool: {len(done.delivered)} runs delivered, {len(done.pending)} kept in {folder}",
          flush=True)
    return EXIT_SPOOLED if done.pending else 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="train_sweep"))
