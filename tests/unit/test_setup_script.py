"""scripts/setup.sh's plan (DRY_RUN=1) for the CPU and the GPU builds, its refusals, and the
Makefile's spark-submit line. A GPU build cannot run here (no GPU, and the machine's nvcc is
CUDA 13): the plan is what can be checked, with a fake CUDA 12 nvcc where one is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def setup(tmp_path: Path, *, nvcc_release: str | None = None, **env: str
          ) -> subprocess.CompletedProcess:
    """Run setup.sh for a venv that does not exist yet, in tmp_path."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    if nvcc_release:
        toolkit = tmp_path / f"cuda-{nvcc_release}" / "bin"
        toolkit.mkdir(parents=True)
        nvcc = toolkit / "nvcc"
        nvcc.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {nvcc_release}, "
                        f"V{nvcc_release}.140'\n")
        nvcc.chmod(0o755)
        env["NVCC"] = str(nvcc)
    full = {**os.environ, "VENV": str(tmp_path / "venv"), "PYTHON": BASE_PYTHON, **env}
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def commands(proc: subprocess.CompletedProcess) -> list[str]:
    return [line[2:] for line in proc.stdout.splitlines() if line.startswith("+ ")]


def test_cpu_plan_installs_tensorflow_cpu_and_builds_horovod_without_nccl(tmp_path):
    proc = setup(tmp_path, DRY_RUN="1", GPU="")
    assert proc.returncode == 0, proc.stderr
    plan = commands(proc)
    [stack] = [c for c in plan if " -r " in c]
    assert "tensorflow-cpu==2.15.1" in stack and "and-cuda" not in stack
    [horovod] = [c for c in plan if "horovod[spark]" in c]
    assert "--no-build-isolation" in horovod and "HOROVOD_WITH_GLOO=1" in horovod
    assert "NCCL" not in horovod
    assert any(c.endswith("install --no-deps --no-build-isolation -e .") for c in plan)
    assert "MISSING" not in proc.stdout
    assert not (tmp_path / "venv").exists()  # a dry run changes nothing


def test_gpu_plan_installs_the_cuda_build_and_builds_horovod_with_nccl(tmp_path):
    proc = setup(tmp_path, DRY_RUN="1", GPU="1", nvcc_release="12.2")
    assert proc.returncode == 0, proc.stderr
    assert "MISSING" not in proc.stdout
    plan = commands(proc)
    [stack] = [c for c in plan if " -r " in c]
    assert "tensorflow[and-cuda]==2.15.1" in stack and "tensorflow-cpu" not in stack
    nccl_home = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "nvidia" / "nccl"
    [horovod] = [c for c in plan if "horovod[spark]" in c]
    for setting in ("HOROVOD_GPU_OPERATIONS=NCCL", "HOROVOD_NCCL_LINK=SHARED",
                    f"HOROVOD_NCCL_HOME={nccl_home}", "--no-cache-dir",
                    f"HOROVOD_CUDA_HOME={tmp_path / 'cuda-12.2'}"):
        assert setting in horovod
    # The wheel has only libnccl.so.2; CMake looks for libnccl.so, before the build.
    link = plan.index(f"ln -sf libnccl.so.2 {nccl_home}/lib/libnccl.so")
    assert link < plan.index(horovod)
    assert "horovodrun --check-build: TensorFlow Gloo NCCL ticked" in plan


def test_the_requirements_file_minus_tensorflow_cpu_is_what_the_gpu_build_installs(tmp_path):
    # The filtered requirements are a temporary file: check the filter on the real file.
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    kept = subprocess.run(["grep", "-v", r"^tensorflow-cpu\b", str(ROOT / "requirements.txt")],
                          capture_output=True, text=True, check=False).stdout.splitlines()
    assert [ln for ln in lines if ln not in kept] == ["tensorflow-cpu"]


def test_gpu_setup_refuses_a_toolkit_of_another_cuda_major(tmp_path):
    proc = setup(tmp_path, GPU="1", nvcc_release="11.8")
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert "is CUDA 11; TensorFlow 2.15.1 needs CUDA 12" in line
    assert not (tmp_path / "venv").exists()  # refused before anything was installed


def test_gpu_setup_names_the_missing_nvcc(tmp_path):
    proc = setup(tmp_path, GPU="1", NVCC=str(tmp_path / "absent" / "nvcc"))
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert "GPU=1 needs nvcc from a CUDA 12 toolkit" in line


def test_runtime_plan_installs_the_wheel_and_no_development_tools(tmp_path):
    wheel = tmp_path / "actloss_pipeline-0.1.0-py3-none-any.whl"
    proc = setup(tmp_path, DRY_RUN="1", GPU="", WHEEL=str(wheel))
    assert proc.returncode == 0, proc.stderr
    plan = commands(proc)
    assert not any(" -r " in c or " -e ." in c for c in plan)  # no requirements.txt, no editable
    assert any(c.endswith(f"install --force-reinstall --no-deps {wheel}") for c in plan)
    assert any(c.endswith(f"install {wheel}[cpu] -c constraints.txt") for c in plan)
    gpu = commands(setup(tmp_path, DRY_RUN="1", GPU="1", WHEEL=str(wheel), nvcc_release="12.4"))
    assert any(c.endswith(f"install {wheel}[gpu] -c constraints.txt") for c in gpu)


def make_dry(*args: str) -> str:
    proc = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, env={**os.environ, "PIPELINE_SPARK_CONF": ""})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("target", ["data", "sweep", "report"])
def test_make_gives_spark_submit_the_properties_file(target):
    submits = [ln for ln in make_dry(target).splitlines() if "spark-submit" in ln]
    assert submits and all("--properties-file conf/spark/local.conf" in ln for ln in submits)


def test_make_runs_packed_executors_on_a_cluster_when_asked():
    out = make_dry("sweep", "PACKED=1", "MASTER=spark://h:7077",
                   "SPARK_CONF=conf/spark/gpu.conf")
    line = next(ln for ln in out.splitlines() if "spark-submit" in ln and "train_sweep.py" in ln)
    assert "--properties-file conf/spark/gpu.conf --master spark://h:7077" in line
    # make -n shows the escape make needs for "#"; bash drops the backslash.
    assert "--archives dist/actloss-env.tar.gz\\#environment" in line
    assert "--conf spark.pyspark.python=./environment/bin/python" in line
    assert "--archives" not in make_dry("sweep")


def test_runtime_plan_installs_the_declared_dependencies_without_the_project(tmp_path):
    import tomllib

    proc = setup(tmp_path, DRY_RUN="1", GPU="", RUNTIME="1")
    assert proc.returncode == 0, proc.stderr
    plan = commands(proc)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [deps] = [c for c in plan if "matplotlib" in c]
    assert deps.endswith(" ".join(declared) + " -c constraints.txt")
    assert not any(" -r " in c or " -e ." in c or ".whl" in c for c in plan)


def test_make_sweep_checks_the_names_before_any_jvm():
    """The name check (a plain Python process) comes before data preparation and the sweep,
    both spark-submit jobs, so a typo is refused before a JVM starts."""
    lines = make_dry("sweep", "DATASET=no-such-dataset").splitlines()
    check = next(k for k, ln in enumerate(lines) if "train_sweep.py --check" in ln)
    assert "spark-submit" not in lines[check]
    assert all(k > check for k, ln in enumerate(lines) if "spark-submit" in ln)
