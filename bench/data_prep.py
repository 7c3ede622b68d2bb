"""Data preparation: the Spark jobs against a single-process numpy/pyarrow baseline doing the
same work, and the driver's peak memory while the Spark jobs run.

- prepare: read MNIST's pkl.gz, bytes -> uint8, shuffle, shard, write Parquet (70,000 rows);
- augment: N distorted copies of each training image (the same distortion code both sides);
- prepare at x10: the augmented set (550,000 training rows) as a Parquet source: validate,
  carve a validation split, shuffle, shard, write.

Each Spark job runs as its own spark-submit process; its driver's peak resident memory (the
Python process, not the JVM) is its high-water mark, read while it runs.
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

from pipeline.data.arrow import pa, pq

ROOT = Path(__file__).resolve().parent.parent


def run_job(args: list[str], env: dict[str, str] | None = None,
            with_jvm: bool = False, log: Path | None = None) -> tuple[float, ...]:
    """(wall seconds, peak RSS of the driver's Python process in MiB) of one spark-submit;
    ``with_jvm`` adds the peak RSS of its JVM (in local mode, the executors' too); ``log``
    keeps the job's whole output, both streams (an error quotes only its end)."""
    cmd = [str(Path(sys.executable).parent / "spark-submit"), *args]
    started = time.perf_counter()
    with log.open("w+") if log else tempfile.TemporaryFile("w+") as err:
        # Both streams: a job's one-line refusal goes to stdout, Spark's log to stderr.
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=err, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, text=True)
        peak, jvm = _watch(proc)
        err.seek(0)
        tail = err.read()[-2000:]
    if proc.returncode:
        job = next((a for a in args if a.startswith("jobs/")), args[0])
        raise RuntimeError(f"{job} failed{f' (whole log: {log})' if log else ''}: {tail}")
    wall = time.perf_counter() - started
    return (wall, peak / 2**20, jvm / 2**20) if with_jvm else (wall, peak / 2**20)


def _watch(proc: subprocess.Popen, every: float = 0.25, rescan: float = 2.0) -> tuple[int, int]:
    """Peak RSS in bytes of the job's Python processes (its driver; in local mode also the
    executors' workers) and of its JVM, until the job ends.

    Each peak is the kernel's high-water mark of the process (VmHWM), so reading it now and
    then misses nothing the process reached before its last read. Listing the descendants
    walks every process on the machine, so it is done every ``rescan`` seconds only."""
    pythons: set[int] = set()
    peaks: dict[int, int] = {}
    scanned = float("-inf")
    while proc.poll() is None:
        if time.monotonic() - scanned >= rescan:
            pythons |= _python_descendants(proc.pid)
            scanned = time.monotonic()
        for pid in (proc.pid, *pythons):  # spark-submit execs the JVM under its own pid
            peaks[pid] = max(peaks.get(pid, 0), high_water_rss(pid))
        time.sleep(every)
    jvm = peaks.pop(proc.pid, 0)
    return max(peaks.values(), default=0), jvm


def _python_descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)
                if "python" in p.name()}
    except psutil.NoSuchProcess:
        return set()


