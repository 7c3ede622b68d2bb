"""MNIST-8M scale, opt-in (`make bench-scale`): every stage on about 8.1 million training rows.

1. augment: 161 distorted copies of each of MNIST's 50,000 training images plus the originals
   (8,100,000 rows), each copy a pure function of (seed, image content, copy);
2. prepare: that set as a Parquet source (validate, carve a validation split, shuffle, shard);
3. train: one epoch of one configuration, streamed from the prepared shards on 2 ranks, against
   the same epoch on MNIST in the same run (the rank's peak memory ratio is the figure).

Each stage records wall time, rows/s and peak resident memory: the Spark driver's Python process
and its JVM (which, in local mode, also runs the executors) for the jobs, each rank for training.
The sets are written beside the MNIST dataset (data/processed/) and kept (`--keep`), or
removed at the end; when a stage fails the sets are removed and the jobs' logs kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from bench import sweeps
from bench.data_prep import log4j_options, run_job

COPIES = 161  # 50,000 x (161 + 1) = 8,100,000 training rows
FULL_SHARDS = 64  # what the 8.1 million rows are written as


def shards_for(copies: int) -> int:
    """Output shards: 64 at full scale; a few copies of a small set get 4 per copy, so a smoke
    run of the section does not write and read back a hundred near-empty files per stage."""
    return min(FULL_SHARDS, 4 * max(copies, 1))


ONE_CONFIG = {"model.hidden_activation": ["relu"],
              "head": [{"model.output_activation": "softmax",
                        "loss": "categorical_crossentropy"}]}


def measure(spark, mnist: Path, copies: int, keep: bool, log) -> dict:
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-8m-", dir=mnist.parent))  # beside MNIST
    try:
        aug = _augment(mnist, work, copies)
        log(f"  augment: {aug['rows']} rows in {aug['seconds']:.0f}s")
        prep = _prepare(work / "mnist_8m_aug", work, shards_for(copies))
        log(f"  prepare: {prep['rows']} rows in {prep['seconds']:.0f}s")
        train = _train(spark, mnist, work / "mnist_8m")
        log(f"  one epoch: {train['big']['rows']} rows in {train['big']['epoch_seconds']:.0f}s")
    except BaseException:
        # The generated sets go (gigabytes), the jobs' logs stay: the error names them.
        for name in ("mnist_8m_aug", "mnist_8m"):
            shutil.rmtree(work / name, ignore_errors=True)
        raise
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return {"copies": copies, "augment": aug, "prepare": prep, "train": train,
            "total_seconds": time.perf_counter() - started,
            "kept_at": str(work) if keep else None}


def _augment(mnist: Path, work: Path, copies: int) -> dict:
    conf = work / "augment.yaml"
    conf.write_text(f"name: mnist_8m_aug\ninput: {mnist}\ncopies: {copies}\n"
                    "keep_original: true\nseed: 7\nrotation_degrees: 12\nshift_pixels: 2\n"
                    f"scale: 0.1\nelastic: false\nshards: {shards_for(copies)}\n"
                    "rows_per_batch: 200\n"
                    f"output: {work}\n")  # 200 inputs -> 32,400 rows per Arrow batch
    seconds, py_mib, jvm_mib = run_job([*log4j_options(), *_memory(), "jobs/augment.py",
                                        "--config", str(conf)], with_jvm=True,
                                       log=work / "augment.log")
    return _stage(work / "mnist_8m_aug", seconds, py_mib, jvm_mib)


def _prepare(source: Path, work: Path, shards: int) -> dict:
    conf = work / "prepare.yaml"
    conf.write_text(f"name: mnist_8m\nsource:\n  format: parquet\n  path: {source / 'train'}\n"
                    f"  test_path: {source / 'test'}\nsplit:\n  val_fraction: 0.01\n"
                    f"  seed: 42\nshards: {shards}\noutput: {work}\n")
    seconds, py_mib, jvm_mib = run_job([*log4j_options(), *_memory(), "jobs/prepare_data.py",
                                        "--config", str(conf)], with_jvm=True,
                                       log=work / "prepare.log")
    return _stage(work / "mnist_8m", seconds, py_mib, jvm_mib)


def _memory() -> list[str]:
    """The JVM's heap: in local mode it holds the executors. The prepare job's stratified carve
    is a window per label, so each label's 810,000 rows become one cached partition of about
    650 MB; reading two back at once failed at 1g and at 4g (Java heap space)."""
    return ["--driver-memory", os.environ.get("BENCH_8M_DRIVER_MEMORY", "10g")]


def _stage(dataset: Path, seconds: float, py_mib: float, jvm_mib: float) -> dict:
    from pipeline.data.manifest import load_manifest

    rows = load_manifest(dataset).splits["train"].rows
    return {"rows": rows, "seconds": seconds, "rows_per_sec": rows / seconds,
            "driver_python_peak_rss_mib": py_mib, "driver_jvm_peak_rss_mib": jvm_mib,
            "disk_mib": sum(f.stat().st_size for f in dataset.rglob("*") if f.is_file())
            / 2**20}


def _train(spark, mnist: Path, big: Path) -> dict:
    from pipeline.data.manifest import load_manifest

    out = {}
    for name, data in (("mnist", mnist), ("big", big)):
        swept = sweeps.run(spark, "conf/sweep/default.yaml", str(data), epochs=1,
                           grid=ONE_CONFIG, feed="stream", repeats=1)
        outcome = swept["outcomes"][0]
        rows = load_manifest(data).splits["train"].rows
        out[name] = {"rows": rows, "wall_seconds": swept["wall_seconds"],
                     "epoch_seconds": outcome.train_seconds,
                     "rows_per_sec": rows / outcome.train_seconds,
                     "test_accuracy": outcome.metric("test_accuracy"),
                     "rank_peak_rss_mib": swept["rank_peak_rss_mib"]}
    out["rank_peak_ratio"] = max(out["big"]["rank_peak_rss_mib"]) / max(
        out["mnist"]["rank_peak_rss_mib"])
    return out
