"""Registering the champion twice for one run (a compare killed between registering the version
and moving the alias, then run again) leaves one version, into a real SQLite registry."""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.tracking import MlflowClient

from pipeline.report.champion import ALIAS, model_name, register_champion
from tests.helpers.stores import sqlite_store


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


def test_a_version_left_without_the_alias_is_reused_not_registered_again(tmp_path):
    uri = sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    exp = client.create_experiment("sweep", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(exp).info.run_id
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        mlflow.pyfunc.log_model(name="model", python_model=_Constant())
    name = model_name("sweep")
    client.create_registered_model(name)
    mlflow.register_model(f"runs:/{run_id}/model", name)  # then the compare was killed
    run = pd.Series({"run_id": run_id, "configuration": "relu", "test_accuracy": 0.9})
    champion = register_champion(client, uri, "sweep", run, "test_accuracy", "decisive")
    assert [str(v.version) for v in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert str(champion.version) == "1"
    assert client.get_model_version_by_alias(name, ALIAS).run_id == run_id
