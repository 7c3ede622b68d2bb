"""Training throughput: Horovod on Spark (2 ranks) against plain single-process Keras.

Both sides train the same model on the same prepared data with the same global batch and the
same total number of threads; each reports samples/s over the epochs after a warm-up epoch.
The two are measured in one run, alternately, and compared as a ratio of medians, because these
machines are shared and noisy.

    python bench/run.py [--data data/processed/mnist] [--repeats 3] [--epochs 3] [--quick]

Writes bench/results/latest.json and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: `python bench/run.py`


@dataclass(frozen=True)
class Setup:
    data_dir: str
    global_batch: int
    epochs: int
    hidden: int
    threads_total: int = 2
    ranks: int = 2


def _train_and_time(x, y, setup: Setup, local_batch: int, steps: int, fit_kwargs: dict) -> float:
    """Samples/s (global) over the epochs after the first."""
    import tensorflow as tf

    from pipeline.config import RunConfig, apply_overrides
    from pipeline.data.feed import to_dataset
    from pipeline.model import blocks
    from pipeline.model.build import build, class_accuracy, encode_labels
    from pipeline.train.callbacks import EpochClock

    cfg = apply_overrides(RunConfig(), {"model.hidden_layers": [setup.hidden], "training.seed": 1})
    tf.keras.utils.set_random_seed(1)
    built = build(cfg, x.shape[1:], 10)
    opt = fit_kwargs.pop("wrap", lambda o: o)(blocks.optimizer(cfg.optimizer, 0.001))
    built.train.compile(optimizer=opt, loss=built.loss, metrics=[class_accuracy])
    ds = to_dataset(x, encode_labels(y, 10, built.label_encoding), local_batch, shuffle_seed=1,
                    repeat=True)
    clock = EpochClock(steps * setup.global_batch)
    history = built.train.fit(ds, epochs=setup.epochs, steps_per_epoch=steps, verbose=0,
                              callbacks=[*fit_kwargs.get("callbacks", []), clock])
    return statistics.median(history.history["samples_per_sec"][1:])


def plain_keras(setup: Setup, queue: mp.Queue) -> None:
    """One process, all threads, the whole train split in memory."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(setup.threads_total)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    from pipeline.data import feed
    from pipeline.data.manifest import load_manifest

    root = Path(setup.data_dir)
    manifest = load_manifest(root)
    x, y = feed.rank_split(root, manifest, "train", 0, 1)
    steps = len(y) // setup.global_batch
    queue.put(_train_and_time(x, y, setup, setup.global_batch, steps, {}))


