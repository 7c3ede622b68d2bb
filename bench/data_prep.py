"""Data preparation: the Spark jobs against a single-process numpy/pyarrow baseline doing the
same work, and the driver's peak memory while the Spark jobs run.

- prepare: read MNIST's pkl.gz, bytes -> uint8, shuffle, shard, write Parquet (70,000 rows);
- augment: N distorted copies of each training image (the same distortion code both sides).

Each Spark job runs as its own spark-submit process; its driver's resident memory (the Python
process, not the JVM) is sampled while it runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent


def run_job(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS of the driver's Python process in MiB) of one spark-submit."""
    cmd = [str(Path(sys.executable).parent / "spark-submit"), *args]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, text=True)
    peak = 0
    while proc.poll() is None:
        try:  # spark-submit execs the JVM, which starts Python: find the Python child
            for p in psutil.Process(proc.pid).children(recursive=True):
                if "python" in p.name():
                    peak = max(peak, p.memory_info().rss)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.1)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args[:1])} failed: {proc.stderr.read()[-2000:]}")
    return time.perf_counter() - started, peak / 2**20


def baseline_prepare(raw: Path, out: Path, shards: int = 4, seed: int = 42) -> int:
    """The prepare job's work in one process: read, convert, shuffle, shard, write."""
    from pipeline.config import SourceConfig
    from pipeline.data.fetch import MNIST_PKL_SHA256
    from pipeline.data.sources import read_source

    data = read_source(SourceConfig(format="pkl_gz", path=str(raw), sha256=MNIST_PKL_SHA256))
    rng = np.random.default_rng(seed)
    rows = 0
    for split, (x, y) in data.splits.items():
        order = rng.permutation(len(y))
        flat = x.reshape(len(x), -1)[order]
        for i, idx in enumerate(np.array_split(np.arange(len(y)), shards)):
            table = pa.table({"label": pa.array(y[order][idx].astype(np.int32)),
                              "image": pa.array([r.tobytes() for r in flat[idx]],
                                                pa.binary())})
            (out / split).mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out / split / f"part-{i:05d}.parquet")
        rows += len(y)
    return rows


def baseline_augment(prepared: Path, out: Path, copies: int) -> int:
    """The augment job's work in one process, with the same distortion function."""
    from pipeline.data.augment import AugmentConfig, distort
    from pipeline.data.feed import read_shards
    from pipeline.data.manifest import load_manifest

    cfg = AugmentConfig(name="b", input=str(prepared), copies=copies)
    m = load_manifest(prepared)
    x, y = read_shards([prepared / "train" / s.file for s in m.splits["train"].shards],
                       m.image_shape)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for start in range(0, len(y), 5000):  # bounded batches, as the executors do
        images, labels = [], []
        for i in range(start, min(start + 5000, len(y))):
            images.append(x[i].tobytes())
            labels.append(int(y[i]))
            for c in range(copies):
                images.append(distort(x[i], np.random.default_rng([7, i, c]), cfg).tobytes())
                labels.append(int(y[i]))
        pq.write_table(pa.table({"label": pa.array(labels, pa.int32()),
                                 "image": pa.array(images, pa.binary())}),
                       out / f"part-{start:07d}.parquet")
        written += len(labels)
    return written


def measure(raw: Path, copies: int) -> dict:
    log4j = f"-Dlog4j2.configurationFile=file:{ROOT / 'conf' / 'spark' / 'log4j2.properties'}"
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "mnist.yaml"
        cfg.write_text((ROOT / "conf" / "data" / "mnist.yaml").read_text()
                       .replace("path: data/raw/mnist.pkl.gz", f"path: {raw}")
                       .replace("output: data/processed", f"output: {tmp / 'spark'}"))
        spark_s, spark_mem = run_job(["--driver-java-options", log4j, "jobs/prepare_data.py",
                                      "--config", str(cfg)])
        started = time.perf_counter()
        rows = baseline_prepare(raw, tmp / "numpy")
        numpy_s = time.perf_counter() - started

        aug = tmp / "aug.yaml"
        aug.write_text(f"name: x\ninput: {tmp / 'spark' / 'mnist'}\ncopies: {copies}\n"
                       f"shards: 8\noutput: {tmp / 'spark'}\n")
        aug_s, aug_mem = run_job(["--driver-java-options", log4j, "jobs/augment.py",
                                  "--config", str(aug)])
        started = time.perf_counter()
        aug_rows = baseline_augment(tmp / "spark" / "mnist", tmp / "numpy-aug", copies)
        aug_numpy_s = time.perf_counter() - started
    return {
        "prepare": {"rows": rows, "spark_seconds": spark_s, "numpy_seconds": numpy_s,
                    "spark_rows_per_sec": rows / spark_s, "numpy_rows_per_sec": rows / numpy_s,
                    "ratio_spark_over_numpy": numpy_s / spark_s,
                    "driver_peak_rss_mib": spark_mem},
        "augment": {"copies": copies, "rows_written": aug_rows, "spark_seconds": aug_s,
                    "numpy_seconds": aug_numpy_s, "spark_rows_per_sec": aug_rows / aug_s,
                    "numpy_rows_per_sec": aug_rows / aug_numpy_s,
                    "ratio_spark_over_numpy": aug_numpy_s / aug_s,
                    "driver_peak_rss_mib": aug_mem},
    }
