"""Functions that run on Horovod ranks in tests (importable by the ranks, unlike test modules)."""

from __future__ import annotations

import numpy as np


def diagnostics_one_and_two_ranks(seed: int = 3, rows: int = 64) -> dict:
    """On each rank: the diagnostics after one data-parallel SGD step on this rank's half of a
    fixed batch (``two``), and after one single-process step on the whole batch from the same
    initial weights (``one``). Averaged gradients make both steps the same update, so the
    diagnostics on the same probe must agree: exactly across ranks, to rounding with one rank.
    """
    import tensorflow as tf

    from pipeline.config import ModelConfig, RunConfig
    from pipeline.model.build import build, encode_labels
    from pipeline.train.rank import distributed
    from pipeline.train.rank.diagnostics import Probe, measure

    distributed.init()
    rank, size = distributed.rank(), distributed.size()
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 6), dtype=np.float32)
    labels = rng.integers(0, 3, rows)
    cfg = RunConfig(model=ModelConfig(hidden_layers=[8], hidden_activation="tanh"),
                    loss="categorical_crossentropy")
    out = {"rank": rank, "size": size}
    for name, ranks in (("two", size), ("one", 1)):
        tf.keras.utils.set_random_seed(seed)  # the same initial weights for both models
        built = build(cfg, (6,), 3)
        y = encode_labels(labels, 3, built.label_encoding).numpy()
        probe = Probe(x[:16], y[:16])
        if name == "one":
            out["init"] = measure(built.train, built.loss, probe, "softmax", "tanh")
        sgd = tf.keras.optimizers.SGD(0.5)
        built.train.compile(optimizer=distributed.optimizer(sgd, summed=False) if ranks > 1
                            else sgd, loss=built.loss)
        mine = slice(rank, None, ranks)  # each rank's half, or everything on one rank
        built.train.fit(x[mine], y[mine], batch_size=rows // ranks, epochs=1, shuffle=False,
                        verbose=0)
        out[name] = measure(built.train, built.loss, probe, cfg.model.output_activation,
                            cfg.model.hidden_activation)
    return out
