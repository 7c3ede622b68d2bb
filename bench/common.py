"""Helpers shared by the benchmark sections: timing callbacks, model set-up, subprocesses."""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def in_fresh_process(target: Callable[..., Any], *args: Any, timeout: float = 1800) -> Any:
    """Run ``target(*args)`` in a spawned Python, so TensorFlow starts with its own threads."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_call, args=(queue, target, args))
    proc.start()
    ok, value = queue.get(timeout=timeout)
    proc.join()
    if not ok:
        raise RuntimeError(f"{target.__name__} failed in its process: {value}")
    return value


def _call(queue: mp.Queue, target: Callable[..., Any], args: tuple) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        queue.put((True, target(*args)))
    except BaseException as exc:  # reported to the parent, which raises
        queue.put((False, f"{type(exc).__name__}: {exc}"))


def set_threads(intra: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, intra))


def compiled_model(arch: str, hidden: int, input_shape: list[int], wrap: Callable = lambda o: o):
    """The benchmark's model: the pipeline's own builder, Adam, the sweep's defaults."""
    import tensorflow as tf

    from pipeline.config import RunConfig, apply_overrides
    from pipeline.model import blocks
    from pipeline.model.build import build, class_accuracy

    overrides = {"model.architecture": arch, "model.hidden_layers": [hidden],
                 "training.seed": 1}
    cfg = apply_overrides(RunConfig(), overrides)
    tf.keras.utils.set_random_seed(1)
    built = build(cfg, input_shape, 10)
    built.train.compile(optimizer=wrap(blocks.optimizer(cfg.optimizer, 0.001)),
                        loss=built.loss, metrics=[class_accuracy])
    return built


def samples_per_sec(model, dataset, epochs: int, steps: int, global_batch: int,
                    callbacks: list | None = None) -> float:
    """Median global samples/s over the epochs after the first (which traces the graph)."""
    from pipeline.train.rank.callbacks import EpochClock

    clock = EpochClock(steps * global_batch)
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0,
                        callbacks=[*(callbacks or []), clock])
    return median(history.history["samples_per_sec"][1:])
