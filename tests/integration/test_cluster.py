"""The cluster topology for real, without Docker: a Spark standalone master and two workers,
an MLflow server on PostgreSQL; the jobs through spark-submit --master spark://...

The executors run from the packed environment (scripts/pack.sh), shipped with --archives and
unpacked as ./environment in their working folders: the workers get no PYTHONPATH, so
nothing the executors or the Horovod ranks import can come from the driver's checkout.
Each worker also declares one GPU, found by scripts/gpu-discovery.sh through a stand-in
nvidia-smi: applications that ask for none are unaffected, and the GPU tests see Spark's
scheduling of GPUs end to end (this machine has no real one, and TensorFlow's CPU build).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import store as tracking
from scripts import local_cluster
from tests.helpers import ROOT, SPARK_SUBMIT, submit_env, write_data_config, write_npz
from tests.helpers.jobs import SHORT_LIVED_JVM
from tests.helpers.pack import packed_env
from tests.helpers.suite import slow_fixture

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow(reason=(
        "spark-submit jobs on a real standalone cluster whose executors start from the packed "
        "environment: each application's executors unpack it (about 600 MB) before any work")),
]

SWEEP = """
name: cluster
dataset: tiny
base:
  model: {hidden_layers: [8]}
  training: {epochs: 2, batch_size: 32}
grid:
  model.hidden_activation: [relu, tanh]
"""


@pytest.fixture(scope="module")
def packing():
    """The archive `make pack` makes, for the current sources (built once per digest of its
    inputs: tests/helpers/pack.py), packed in the background while the cluster starts."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(packed_env)


@pytest.fixture(scope="module")
@slow_fixture("packing installs TensorFlow and Horovod into a fresh venv: minutes, once per "
              "digest of the sources on a machine")
def packed(packing) -> Path:
    return packing.result()


@pytest.fixture(scope="module")
@slow_fixture("starts a Spark master, two workers, PostgreSQL and an MLflow server on it, while "
              "the environment is packed beside them")
def cluster(tmp_path_factory, packing):
    state = Path(tempfile.mkdtemp(prefix="actloss-cluster-"))
    fake = tmp_path_factory.mktemp("fake-nvidia")
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 0\n")  # one GPU, index 0, per worker
    (fake / "nvidia-smi").chmod(0o755)
    worker_env = {
        "PYTHONPATH": None,  # executors import only what their own environment holds
        "PATH": f"{fake}:{os.environ['PATH']}",
        "SPARK_WORKER_OPTS": "-Dspark.worker.resource.gpu.amount=1 "
                             "-Dspark.worker.resource.gpu.discoveryScript="
                             f"{ROOT / 'scripts' / 'gpu-discovery.sh'}"}
    started = local_cluster.up(state, workers=2, worker_cores=1, worker_memory="2g",
                               worker_env=worker_env)
    try:  # up() stops what it started if it fails part-way
        yield started
    finally:
        local_cluster.down(state)
    for name, pid in started.pids.items():  # everything it started is gone
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", name


