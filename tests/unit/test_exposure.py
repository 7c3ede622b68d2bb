"""Nothing is published beyond loopback without authentication: make cluster-up's check, the
compose MLflow server and the image's Spark entry point refuse it in one line; a Spark secret
reaches every Spark process of the compose cluster without appearing on a command line."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from pipeline.credentials import env_problems, exposure_problems
from pipeline.spark import auth_settings
from pipeline.tracking import serve
from tests.helpers import ROOT
from tests.unit.test_cluster_files import compose_config

SCRIPT = ROOT / "docker" / "spark-secret.sh"
SECRET = "0123456789abcdef-secret"


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.1.1", "::1", "localhost", ""])
def test_loopback_needs_no_authentication(bind):
    assert exposure_problems({"BIND_ADDRESS": bind}) == []


@pytest.mark.parametrize(("values", "missing"), [
    ({}, ["MLFLOW_AUTH", "SPARK_AUTH_SECRET"]),
    ({"MLFLOW_AUTH": "1"}, ["SPARK_AUTH_SECRET"]),
    ({"SPARK_AUTH_SECRET": SECRET}, ["MLFLOW_AUTH"]),
    ({"MLFLOW_AUTH": "1", "SPARK_AUTH_SECRET": "short"}, ["SPARK_AUTH_SECRET"]),
    ({"MLFLOW_AUTH": "1", "SPARK_AUTH_SECRET": "a-long-random-string"}, ["SPARK_AUTH_SECRET"]),
])
def test_a_published_bind_without_both_is_one_line_naming_what_is_missing(values, missing):
    for bind in ("0.0.0.0", "192.0.2.7", "::"):
        [line] = exposure_problems({"BIND_ADDRESS": bind, **values})
        assert line.startswith(f"BIND_ADDRESS={bind}: ")
        assert all(name in line for name in missing)
        assert "MLFLOW_AUTH" in line or "MLFLOW_AUTH" in values


def test_a_published_bind_with_both_passes_the_env_check():
    values = {"BIND_ADDRESS": "0.0.0.0", "MLFLOW_AUTH": "1", "SPARK_AUTH_SECRET": SECRET,
              "POSTGRES_PASSWORD": "mine"}
    assert env_problems(values) == []


def test_the_mlflow_launcher_refuses_a_published_server_without_basic_auth(capsys):
    environ = {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p", "PUBLISHED_ON": "0.0.0.0",
               "MLFLOW_AUTH_ADMIN_PASSWORD": "a", "MLFLOW_FLASK_SERVER_SECRET_KEY": "k"}
    started = []
    old = dict(os.environ)
    try:
        os.environ.update(environ)
        assert serve.main(["--host", "0.0.0.0"], execute=lambda *a: started.append(a)) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert "PUBLISHED_ON" not in line and "BIND_ADDRESS=0.0.0.0" in line and started == []
        serve.main(["--app-name", "basic-auth"], execute=lambda *a: started.append(a))
        assert len(started) == 1
    finally:
        os.environ.clear()
        os.environ.update(old)
    mlflow = compose_config()["services"]["mlflow"]
    assert mlflow["environment"]["PUBLISHED_ON"] == "127.0.0.1"  # Compose's BIND_ADDRESS


def _entry(tmp_path, env: dict[str, str], *cmd: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    return subprocess.run(["sh", str(SCRIPT), *cmd], env={**base, **env}, capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("secret", [None, "short"])
def test_the_spark_entry_point_refuses_a_published_bind_without_a_secret(tmp_path, secret):
    env = {"BIND_ADDRESS": "0.0.0.0", **({"SPARK_AUTH_SECRET": secret} if secret else {})}
    proc = _entry(tmp_path, env, "touch", str(tmp_path / "started"))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert "SPARK_AUTH_SECRET" in proc.stderr and not (tmp_path / "started").exists()


def test_the_spark_entry_point_hands_the_secret_over_in_a_private_file(tmp_path):
    proc = _entry(tmp_path, {"BIND_ADDRESS": "0.0.0.0", "SPARK_AUTH_SECRET": SECRET},
                  "sh", "-c", 'echo "$SPARK_CONF_DIR"')
    assert proc.returncode == 0, proc.stderr
    defaults = tmp_path / ".spark-secret-conf" / "spark-defaults.conf"
    assert proc.stdout.strip() == str(defaults.parent)
    assert "spark.authenticate true" in defaults.read_text()
    assert f"spark.authenticate.secret {SECRET}" in defaults.read_text()
    assert stat.S_IMODE(defaults.stat().st_mode) == 0o600
    plain = _entry(tmp_path, {}, "sh", "-c", 'echo "${SPARK_CONF_DIR:-unset}"')
    assert plain.stdout.strip() == "unset"  # no secret: the command runs as it was


def test_every_spark_process_of_the_compose_cluster_gets_the_secret():
    services = compose_config("--profile", "gpu")["services"]
    spark = [name for name in services if name.startswith(("spark-", "client"))]
    assert len(spark) == 6  # master, three workers (one with GPUs), two clients
    for name in spark:
        assert "SPARK_AUTH_SECRET" in services[name]["environment"], name
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        text = (ROOT / "docker" / dockerfile).read_text()
        assert '"/usr/bin/tini", "--", "/opt/pipeline/docker/spark-secret.sh"' in text
        assert "COPY docker/spark-secret.sh /opt/pipeline/docker/" in text


def test_the_pipelines_spark_session_takes_the_secret_from_the_environment():
    assert auth_settings({}) == {}
    assert auth_settings({"SPARK_AUTH_SECRET": SECRET}) == {
        "spark.authenticate": "true", "spark.authenticate.secret": SECRET}
