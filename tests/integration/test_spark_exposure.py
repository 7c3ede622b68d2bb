"""Real Spark processes: a plain spark-submit from the project's environment serves its UI on
loopback only; a standalone master started with a shared secret admits the worker and the job
that hold it, and no worker without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.jobs import SHORT_LIVED_JVM, SPARK_SUBMIT
from tests.helpers.servers import free_port

pytestmark = pytest.mark.integration

SPARK_HOME = Path(sys.executable).parent.parent / "lib" / "python3.11" / "site-packages" / "pyspark"
SECRET = "a-secret-for-this-test-only"

UI_PROBE = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "true") \\
    .config("spark.ui.port", sys.argv[1]).getOrCreate()
port = int(spark.sparkContext.uiWebUrl.rsplit(":", 1)[1])
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].rsplit(":", 1)
        if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: listening
            print("LISTEN", address)
spark.stop()
"""

JOB = """
from pipeline.spark import build_session
spark = build_session()
print("ROWS", spark.range(1000).count())
spark.stop()
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SPARK_LOCAL_IP"}
    return {**env, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            **extra}


def test_a_plain_spark_submit_serves_its_ui_on_loopback_only(tmp_path):
    """No SPARK_LOCAL_IP and no Makefile: the environment's spark-env.sh (make setup) binds it."""
    assert (SPARK_HOME / "conf" / "spark-env.sh").is_file()
    probe = tmp_path / "probe.py"
    probe.write_text(UI_PROBE)
    proc = subprocess.run([str(SPARK_SUBMIT), str(probe), str(free_port())], env=_env(),
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    listening = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("LISTEN")]
    # 127.0.0.1 as /proc/net/tcp writes it, alone or mapped into IPv6; never 0.0.0.0 or ::
    assert listening and all(a.endswith("0100007F") for a in listening), listening


class _Daemons:
    def __init__(self, folder: Path) -> None:
        self.folder, self.procs = folder, []

    def start(self, name: str, secret: str | None, *args: str) -> None:
        env = _env(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1",
                   SPARK_SECRET_CONF_DIR=str(self.folder / f"{name}-conf"))
        env.pop("SPARK_AUTH_SECRET", None)
        if secret:
            env["SPARK_AUTH_SECRET"] = secret
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - the process keeps it
        cmd = ["sh", str(ROOT / "docker" / "spark-secret.sh"),
               str(SPARK_HOME / "bin" / "spark-class"), *args]
        self.procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def stop(self) -> None:
        for proc in self.procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            proc.wait(timeout=60)


def _alive_workers(ui: str) -> list[str]:
    with urllib.request.urlopen(f"{ui}/json/", timeout=2) as r:
        return [w["webuiaddress"] for w in json.load(r)["workers"] if w["state"] == "ALIVE"]


def _until(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f}s")


def test_a_master_with_a_secret_admits_only_workers_and_jobs_that_hold_it(tmp_path):
    port, ui_port, good_ui, bad_ui = (free_port() for _ in range(4))
    master, ui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    daemons = _Daemons(tmp_path)
    try:
        daemons.start("master", SECRET, "org.apache.spark.deploy.master.Master", "--host",
                      "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port))
        _until(lambda: _alive_workers(ui) == [], 90)
        worker = ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores",
                  "1", "--memory", "1g"]
        daemons.start("good", SECRET, *worker, "--webui-port", str(good_ui), "--work-dir",
                      str(tmp_path / "good"), master)
        daemons.start("bad", None, *worker, "--webui-port", str(bad_ui), "--work-dir",
                      str(tmp_path / "bad"), master)
        _until(lambda: bool(_alive_workers(ui)), 90)
        _until(lambda: "SaslMessage" in (tmp_path / "bad.log").read_text(), 60)
        assert _alive_workers(ui) == [f"http://127.0.0.1:{good_ui}"]  # the other was refused
        job = tmp_path / "job.py"
        job.write_text(JOB)
        proc = subprocess.run([str(SPARK_SUBMIT), "--master", master, "--conf",
                               f"spark.executor.extraJavaOptions={SHORT_LIVED_JVM}", str(job)],
                              env=_env(SPARK_AUTH_SECRET=SECRET, SPARK_LOCAL_IP="127.0.0.1"),
                              cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "ROWS 1000" in proc.stdout  # counted by an executor on the admitted worker
    finally:
        daemons.stop()
