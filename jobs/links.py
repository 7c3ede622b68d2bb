"""Job: the MLflow UI link of every experiment's training runs (``make ui`` prints them).

MLflow 3's UI opens an experiment on a GenAI overview (traces, tokens: empty here); the sweep's
runs are under "Training runs", which these links open directly.

    python jobs/links.py [--ui http://127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.cli import run_job
from pipeline.tracking import store


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="links", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ui", default="http://127.0.0.1:5000", help="where the MLflow UI listens")
    args = p.parse_args(argv)
    client = store.connect(store.tracking_uri())
    for exp in client.search_experiments():
        if exp.name != "Default":
            print(f"{exp.name}: {store.experiment_link(args.ui, exp.experiment_id)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="links"))
