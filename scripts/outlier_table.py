"""How each regression loss fares as the outlier fraction grows: one table from MLflow.

    python scripts/outlier_table.py regression-friedman1 regression-friedman1_out05 ...

Each experiment is one run of conf/sweep/regression.yaml on one dataset (``make
outlier-study``). For its latest sweep invocation the table gives, per loss, the best and the
mean test RMSE and MAE over the hidden activations (clean test targets, original units), and
each loss's RMSE relative to MSE's on the same dataset.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.tracking import store

METRICS = ("test_rmse", "test_mae", "test_r2")


def runs_frame(experiments: Sequence[str], uri: str | None = None) -> pd.DataFrame:
    """One row per finished configuration: experiment, dataset, loss, activation, metrics."""
    client = store.connect(store.tracking_uri(uri))
    rows = []
    for name in experiments:
        exp = client.get_experiment_by_name(name)
        parent = store.latest_parent(client, exp.experiment_id) if exp else None
        if parent is None:
            raise PipelineError(f"no sweep in MLflow experiment {name!r}")
        for run in store.children(client, exp.experiment_id, parent.info.run_id) or \
                store.children(client, exp.experiment_id):
            if run.data.tags.get("status") != "finished":
                continue
            rows.append({"experiment": name, "loss": run.data.params["loss"],
                         "activation": run.data.params["model.hidden_activation"],
                         **{m: run.data.metrics.get(m) for m in METRICS}})
    return pd.DataFrame(rows)


def outlier_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and loss: best and mean RMSE and MAE, and RMSE / MSE's RMSE."""
    grouped = runs.groupby(["experiment", "loss"], sort=False)
    table = grouped.agg(best_rmse=("test_rmse", "min"), mean_rmse=("test_rmse", "mean"),
                        best_mae=("test_mae", "min"), mean_mae=("test_mae", "mean"),
                        mean_r2=("test_r2", "mean")).reset_index()
    mse = table[table["loss"] == "mse"].set_index("experiment")["best_rmse"]
    table["best_rmse_vs_mse"] = table["best_rmse"] / table["experiment"].map(mse)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiments", nargs="+", help="MLflow experiments, one per dataset")
    args = p.parse_args(argv)
    print(markdown(outlier_table(runs_frame(args.experiments))))
    return 0


def markdown(df: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
