"""A password with every URI-breaking character, through a real PostgreSQL started by
scripts/local_cluster.py: the URI it hands the MLflow server connects."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy

from scripts import local_cluster

pytestmark = pytest.mark.integration

AWKWARD = "p@ss/w:rd#?%&="


def test_the_local_clusters_database_uri_connects_with_an_awkward_password(monkeypatch):
    monkeypatch.setenv(local_cluster.PG_PASSWORD_ENV, AWKWARD)
    state = Path(tempfile.mkdtemp(prefix="actloss-pg-"))  # PostgreSQL's own user must enter it
    cluster = local_cluster.Cluster(str(state))
    try:
        uri = local_cluster.start_postgres(cluster)
        engine = sqlalchemy.create_engine(uri)
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select current_user")).scalar() == "mlflow"
        engine.dispose()
    finally:
        local_cluster.down(state, say=lambda line: None)
        shutil.rmtree(state, ignore_errors=True)
    assert AWKWARD not in uri  # encoded, not pasted
