"""Job: the MLflow UI link of every experiment's training runs (``make ui`` prints them).

Each link opens the experiment's training runs (not MLflow 3's GenAI overview) through a saved
view of its latest sweep: one row per replicate run, the swept parameters and the primary
metric as columns, best first (pipeline.tracking.view).

    python jobs/links.py [--ui http://127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.cli import run_job
from pipeline.tracking import store, view


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="links", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ui", default="http://127.0.0.1:5000", help="where the MLflow UI listens")
    args = p.parse_args(argv)
    client = store.connect(store.tracking_uri())
    for exp in client.search_experiments():
        if exp.name != "Default":
            key = view.save(client, exp)  # the latest sweep's runs, as the view shows them
            print(f"{exp.name}: {view.link(args.ui, exp.experiment_id, key)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_job(main, prog="links"))
