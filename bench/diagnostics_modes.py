"""The per-epoch diagnostics measured eagerly against traced once as a tf.function.

    python bench/diagnostics_modes.py [--calls 8]

For MLPs of one and five hidden layers on a 256-row MNIST-shaped probe: the seconds of each
call in turn (the traced mode's first call includes the tracing), and how many measurements a
run must make before tracing pays: the break-even behind diagnostics.TRACE_AFTER.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SHAPES = ((256, 1), (64, 5), (256, 5))  # (width, hidden layers)


def _model(width: int, depth: int):
    import tensorflow as tf

    keras = tf.keras
    inputs = keras.Input((784,))
    x = inputs
    for _ in range(depth):
        x = keras.layers.Dense(width, activation="tanh")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def timings(width: int, depth: int, calls: int, compiled: bool) -> list[float]:
    import tensorflow as tf

    from pipeline.train.rank.diagnostics import Measurer, Probe

    rng = np.random.default_rng(0)
    probe = Probe(tf.constant(rng.random((256, 784), dtype=np.float32)),
                  tf.constant(np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]))
    loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True)
    measurer = Measurer(_model(width, depth), loss, "softmax", "tanh", compiled=compiled)
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        measurer(probe)
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=8)
    args = p.parse_args(argv)
    timings(8, 1, 2, compiled=False)  # TensorFlow's own first-op start-up, outside the table
    print("| hidden layers | traced: first call, then each | eager: each "
          "| break-even measurements |")
    print("|---|---|---|---|")
    for width, depth in SHAPES:
        traced = timings(width, depth, args.calls, compiled=True)
        eager = timings(width, depth, args.calls, compiled=False)
        each_traced, each_eager = np.median(traced[1:]), np.median(eager)
        trace = traced[0] - each_traced
        even = trace / max(each_eager - each_traced, 1e-9)
        print(f"| {depth} x {width} | {traced[0]:.3f} s, then {each_traced * 1e3:.1f} ms | "
              f"{each_eager * 1e3:.1f} ms | {even:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