def high_water_rss(pid: int) -> int:
    """The most resident memory process ``pid`` has had, in bytes (0: it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return 0


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


def baseline_augment(prepared: Path, out: Path, copies: int, limit: int | None = None) -> int:
    """The augment job's work in one process, with the same distortion function.

    ``limit``: only the first images (the rate per row is what is compared).
    """
    from pipeline.config import AugmentConfig
    from pipeline.data.augment import distort
    from pipeline.data.feed import read_shards
    from pipeline.data.manifest import load_manifest

    cfg = AugmentConfig(name="b", input=str(prepared), copies=copies)
    m = load_manifest(prepared)
    x, y = read_shards([prepared / "train" / s.file for s in m.splits["train"].shards],
                       m.image_shape)
    x, y = x[:limit], y[:limit]
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


def baseline_prepare_parquet(train: Path, test: Path, out: Path, shards: int = 16,
                             val_fraction: float = 0.1, seed: int = 42) -> int:
    """The Parquet-source prepare in one process: read, validate, carve val, shuffle, shard."""
    from pipeline.data.arrow import dataset_module
    from pipeline.data.feed import decode_images

    rng = np.random.default_rng(seed)
    rows = 0
    for name, folder in (("train", train), ("test", test)):
        table = dataset_module().dataset(folder, format="parquet").to_table(
            columns=["label", "image"])
        images = decode_images(table.column("image"), [28, 28, 1], folder)  # validates sizes
        labels = np.asarray(table.column("label"), np.int64)
        if labels.min() < 0:
            raise ValueError(f"{folder}: negative labels")
        order = rng.permutation(len(labels))
        n_val = int(len(labels) * val_fraction) if name == "train" else 0
        parts = {"val": order[:n_val], name: order[n_val:]} if n_val else {name: order}
        for split, idx in parts.items():
            _write_shards(out / split, images[idx], labels[idx], shards)
        rows += len(labels)
    return rows


def _write_shards(folder: Path, images: np.ndarray, labels: np.ndarray, shards: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    flat = images.reshape(len(images), -1)
    for i, idx in enumerate(np.array_split(np.arange(len(labels)), shards)):
        column = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(flat.shape[1]), len(idx), [None, pa.py_buffer(flat[idx].tobytes())])
        table = pa.table({"label": pa.array(labels[idx].astype(np.int32)),
                          "image": column.cast(pa.binary())})
        pq.write_table(table, folder / f"part-{i:05d}.parquet")


def measure_x10(augment_config: Path, baseline_images: int = 5000) -> dict:
    """Augment x10 for real (into the config's output), then prepare it as a Parquet source."""
    import yaml

    cfg = yaml.safe_load(augment_config.read_text())
    aug_s, aug_mem = run_job([*log4j_options(), "jobs/augment.py", "--config",
                              str(augment_config), "--force"])
    x10 = ROOT / cfg["output"] / cfg["name"]
    from pipeline.data.manifest import load_manifest

    rows = load_manifest(x10).splits["train"].rows
    with tempfile.TemporaryDirectory(prefix="bench-x10-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        base_rows = baseline_augment(ROOT / cfg["input"], tmp / "numpy-aug", cfg["copies"],
                                     limit=baseline_images)
        base_s = time.perf_counter() - started
        conf = tmp / "x10.yaml"
        conf.write_text(f"name: x10p\nsource:\n  format: parquet\n  path: {x10 / 'train'}\n"
                        f"  test_path: {x10 / 'test'}\nsplit:\n  val_fraction: 0.1\n"
                        f"  seed: 42\nshards: 16\noutput: {tmp / 'spark'}\n")
        prep_s, prep_mem = run_job([*log4j_options(), "jobs/prepare_data.py", "--config",
                                    str(conf)])
        started = time.perf_counter()
        prep_rows = baseline_prepare_parquet(x10 / "train", x10 / "test", tmp / "numpy")
        prep_numpy_s = time.perf_counter() - started
    return {
        "augment": {"copies": cfg["copies"], "rows_written": rows, "spark_seconds": aug_s,
                    "spark_rows_per_sec": rows / aug_s, "driver_peak_rss_mib": aug_mem,
                    "numpy_rows": base_rows, "numpy_rows_per_sec": base_rows / base_s,
                    "ratio_spark_over_numpy": (rows / aug_s) / (base_rows / base_s)},
        "prepare": {"rows": prep_rows, "spark_seconds": prep_s, "numpy_seconds": prep_numpy_s,
                    "spark_rows_per_sec": prep_rows / prep_s,
                    "numpy_rows_per_sec": prep_rows / prep_numpy_s,
                    "ratio_spark_over_numpy": prep_numpy_s / prep_s,
                    "driver_peak_rss_mib": prep_mem},
    }


def log4j_options() -> list[str]:
    conf = ROOT / "conf" / "spark" / "log4j2.properties"
    return ["--driver-java-options", f"-Dlog4j2.configurationFile=file:{conf}"]


def measure(raw: Path) -> dict:
    """Prepare MNIST from its pkl.gz: the Spark job against the one-process baseline."""
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        tmp = Path(tmp)
        cfg = tmp / "mnist.yaml"
        cfg.write_text((ROOT / "conf" / "data" / "mnist.yaml").read_text()
                       .replace("path: data/raw/mnist.pkl.gz", f"path: {raw}")
                       .replace("output: data/processed", f"output: {tmp / 'spark'}"))
        spark_s, spark_mem = run_job([*log4j_options(), "jobs/prepare_data.py", "--config",
                                      str(cfg)])
        started = time.perf_counter()
        rows = baseline_prepare(raw, tmp / "numpy")
        numpy_s = time.perf_counter() - started
    return {"prepare": {"rows": rows, "spark_seconds": spark_s, "numpy_seconds": numpy_s,
                        "spark_rows_per_sec": rows / spark_s,
                        "numpy_rows_per_sec": rows / numpy_s,
                        "ratio_spark_over_numpy": numpy_s / spark_s,
                        "driver_peak_rss_mib": spark_mem}}
