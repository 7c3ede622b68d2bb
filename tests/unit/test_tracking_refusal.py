"""tracking.connect's one-line reasons, from MLflow's own exceptions (the 401 paths also run
against a real basic-auth server in tests/integration/test_auth.py)."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED, UNAUTHENTICATED

from pipeline.tracking.store import _refusal


def test_forbidden_names_the_user(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "viewer")
    reason = _refusal(MlflowException("no", error_code=PERMISSION_DENIED))
    assert reason == "permission denied for user 'viewer' (HTTP 403)"


def test_unauthenticated_without_credentials_says_where_they_go(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    reason = _refusal(MlflowException("no", error_code=UNAUTHENTICATED))
    assert "HTTP 401" in reason and "MLFLOW_TRACKING_PASSWORD in the environment" in reason


def test_other_errors_keep_their_first_line():
    assert _refusal(ConnectionError("refused\ntraceback...")) == "refused"
