"""conf/spark/*.conf, the GPU discovery script and the executors' interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.spark import _executor_python, read_conf
from tests.helpers import ROOT

SPARK_CONF = ROOT / "conf" / "spark"
DISCOVERY = ROOT / "scripts" / "gpu-discovery.sh"


@pytest.mark.parametrize("conf", sorted(SPARK_CONF.glob("*.conf")), ids=lambda p: p.name)
def test_conf_files_read_the_same_by_spark_submit_and_the_jobs(conf):
    read_conf(conf)  # the jobs' reader accepts it
    # spark-submit reads it as Java properties: a comment after a value would become part of
    # the value, so comments stand on lines of their own.
    for line in conf.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" not in line, line


def test_local_runs_take_every_core_with_the_ui_and_tests_take_two_without():
    local = read_conf(SPARK_CONF / "local.conf")
    assert local["spark.master"] == "local[*]" and local["spark.ui.enabled"] == "true"
    tests = read_conf(ROOT / "tests" / "helpers" / "spark-test.conf")
    assert tests.pop("spark.master") == "local[2]" and tests.pop("spark.ui.enabled") == "false"
    assert tests == {k: v for k, v in local.items()
                     if k not in ("spark.master", "spark.ui.enabled")}
    assert os.environ["PIPELINE_SPARK_CONF"].endswith("spark-test.conf")  # set by conftest


def test_gpu_conf_is_cluster_conf_plus_gpu_scheduling():
    cluster, gpu = read_conf(SPARK_CONF / "cluster.conf"), read_conf(SPARK_CONF / "gpu.conf")
    assert {k: gpu[k] for k in cluster} == cluster
    assert gpu["spark.executor.resource.gpu.amount"] == "1"
    assert gpu["spark.task.resource.gpu.amount"] == "1"
    # The images keep the script there (docker/Dockerfile*).
    script = gpu["spark.executor.resource.gpu.discoveryScript"]
    assert script == "/opt/pipeline/scripts/gpu-discovery.sh"
    for dockerfile in (ROOT / "docker").glob("Dockerfile*"):
        assert "scripts/gpu-discovery.sh /opt/pipeline/scripts/" in dockerfile.read_text()


def discover(tmp_path: Path, smi: str | None) -> dict:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    if smi is not None:
        (fake / "nvidia-smi").write_text(smi)
        (fake / "nvidia-smi").chmod(0o755)
    # Only the fake (and the basic tools) on PATH: no real nvidia-smi can leak in.
    proc = subprocess.run([str(DISCOVERY)], env={"PATH": f"{fake}:/usr/bin:/bin"},
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_discovery_lists_each_gpu_index(tmp_path):
    smi = "#!/bin/sh\n[ \"$1\" = --query-gpu=index ] || exit 64\nprintf '0\\n1\\n3\\n'\n"
    assert discover(tmp_path, smi) == {"name": "gpu", "addresses": ["0", "1", "3"]}


def test_discovery_without_nvidia_smi_or_a_working_driver_lists_none(tmp_path):
    assert discover(tmp_path, None) == {"name": "gpu", "addresses": []}
    failing = "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate' >&2\n" \
              "exit 9\n"
    assert discover(tmp_path, failing) == {"name": "gpu", "addresses": []}


def test_discovery_script_ships_executable_in_the_package():
    from pipeline.files import gpu_discovery_script

    assert gpu_discovery_script().resolve() == DISCOVERY.resolve()
    assert os.access(DISCOVERY, os.X_OK)


def test_executors_run_the_configured_python_else_this_one_only_locally(monkeypatch):
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    _executor_python(None, "spark://master:7077")
    assert "PYSPARK_PYTHON" not in os.environ  # Spark's own default on a cluster
    _executor_python(None, "local[*]")
    assert os.environ["PYSPARK_PYTHON"] == sys.executable
    _executor_python("./environment/bin/python", "yarn")
    assert os.environ["PYSPARK_PYTHON"] == "./environment/bin/python"
