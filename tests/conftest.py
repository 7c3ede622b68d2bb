"""Shared fixtures: tiny datasets written as real files, a local Spark session, job loaders."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


def submit_env(**extra: str) -> dict[str, str]:
    """Environment for a spark-submit child: loopback, this venv's Python, plus ``extra``."""
    return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable, **extra}


def load_job(name: str) -> ModuleType:
    """Import jobs/<name>.py as a module so tests can call its main(argv)."""
    spec = importlib.util.spec_from_file_location(f"jobs_{name}", ROOT / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_images(n: int, num_classes: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images: class k lights up horizontal band k, on top of noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, side, side), dtype=np.uint8)
    band = side // num_classes
    for k in range(num_classes):
        rows = labels == k
        images[rows, k * band:(k + 1) * band, :] += 150
    return images, labels.astype(np.uint8)


def write_npz(path: Path, n_train: int = 480, n_test: int = 160, num_classes: int = 4,
              side: int = 12) -> Path:
    x_train, y_train = make_images(n_train, num_classes, side, seed=1)
    x_test, y_test = make_images(n_test, num_classes, side, seed=2)
    np.savez_compressed(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def write_data_config(folder: Path, source: Path, fmt: str = "npz", shards: int = 4,
                      name: str = "tiny", sha256: str | None = None) -> Path:
    cfg = folder / f"{name}.yaml"
    sha_line = f"\n  sha256: {sha256}" if sha256 else ""
    cfg.write_text(
        f"name: {name}\nsource:\n  format: {fmt}\n  path: {source}{sha_line}\n"
        f"split:\n  val_fraction: 0.25\n  seed: 7\nshards: {shards}\n"
        f"output: {folder / 'processed'}\n"
    )
    return cfg


def prepare_tiny(root: Path, **sizes: int) -> Path:
    """A tiny npz (``write_npz`` sizes) prepared by the real job; returns the dataset folder."""
    cfg = write_data_config(root, write_npz(root / "d.npz", **sizes))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return root / "processed" / "tiny"


@pytest.fixture(scope="session")
def spark():
    from pipeline.spark import build_session

    session = build_session(overrides={"spark.master": "local[2]", "spark.ui.enabled": "false"})
    yield session
    session.stop()


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A fresh SQLite MLflow store per test, removed with tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size_kb)`` -> the mount point of a fresh tmpfs, unmounted after the test."""
    from tests.disk import mount_tmpfs, unmount

    mounted = []

    def make(size_kb: int) -> Path:
        mounted.append(mount_tmpfs(tmp_path / f"disk{len(mounted)}", size_kb))
        return mounted[-1]

    yield make
    for folder in mounted:
        unmount(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MlflowServer:
    """A real ``mlflow server`` process on 127.0.0.1 (its own process group, so it can be
    killed whole), artifacts under ``folder``."""

    backend_uri: str
    folder: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> MlflowServer:
        log = self.folder / "server.log"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
             "--port", str(self.port), "--backend-store-uri", self.backend_uri,
             "--artifacts-destination", (self.folder / "mlartifacts").as_uri(),
             "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=log.open("a"), start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return self
            except OSError:
                assert self.process.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"MLflow server not up in {timeout} s"
                time.sleep(0.5)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
