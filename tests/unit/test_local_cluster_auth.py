"""scripts/local_cluster.py --auth before anything starts: the admin password only from the
environment, and the auth config private. (The server it configures runs for real in
tests/integration/test_auth.py.)"""

from __future__ import annotations

import configparser
import stat

from scripts import local_cluster


def test_auth_without_the_password_in_the_environment_starts_nothing(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.delenv(local_cluster.ADMIN_PASSWORD_ENV, raising=False)
    state = tmp_path / "state"
    assert local_cluster.main(["up", "--state", str(state), "--auth"]) == 2
    assert f"needs the admin password in ${local_cluster.ADMIN_PASSWORD_ENV}" in \
        capsys.readouterr().err
    assert not state.exists()


def test_auth_config_is_owner_only_and_keeps_the_password_verbatim(tmp_path):
    password = "p%ss w0rd;#x"  # configparser's interpolation and comment characters
    path = local_cluster.write_auth_config(tmp_path, password)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parser = configparser.ConfigParser()  # as MLflow reads it
    parser.read(path)
    assert parser["mlflow"]["admin_password"] == password
    assert parser["mlflow"]["database_uri"] == f"sqlite:///{tmp_path / 'basic_auth.db'}"


def test_checked_credentials_are_cached_by_the_server_in_both_auth_configs(tmp_path, monkeypatch):
    from mlflow.server.auth.config import read_auth_config

    from tests.helpers import ROOT

    # Read by MLflow's own reader: without the cache every request hashes the password.
    for path in (local_cluster.write_auth_config(tmp_path, "pw-0123456789"),
                 ROOT / "docker" / "basic_auth.ini"):
        monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
        monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "pw-0123456789")
        assert read_auth_config().auth_cache_ttl_seconds == local_cluster.AUTH_CACHE_SECONDS > 0
