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


def register_champion(client: MlflowClient, uri: str, board: pd.DataFrame, experiment: str,
                      metric: str) -> Champion | None:
    """Register the top finished run's model (the board is sorted best first)."""
    finished = board[board["status"] == "finished"].dropna(subset=[metric])
    if finished.empty:
        return None
    best = finished.iloc[0]
    name = model_name(experiment)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name, description=f"Best model of sweep {experiment}")
    current = _current(client, name)
    if current is not None and current.run_id == best["run_id"]:  # already the champion
        return Champion(name, current.version, best["run_id"], best["configuration"], metric,
                        float(best[metric]))
    # register_model resolves runs:/ to the run's logged model (MLflow 3 keeps models
    # outside the run's artifact folder, so a raw runs:/ source would register nothing).
    mlflow.set_tracking_uri(uri)
    version = mlflow.register_model(f"runs:/{best['run_id']}/model", name)
    summary = ", ".join(f"{k}={best[k]:.4f}" for k in ("test_accuracy", "test_loss")
                        if pd.notna(best.get(k)))
    client.update_model_version(name, version.version, description=(
        f"{best['configuration']} (run {best['run_id']}): {summary}; chosen by {metric}"))
    client.set_registered_model_alias(name, ALIAS, version.version)
    return Champion(name, version.version, best["run_id"], best["configuration"], metric,
                    float(best[metric]))


def _current(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except Exception:  # no version carries the alias yet
        return None