def horovod_rank(setup: Setup) -> float:
    """Runs in every Horovod rank: own shards, 1/ranks of the batch and of the threads."""
    import tensorflow as tf

    threads = max(1, setup.threads_total // setup.ranks)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    import horovod.tensorflow as hvd_tf
    import horovod.tensorflow.keras as hvd

    from pipeline.data import feed
    from pipeline.data.manifest import load_manifest

    hvd.init()
    root = Path(setup.data_dir)
    manifest = load_manifest(root)
    x, y = feed.rank_split(root, manifest, "train", hvd.rank(), hvd.size())
    local = setup.global_batch // hvd.size()
    steps = feed.steps_per_epoch(manifest, "train", hvd.size(), local)

    class Broadcast(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            hvd_tf.broadcast_variables(self.model.variables, root_rank=0)

    return _train_and_time(x, y, setup, local, steps,
                           {"wrap": hvd.DistributedOptimizer, "callbacks": [Broadcast()]})


def measure_plain(setup: Setup) -> float:
    ctx = mp.get_context("spawn")  # a fresh TensorFlow with its own thread settings
    queue = ctx.Queue()
    proc = ctx.Process(target=plain_keras, args=(setup, queue))
    proc.start()
    value = queue.get(timeout=1800)
    proc.join()
    return value


def measure_horovod(setup: Setup) -> float:
    import horovod.spark

    per_rank = horovod.spark.run(horovod_rank, args=(setup,), num_proc=setup.ranks,
                                 use_gloo=True, verbose=0,
                                 env={"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)})
    return per_rank[0]


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("tensorflow-cpu", "horovod", "pyspark", "mlflow", "numpy")
    return {n: version(n) for n in names} | {"python": platform.python_version()}


def write_results(results: dict, out_dir: Path, markdown: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    t = results["training_throughput"]
    lines = [
        "# Benchmarks", "",
        f"Measured {results['date']} on {results['machine']['cpus']} cores "
        f"({results['machine']['platform']}); medians of {t['repeats']} alternating runs.", "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), "",
        "## Training throughput (MLP, MNIST train split, samples/s)", "",
        "| setup | global batch | samples/s (median) | runs |",
        "|---|---|---|---|",
        f"| plain Keras, 1 process x {t['threads_total']} threads | {t['global_batch']} | "
        f"{t['plain_median']:.0f} | {', '.join(f'{v:.0f}' for v in t['plain'])} |",
        f"| Horovod on Spark, {t['ranks']} ranks x {t['threads_total'] // t['ranks']} thread | "
        f"{t['global_batch']} | {t['horovod_median']:.0f} | "
        f"{', '.join(f'{v:.0f}' for v in t['horovod'])} |",
        "", f"Ratio Horovod / plain: **{t['ratio']:.2f}**", "",
    ]
    if "data_preparation" in results:
        lines += _data_prep_lines(results["data_preparation"])
    markdown.write_text("\n".join(lines))


def _data_prep_lines(d: dict) -> list[str]:
    p, a = d["prepare"], d["augment"]
    return [
        "## Data preparation (MNIST)", "",
        "| job | rows | Spark local[2] rows/s | single-process numpy/pyarrow rows/s | "
        "Spark / numpy | driver peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
        f"| prepare (pkl.gz -> sharded Parquet) | {p['rows']} | {p['spark_rows_per_sec']:.0f} | "
        f"{p['numpy_rows_per_sec']:.0f} | {p['ratio_spark_over_numpy']:.2f} | "
        f"{p['driver_peak_rss_mib']:.0f} |",
        f"| augment (x{a['copies']} distorted copies) | {a['rows_written']} | "
        f"{a['spark_rows_per_sec']:.0f} | {a['numpy_rows_per_sec']:.0f} | "
        f"{a['ratio_spark_over_numpy']:.2f} | {a['driver_peak_rss_mib']:.0f} |",
        "",
        "Spark's wall time includes its start-up (JVM, session) in each job. The pkl.gz reader "
        "loads the pickle in the driver (it is one pickled object); the augment job's driver "
        "holds no rows.", "",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "data" / "processed" / "mnist"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--global-batch", type=int, default=256)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    p.add_argument("--raw", default=str(ROOT / "data" / "raw" / "mnist.pkl.gz"),
                   help="MNIST pkl.gz for the data-preparation benchmark")
    p.add_argument("--copies", type=int, default=4, help="augment benchmark: copies per image")
    p.add_argument("--skip-data-prep", action="store_true")
    args = p.parse_args(argv)

    from pipeline.spark import build_session

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    build_session(overrides={"spark.master": "local[2]"})
    setup = Setup(str(Path(args.data).resolve()), args.global_batch, args.epochs, args.hidden)
    plain, hvd_runs = [], []
    for i in range(args.repeats):  # alternate, so drift in machine load hits both sides
        plain.append(measure_plain(setup))
        hvd_runs.append(measure_horovod(setup))
        print(f"run {i + 1}/{args.repeats}: plain {plain[-1]:.0f}/s, "
              f"horovod {hvd_runs[-1]:.0f}/s", flush=True)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "training_throughput": {
            "model": f"mlp 784-{args.hidden}-10", "global_batch": args.global_batch,
            "epochs": args.epochs, "repeats": args.repeats, "ranks": setup.ranks,
            "threads_total": setup.threads_total, "plain": plain, "horovod": hvd_runs,
            "plain_median": statistics.median(plain),
            "horovod_median": statistics.median(hvd_runs),
            "ratio": statistics.median(hvd_runs) / statistics.median(plain),
        },
    }
    if not args.skip_data_prep:
        from bench.data_prep import measure

        results["data_preparation"] = measure(Path(args.raw).resolve(), args.copies)
    write_results(results, Path(args.out), Path(args.markdown))
    print(f"ratio horovod/plain = {results['training_throughput']['ratio']:.2f}; "
          f"wrote {args.out}/latest.json and {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
