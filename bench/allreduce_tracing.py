"""A rank's first trials with Horovod's own gradient allreduce (traced through AutoGraph)
against the ranks' optimizer (pipeline.train.rank.distributed.optimizer, traced as plain
Python), each in a fresh interpreter, alternating.

    python bench/allreduce_tracing.py [--pairs 3] [--trials 3]

Each trial builds a small MLP, wraps its optimizer and fits one epoch of 600 rows on one
Horovod rank; the CPU seconds of each trial are printed, the first one including the tracing
every rank pays once.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRIALS = """
import resource, sys
import numpy as np
import tensorflow as tf
import horovod.tensorflow.keras as hvd
from pipeline.train.rank import distributed

hvd.init()
ours = sys.argv[1] == "plain"
x = np.random.default_rng(0).random((600, 144), dtype=np.float32)
y = np.arange(600) % 4
for _ in range(int(sys.argv[2])):
    used = resource.getrusage(resource.RUSAGE_SELF)
    start = used.ru_utime + used.ru_stime
    model = tf.keras.Sequential([tf.keras.Input((144,)), tf.keras.layers.Dense(8, "relu"),
                                 tf.keras.layers.Dense(4, "softmax")])
    inner = tf.keras.optimizers.legacy.SGD(0.01)
    opt = distributed.optimizer(inner, False) if ours else hvd.DistributedOptimizer(inner)
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, validation_data=(x[:100], y[:100]))
    used = resource.getrusage(resource.RUSAGE_SELF)
    print(used.ru_utime + used.ru_stime - start)
"""


def trial_cpu(mode: str, trials: int) -> list[float]:
    proc = subprocess.run([sys.executable, "-c", TRIALS, mode, str(trials)], cwd=ROOT,
                          capture_output=True, text=True, check=True,
                          env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    return [float(line) for line in proc.stdout.split()[-trials:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args(argv)
    firsts: dict[str, list[float]] = {"autograph": [], "plain": []}
    for _ in range(args.pairs):
        for mode in firsts:
            cpu = trial_cpu(mode, args.trials)
            firsts[mode].append(cpu[0])
            print(f"{mode:9s} CPU s per trial: " + " ".join(f"{c:.2f}" for c in cpu), flush=True)
    auto, plain = (statistics.median(firsts[m]) for m in ("autograph", "plain"))
    print(f"first trial, median: AutoGraph {auto:.2f} s, plain {plain:.2f} s, "
          f"ratio {plain / auto:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
