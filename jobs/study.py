"""Job: check a study and write the sweep it runs (its full form, or with --quick its short one).

    python jobs/study.py --study conf/study/NAME.yaml [--quick] --write-sweep FILE

No JVM: the study file, every name in its sweep and every published cell (which must be a
configuration of the sweep's grid) are checked in about a second, before `make study` starts
the sweep (jobs/train_sweep.py) and the report (jobs/compare.py --study).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from pipeline.cli import console_logging, run_job
from pipeline.config.study import load_study
from pipeline.storage import write_text_atomic


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", required=True, help="study YAML, e.g. conf/study/seed_repro.yaml")
    p.add_argument("--quick", action="store_true",
                   help="the short form: the study's quick overrides applied to its sweep")
    p.add_argument("--write-sweep", type=Path,
                   help="write the sweep to run here (YAML); without it, only check")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console_logging()
    study = load_study(args.study, quick=args.quick)
    cfg = study.config
    form = "quick form" if args.quick else "full form"
    print(f"study {cfg.name}: {cfg.title} ({form}); {len(cfg.published)} published figures "
          f"from {cfg.source or 'no source'}", flush=True)
    if args.write_sweep:
        args.write_sweep.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.write_sweep, yaml.safe_dump(study.sweep_data, sort_keys=False))
        print(f"study {cfg.name}: sweep written to {args.write_sweep}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="study"))
