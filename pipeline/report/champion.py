"""Register the best configuration's model in the MLflow Model Registry as ``@champion``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

ALIAS = "champion"


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    run_id: str
    configuration: str
    metric: str
    value: float

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{ALIAS}"


def model_name(experiment: str) -> str:
    """Registry name derived from the sweep: letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{experiment}-champion")


def register_champion(client: MlflowClient, uri: str, experiment: str, run: pd.Series,
                      metric: str, decision: str) -> Champion:
    """Register ``run`` (the best cell's best replicate) as the experiment's champion.

    ``decision`` says whether the best cell's win is decisive or names the cells tied with
    it; it goes into the version's description and a ``decision`` tag, so nobody reads a
    tie as a win.
    """
    name = model_name(experiment)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name, description=f"Best model of sweep {experiment}")
    value = float(run[metric])
    current = _current(client, name)
    if current is not None and current.run_id == run["run_id"]:  # already the champion
        version = current.version
    else:
        version = _registered(client, name, run["run_id"]) or _register(uri, name, run["run_id"])
        client.set_registered_model_alias(name, ALIAS, version)
    summary = ", ".join(f"{k}={run[k]:.4f}" for k in ("test_accuracy", "test_loss")
                        if pd.notna(run.get(k)))
    client.update_model_version(name, version, description=(
        f"{run['configuration']} (run {run['run_id']}): {summary}; chosen by {metric}. "
        f"{decision}"))
    client.set_model_version_tag(name, version, "decision", decision[:4900])
    return Champion(name, version, run["run_id"], run["configuration"], metric, value)


def _registered(client: MlflowClient, name: str, run_id: str) -> str | None:
    """The version already made from ``run_id``'s model (a compare killed between registering
    and moving the alias, or another compare of the same sweep): reused, never made twice."""
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min((v.version for v in found), key=int, default=None)


def _register(uri: str, name: str, run_id: str) -> str:
    # register_model resolves runs:/ to the run's logged model (MLflow 3 keeps models
    # outside the run's artifact folder, so a raw runs:/ source would register nothing).
    mlflow.set_tracking_uri(uri)
    return mlflow.register_model(f"runs:/{run_id}/model", name).version


def _current(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except Exception:  # no version carries the alias yet
        return None
