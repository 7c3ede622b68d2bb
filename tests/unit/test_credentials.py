"""Passwords in database URIs are URL-encoded, and the placeholders of .env.example are refused
wherever a secret is read: make cluster-up, the compose stack's MLflow server, local_cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from pipeline.credentials import PLACEHOLDERS, SECRET_WORDS, database_uri, read_env_file
from pipeline.tracking import serve
from scripts import local_cluster
from tests.helpers import ROOT
from tests.unit.test_cluster_files import compose_config

AWKWARD = "p@ss/w:rd#?%&="  # every character that ends or changes a URI part


def test_an_awkward_password_survives_the_uri():
    url = make_url(database_uri("postgresql+psycopg2", "ml flow", AWKWARD, "db", 5432, "m/db"))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "ml flow", AWKWARD, "db", 5432, "m/db")


def test_every_secret_in_the_example_env_is_a_refused_placeholder():
    example = read_env_file(ROOT / ".env.example")
    commented = read_env_file_with_comments()
    secrets = {k: v for k, v in {**commented, **example}.items()
               if any(word in k for word in SECRET_WORDS)}
    assert secrets and set(secrets.values()) <= PLACEHOLDERS


def read_env_file_with_comments() -> dict[str, str]:
    """The example's optional settings too (``# KEY=value``)."""
    lines = [line.lstrip("# ") for line in (ROOT / ".env.example").read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if "=" in line and " " not in
                line.split("=", 1)[0])


def _check_env(path) -> subprocess.CompletedProcess:
    """As make cluster-up runs it: the system's python3 would do, standard library only."""
    return subprocess.run([sys.executable, "-S", "-m", "pipeline.credentials", "check-env",
                           str(path)], cwd=ROOT, capture_output=True, text=True, check=False)


def test_cluster_up_refuses_the_example_env_in_one_line_per_secret(tmp_path):
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    proc = _check_env(env)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"credentials: error: {env}: POSTGRES_PASSWORD: still the placeholder 'change-me' from "
        ".env.example; set a secret of your own"]
    env.write_text(f"POSTGRES_USER=u\nPOSTGRES_PASSWORD={AWKWARD}\n")
    assert _check_env(env).returncode == 0
    assert _check_env(tmp_path / "missing").returncode == 2
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ncluster-up:")[1].split("\n\n")[0]
    assert recipe.index("check-env .env") < recipe.index("docker compose up")


def test_the_compose_mlflow_server_gets_an_encoded_uri_built_by_the_launcher():
    environ = {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": AWKWARD, "POSTGRES_DB": "mlflow",
               "POSTGRES_HOST": "postgres"}
    env = serve.server_env(environ, ["--port", "5000"])
    url = make_url(env["MLFLOW_BACKEND_STORE_URI"])
    assert (url.password, url.host, url.port, url.database) == (AWKWARD, "postgres", 5432,
                                                                "mlflow")
    mlflow = compose_config()["services"]["mlflow"]
    assert "MLFLOW_BACKEND_STORE_URI" not in mlflow["environment"]  # not pasted by Compose
    assert mlflow["command"][:3] == ["python", "-m", "pipeline.tracking.serve"]
    assert mlflow["environment"]["POSTGRES_PASSWORD"] == "change-me"


@pytest.mark.parametrize(("environ", "args", "key"), [
    ({"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "change-me"}, [], "POSTGRES_PASSWORD"),
    ({"POSTGRES_USER": "u"}, [], "POSTGRES_PASSWORD: not set"),
    ({"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "fine", "MLFLOW_AUTH_ADMIN_PASSWORD":
      "change-me-too", "MLFLOW_FLASK_SERVER_SECRET_KEY": "k"}, ["--app-name", "basic-auth"],
     "MLFLOW_AUTH_ADMIN_PASSWORD"),
])
def test_the_launcher_refuses_placeholders_and_starts_nothing(monkeypatch, capsys, environ,
                                                              args, key):
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD",
                 "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    started = []
    assert serve.main(args, execute=lambda *a: started.append(a)) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert key in line and started == []


def test_the_launcher_hands_the_uri_to_mlflow_in_its_environment(monkeypatch):
    monkeypatch.setenv("POSTGRES_USER", "mlflow")
    monkeypatch.setenv("POSTGRES_PASSWORD", AWKWARD)
    started = []
    serve.main(["--host", "0.0.0.0"], execute=lambda *a: started.append(a))
    [(program, argv, env)] = started
    assert (program, argv) == ("mlflow", ["mlflow", "server", "--host", "0.0.0.0"])
    assert make_url(env["MLFLOW_BACKEND_STORE_URI"]).password == AWKWARD
    assert AWKWARD not in " ".join(argv)  # not visible in ps


@pytest.mark.parametrize("variable", [local_cluster.ADMIN_PASSWORD_ENV,
                                      local_cluster.PG_PASSWORD_ENV])
def test_local_cluster_refuses_a_placeholder_before_starting_anything(tmp_path, monkeypatch,
                                                                     capsys, variable):
    monkeypatch.setenv(local_cluster.ADMIN_PASSWORD_ENV, "a-real-one")
    monkeypatch.setenv(variable, "change-me-too")
    state = tmp_path / "state"
    assert local_cluster.main(["up", "--state", str(state), "--auth"]) == 2
    assert f"{variable}: still the placeholder" in capsys.readouterr().err
    assert not state.exists()


def test_the_server_starts_without_mlflows_job_consumers_unless_asked():
    environ = {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": AWKWARD}
    assert serve.server_env(environ, [])["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    asked = {**environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}
    assert serve.server_env(asked, [])["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
