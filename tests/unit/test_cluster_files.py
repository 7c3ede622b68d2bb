"""docker-compose.yml and the Dockerfile, checked by the real Compose and hadolint binaries
(no Docker engine runs on these machines, so nothing is started here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import compose
import pytest

from tests.helpers import ROOT

COMPOSE = Path(compose.__file__).parent / "docker-compose"  # the real Go binary, real exit codes
HADOLINT = Path(sys.executable).parent / "hadolint"


def compose_config(*extra: str, env_file: Path = ROOT / ".env.example") -> dict:
    proc = subprocess.run([str(COMPOSE), "--env-file", str(env_file), "-f",
                           str(ROOT / "docker-compose.yml"), "--profile", "client", *extra,
                           "config", "--format", "json"], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_compose_file_is_valid_with_the_example_env():
    proc = subprocess.run([str(COMPOSE), "--env-file", str(ROOT / ".env.example"), "-f",
                           str(ROOT / "docker-compose.yml"), "config", "-q"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_compose_services_ports_and_healthchecks():
    services = compose_config()["services"]
    assert {"postgres", "mlflow", "spark-master", "spark-worker-1", "spark-worker-2",
            "client"} <= set(services)
    published = {(name, p["target"]): p for name, s in services.items()
                 for p in s.get("ports", [])}
    assert set(published) == {("mlflow", 5000), ("spark-master", 7077), ("spark-master", 8080)}
    assert all(p["host_ip"] == "127.0.0.1" for p in published.values())  # loopback only
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["mlflow"]
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    client = services["client"]
    assert client["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "spark://spark-master:7077" in " ".join(client["command"])
    for worker in ("spark-worker-1", "spark-worker-2"):
        assert "spark://spark-master:7077" in services[worker]["command"]
        assert any(v["target"] == "/data" for v in services[worker]["volumes"])


def test_compose_takes_cores_and_credentials_from_the_environment(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POSTGRES_USER=u\nPOSTGRES_PASSWORD=s3cret\nSPARK_WORKER_CORES=3\n"
                   "SPARK_WORKER_MEMORY=5g\n")
    services = compose_config(env_file=env)["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    # The MLflow server's launcher builds the (URL-encoded) URI from these.
    assert services["mlflow"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert services["mlflow"]["environment"]["POSTGRES_USER"] == "u"
    assert "s3cret" not in " ".join(services["mlflow"]["command"])  # not visible in ps
    command = " ".join(services["spark-worker-1"]["command"])
    assert "--cores 3" in command and "--memory 5g" in command


def test_compose_refuses_to_start_without_a_password(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POSTGRES_USER=u\n")
    proc = subprocess.run([str(COMPOSE), "--env-file", str(env), "-f",
                           str(ROOT / "docker-compose.yml"), "config", "-q"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "POSTGRES_PASSWORD" in proc.stderr


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "docker").glob("Dockerfile*")),
                         ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile):
    proc = subprocess.run([str(HADOLINT), str(dockerfile)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_runs_as_a_non_root_user():
    lines = (ROOT / "docker" / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_mlflow_auth_is_off_unless_asked_for():
    mlflow = compose_config()["services"]["mlflow"]
    assert "--app-name" not in mlflow["command"]


def test_mlflow_auth_opt_in_takes_every_secret_from_the_environment(tmp_path):
    env = tmp_path / ".env"
    env.write_text("POSTGRES_USER=u\nPOSTGRES_PASSWORD=pg-secret\nMLFLOW_AUTH=1\n"
                   "MLFLOW_ADMIN_PASSWORD=admin-secret\nMLFLOW_FLASK_SERVER_SECRET_KEY=csrf-key\n"
                   "MLFLOW_TRACKING_USERNAME=sweeper\nMLFLOW_TRACKING_PASSWORD=sweeper-secret\n")
    services = compose_config(env_file=env)["services"]
    mlflow, client = services["mlflow"], services["client"]
    command = " ".join(mlflow["command"])
    assert "--app-name basic-auth" in command
    assert mlflow["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-secret"
    assert mlflow["environment"]["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "csrf-key"
    assert client["environment"]["MLFLOW_TRACKING_USERNAME"] == "sweeper"
    assert client["environment"]["MLFLOW_TRACKING_PASSWORD"] == "sweeper-secret"
    for secret in ("admin-secret", "csrf-key", "sweeper-secret"):  # none visible in ps
        assert all(secret not in " ".join(s.get("command") or []) for s in services.values())
    config = next(v for v in mlflow["volumes"] if v["target"] == "/etc/mlflow/basic_auth.ini")
    assert config["read_only"] and config["source"] == str(ROOT / "docker" / "basic_auth.ini")
    assert mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"] == config["target"]


def test_shipped_auth_config_holds_no_password():
    import configparser

    parser = configparser.ConfigParser()
    parser.read(ROOT / "docker" / "basic_auth.ini")
    assert parser["mlflow"]["admin_username"] == "admin"
    assert "admin_password" not in parser["mlflow"]
    assert parser["mlflow"]["database_uri"].startswith("sqlite:////var/lib/mlflow-auth/")


def test_spark_master_has_a_healthcheck_the_others_wait_for():
    services = compose_config("--profile", "gpu")["services"]
    check = " ".join(services["spark-master"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/json/" in check and "ALIVE" in check
    for name in ("spark-worker-1", "spark-worker-2", "spark-worker-gpu", "client", "client-gpu"):
        assert services[name]["depends_on"]["spark-master"]["condition"] == "service_healthy"


def test_services_restart_and_one_shot_clients_do_not():
    services = compose_config("--profile", "gpu")["services"]
    for name in ("postgres", "mlflow", "spark-master", "spark-worker-1", "spark-worker-2",
                 "spark-worker-gpu"):
        assert services[name]["restart"] == "unless-stopped", name
    assert services["client"]["restart"] == "no" and services["client-gpu"]["restart"] == "no"


def test_gpu_profile_reserves_gpus_and_schedules_them_through_the_discovery_script(tmp_path):
    assert not {"spark-worker-gpu", "client-gpu"} & set(compose_config()["services"])
    env = tmp_path / ".env"
    env.write_text("POSTGRES_USER=u\nPOSTGRES_PASSWORD=p\nSPARK_WORKER_GPUS=2\n")
    services = compose_config("--profile", "gpu", env_file=env)["services"]
    worker, client = services["spark-worker-gpu"], services["client-gpu"]
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == 2
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    opts = worker["environment"]["SPARK_WORKER_OPTS"]
    gpu_conf = (ROOT / "conf" / "spark" / "gpu.conf").read_text()
    assert "-Dspark.worker.resource.gpu.amount=2" in opts
    script = opts.split("-Dspark.worker.resource.gpu.discoveryScript=")[1].split()[0]
    assert f"spark.executor.resource.gpu.discoveryScript  {script}" in gpu_conf
    command = " ".join(client["command"])
    assert "--properties-file conf/spark/gpu.conf jobs/train_sweep.py" in command
    assert "--num-proc 2" in command  # one rank per GPU
    assert client["environment"]["PIPELINE_SPARK_CONF"].endswith("conf/spark/gpu.conf")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_images_install_dependencies_before_the_code_and_ship_no_build_tools(dockerfile):
    text = (ROOT / "docker" / dockerfile).read_text()
    stages = text.split("\nFROM ")
    assert len(stages) == 3, "a builder stage and a runtime stage"
    builder, runtime = stages[1], stages[2]
    # The venv (TensorFlow, Horovod) is built before any code is copied in.
    assert builder.index("scripts/setup.sh\n") < builder.index("COPY pipeline")
    # ... with the script setup.sh runs from the checkout.
    assert builder.index("COPY scripts/bytecode_zip.py") < builder.index("bash scripts/setup.sh")
    assert "RUNTIME=1" in builder and "g++" in builder
    for tool in ("g++", "cmake", "make ", "cuda-nvcc"):
        assert tool not in runtime, tool
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