def submit(cluster, *args: str, packed: Path | None = None,
           conf: str = "cluster.conf") -> subprocess.CompletedProcess:
    """spark-submit against the cluster; with ``packed``, executors (and ranks) run from it."""
    env = submit_env(MLFLOW_TRACKING_URI=cluster.tracking_uri,
                     PIPELINE_SPARK_CONF=str(ROOT / "conf" / "spark" / conf))
    cmd = [str(SPARK_SUBMIT), "--master", cluster.master_url,
           "--properties-file", str(ROOT / "conf" / "spark" / conf),
           "--conf", "spark.executor.memory=1g",
           "--conf", f"spark.executor.extraJavaOptions={SHORT_LIVED_JVM}"]
    if packed:  # the driver keeps this interpreter: spark.pyspark.python would win for it too
        cmd += ["--archives", f"{packed}#environment",
                "--conf", "spark.pyspark.python=./environment/bin/python",
                "--conf", f"spark.pyspark.driver.python={sys.executable}",
                # Executors unpack the 600 MB archive before they register, one long after the
                # other on the loaded test machine: the stated size (two cores) keeps the
                # driver waiting for the second, up to the stated bound.
                "--conf", "spark.cores.max=2",
                "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=180s"]
    return subprocess.run([*cmd, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900, check=False)


def executor_logs(cluster, app_id: str | None = None) -> str:
    """Everything the executors (and the ranks they started) printed."""
    files = [p for w in (1, 2)
             for p in (Path(cluster.state_dir) / f"worker-{w}").glob(f"{app_id or 'app-*'}/*/std*")]
    return "\n".join(p.read_text(errors="replace") for p in files)


def app_ids(cluster) -> set[str]:
    return {p.name for w in (1, 2) for p in (Path(cluster.state_dir) / f"worker-{w}").glob("app-*")}


def checkout_submit(cluster, *args: str, conf: str = "cluster.conf") -> subprocess.CompletedProcess:
    """spark-submit whose executors import the checkout (through PYTHONPATH), not the packed
    environment: for the tests about scheduling, which must not wait for the packing."""
    return submit(cluster, "--conf", f"spark.executorEnv.PYTHONPATH={ROOT}", *args, conf=conf)


@pytest.fixture(scope="module")
def prepared(cluster, tmp_path_factory) -> Path:
    """The data, prepared on the cluster from the checkout while the environment is packed."""
    work = tmp_path_factory.mktemp("cluster-data")
    cfg = write_data_config(work, write_npz(work / "d.npz"))
    proc = checkout_submit(cluster, "jobs/prepare_data.py", "--config", str(cfg))
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return work / "processed" / "tiny"


def test_too_many_ranks_fail_in_seconds_with_one_line(cluster, prepared, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    started = time.monotonic()
    proc = submit(cluster, "jobs/train_sweep.py", "--config", str(sweep), "--data",
                  str(prepared), "--num-proc", "3")
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    [line] = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ": error: " in ln]
    assert ("--num-proc: 3 ranks requested but Spark can run only 2 tasks at once "
            "(2 executor(s) registered after") in line
    assert "2 core(s), spark.task.cpus=1)" in line
    # Horovod would have waited HOROVOD_SPARK_START_TIMEOUT (600 s) for a third slot; the
    # check itself waits only for the executors to register. This test runs while the
    # environment is packed beside it, so on 2 loaded cores spark-submit's start alone can
    # take most of a minute: the bound is that it never waits for Horovod's timeout.
    assert elapsed < 200, elapsed


GPU_SWEEP = SWEEP + "max_attempts: 1\n"


def gpu_submit(cluster, *args: str) -> subprocess.CompletedProcess:
    """With conf/spark/gpu.conf; the discovery script from this checkout, not the image's.
    The stated size (two cores) keeps the driver waiting for the second executor, which on
    the loaded test machine (the environment is packed beside) can register late."""
    return checkout_submit(cluster, "--conf", "spark.executor.resource.gpu.discoveryScript="
                           f"{ROOT / 'scripts' / 'gpu-discovery.sh'}",
                           "--conf", "spark.cores.max=2",
                           "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=120s",
                           *args, conf="gpu.conf")


def test_gpu_scheduling_counts_slots_by_gpu(cluster, prepared, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(GPU_SWEEP)
    proc = gpu_submit(cluster, "jobs/train_sweep.py", "--config", str(sweep), "--data",
                      str(prepared), "--num-proc", "3")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    [line] = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ": error: " in ln]
    assert "Spark can run only 2 tasks at once" in line
    assert "spark.task.resource.gpu.amount=1 over 2 GPU(s)" in line  # read from the executors


def test_each_rank_gets_the_gpu_spark_assigned_to_its_task(cluster, prepared, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(GPU_SWEEP)
    before = app_ids(cluster)
    proc = gpu_submit(cluster, "jobs/train_sweep.py", "--config", str(sweep), "--data",
                      str(prepared), "--num-proc", "2", "--experiment", "cluster-gpu",
                      "--checkpoint-dir", str(tmp_path / "ckpt"))
    # Spark gave each task GPU 0 of its worker; horovod.spark handed it to the rank, which
    # asked TensorFlow for it: the CPU build has none, so both ranks stop with the reason.
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    [app] = app_ids(cluster) - before
    reasons = [ln for ln in executor_logs(cluster, app).splitlines()
               if "Spark assigned GPU 0 to this task but TensorFlow sees 0 GPU(s)" in ln]
    assert len(reasons) >= 2, executor_logs(cluster, app)[-3000:]


# Last: the only test that waits for the packing, which ran beside the tests above.
def test_jobs_run_on_the_standalone_cluster_from_the_packed_environment(cluster, packed,
                                                                         prepared, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    before = app_ids(cluster)
    proc = submit(cluster, "jobs/train_sweep.py", "--config", str(sweep), "--data", str(prepared),
                  "--num-proc", "2", "--checkpoint-dir", str(tmp_path / "ckpt"), packed=packed)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    # The report reads the server in the driver: no executor of it imports the pipeline.
    proc = checkout_submit(cluster, "jobs/compare.py", "--experiment", "cluster",
                           "--output", str(tmp_path / "report"))
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    client = MlflowClient(cluster.tracking_uri)
    exp = client.get_experiment_by_name("cluster")
    runs = tracking.children(client, exp.experiment_id)
    assert sorted(r.data.params["model.hidden_activation"] for r in runs) == ["relu", "tanh"]
    for run in runs:
        assert run.data.tags["status"] == "finished"
        assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == 2
        models = client.search_logged_models(
            [exp.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'")
        assert [m.name for m in models] == ["model"]  # uploaded through the server
    assert (tmp_path / "report" / "index.html").is_file()
    # The sweep's executors ran on the workers, each from its own unpacked copy...
    [sweep_app] = sorted(app_ids(cluster) - before)[:1]
    unpacked = [p for w in (1, 2) for p in
                (Path(cluster.state_dir) / f"worker-{w}" / sweep_app).glob("*/environment")]
    assert len(unpacked) == 2 and all((p / "bin" / "python").exists() for p in unpacked)
    site = unpacked[0] / "lib" / "python3.11" / "site-packages"  # what the pack leaves out
    assert (site / "pyspark").is_dir() and not (site / "pyspark" / "jars").exists()
    assert (site / "tensorflow").is_dir() and not (site / "tensorflow" / "include").exists()
    # ... and rank 0 ran that copy's interpreter and package, not the driver's.
    # Horovod prefixes each line of a rank's output with "[rank]<stdout>:".
    [line] = [ln.split("rank 0 of 2: ", 1)[1]
              for ln in executor_logs(cluster, sweep_app).splitlines() if "rank 0 of 2: " in ln]
    interpreter, package, device = line.split(", ")
    assert interpreter.endswith("environment/bin/python") and sweep_app in interpreter
    assert package.endswith("environment/lib/python3.11/site-packages/pipeline")
    assert str(ROOT) not in line and sys.prefix not in line
    assert device == "CPU"
