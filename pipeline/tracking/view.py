"""A saved view of a sweep's runs in MLflow's UI: the runs table opened on what the sweep compares.

MLflow 3.17's experiment page reads a view from an experiment tag
``mlflow.sharedViewState.<key>`` (a JSON object of search facets and table state) when the URL
carries ``?viewStateShareKey=<key>``; that is how its "Share" button works. This writes such a
tag, so the link ``make ui`` prints opens the runs table with:

* only the replicate runs, of every sweep of the experiment (the parent collapsed over them
  shows one row otherwise: MLflow does not share which rows are expanded),
* grouped by cell (the ``configuration`` tag): a row with the replicates' mean, then the
  replicates, groups open,
* the swept parameters, the cell label and the primary metric as columns,
* the best first (by the primary metric, in its direction).
"""

from __future__ import annotations

import json

from mlflow.entities import Experiment
from mlflow.tracking import MlflowClient

from pipeline.tasks import primary_metric
from pipeline.tracking import store
from pipeline.tracking.vocab import (
    ROLE_CONFIG,
    TAG_CONFIGURATION,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TASK,
)

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
VIEW_KEY = "sweep-runs"  # the view's name in the URL
SEED_PARAM = "training.seed"  # varies between replicates, not between cells


def column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: ``params.`model.loss```."""
    return f"{kind}.`{key}`"


def runs_view(params: list[str], metric: str, higher_is_better: bool) -> dict:
    """The view's state: filter, order and columns (the UI fills every other field with its
    default)."""
    columns = [column("tags", TAG_CONFIGURATION), *(column("params", p) for p in params),
               column("metrics", metric), column("tags", TAG_STATUS)]
    return {"searchFilter": f"tags.{TAG_ROLE} = '{ROLE_CONFIG}'",
            "orderByKey": column("metrics", metric), "orderByAsc": not higher_is_better,
            "selectedColumns": columns,
            # one group per cell, its replicates under it (groups open expanded) and the
            # group's row showing their mean
            "groupBy": {"aggregateFunction": "average",
                        "groupByKeys": [{"mode": "tag", "groupByData": TAG_CONFIGURATION}]}}


def swept_params(client: MlflowClient, experiment_id: str, parent_id: str) -> list[str]:
    """The parameters whose values differ between the sweep's runs, seed excepted (a re-run
    that found everything done has no runs of its own: then the experiment's)."""
    runs = (store.children(client, experiment_id, parent_id)
            or store.children(client, experiment_id))
    values: dict[str, set[str]] = {}
    for run in runs:
        for key, value in run.data.params.items():
            values.setdefault(key, set()).add(value)
    return sorted(k for k, v in values.items() if len(v) > 1 and k != SEED_PARAM)


def save(client: MlflowClient, exp: Experiment) -> str | None:
    """Write the view of the latest sweep of ``exp``; its key, or None without a sweep."""
    parent = store.latest_parent(client, exp.experiment_id)
    if parent is None:
        return None
    metric, higher = primary_metric(parent.data.tags.get(TAG_TASK, "multiclass"))
    params = swept_params(client, exp.experiment_id, parent.info.run_id)
    state = runs_view(params, metric, higher)
    client.set_experiment_tag(exp.experiment_id, VIEW_TAG_PREFIX + VIEW_KEY, json.dumps(state))
    return VIEW_KEY


def link(ui: str, experiment_id: str, key: str | None) -> str:
    """The runs page, with the view when there is one."""
    page = store.experiment_link(ui, experiment_id)
    return f"{page}&viewStateShareKey={key}" if key else page
