"""How long the whole comparison takes: the default sweep scheduled four ways, side by side.

- plain: a single-process Keras loop over the same cells and replicates (same seeds, epochs,
  global batch, optimizer and schedule), with no Spark, Horovod or tracking;
- sequential: every rank on one trial at a time (``ranks_per_trial`` = the slots);
- concurrent: one-rank trials, as many at once as there are ranks (``ranks_per_trial: 1``;
  the layout a sweep takes by itself on one machine, pipeline.train.driver.layout);
- halving: successive halving on the concurrent layout.

Each reports wall time and the best cell by its replicates' mean test accuracy.
"""

from __future__ import annotations

import time
from collections import defaultdict

from bench import sweeps
from bench.common import ROOT, in_fresh_process

SWEEP = "conf/sweep/default.yaml"


def measure(spark, data_dir: str, quick: bool, log) -> dict:
    shrink = _quick() if quick else {}
    out = {"plain": in_fresh_process(plain_loop, data_dir, shrink)}
    log(f"  plain Keras loop: {out['plain']['wall_seconds']:.0f}s")
    every = spark.sparkContext.defaultParallelism  # local mode: the master's cores
    for name, fields in (("sequential", {"ranks_per_trial": every}),
                         ("concurrent", {"ranks_per_trial": 1}),
                         ("halving", {"ranks_per_trial": 1, "halving": _halving_on()})):
        swept = sweeps.run(spark, SWEEP, data_dir, **_sweep_fields(shrink), **fields)
        out[name] = {"wall_seconds": swept["wall_seconds"], **_best(swept["outcomes"])}
        log(f"  {name}: {out[name]['wall_seconds']:.0f}s, best {out[name]['best_cell']}")
    seq, conc = out["sequential"]["wall_seconds"], out["concurrent"]["wall_seconds"]
    out["ratios"] = {
        "sequential_over_plain": seq / out["plain"]["wall_seconds"],
        "concurrent_configs_per_hour_gain": seq / conc,
        "halving_over_full": out["halving"]["wall_seconds"] / conc,
        "halving_same_best": out["halving"]["best_cell"] == out["concurrent"]["best_cell"],
        "plain_best_minus_sweep_best": (out["plain"]["best_mean"]
                                        - out["sequential"]["best_mean"])}
    return out


def _quick() -> dict:
    return {"epochs": 1, "repeats": 1, "grid": {"model.hidden_activation": ["relu", "tanh"]}}


def _sweep_fields(shrink: dict) -> dict:
    if not shrink:
        return {}
    return {"epochs": shrink["epochs"], "grid": shrink["grid"], "repeats": shrink["repeats"]}


def _halving_on():
    from pipeline.config import HalvingConfig

    return HalvingConfig(enabled=True)


def _best(outcomes: list) -> dict:
    """The best cell by the mean test accuracy of its finished replicates."""
    by_cell: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        if o.status == "finished":
            by_cell[o.name.rsplit(" #", 1)[0]].append(o.metric("test_accuracy"))
    means = {cell: sum(v) / len(v) for cell, v in by_cell.items()}
    best = max(means, key=means.get)
    return {"best_cell": best, "best_mean": means[best], "cells_finished": len(means),
            "runs_finished": sum(len(v) for v in by_cell.values())}


def plain_loop(data_dir: str, shrink: dict) -> dict:
    """Every cell and replicate of the default sweep in this process, 2 threads, in memory."""
    from dataclasses import replace
    from pathlib import Path

    from bench.common import set_threads
    from pipeline.config import load_sweep_config
    from pipeline.data.manifest import load_manifest

    set_threads(2)
    sweep = load_sweep_config(ROOT / SWEEP)
    sweep = replace(sweep, **{k: v for k, v in shrink.items() if k in ("grid", "repeats")})
    manifest = load_manifest(Path(data_dir))
    arrays = _arrays(Path(data_dir), manifest)
    started = time.perf_counter()
    outcomes = [_fit_one(name, cfg, manifest, arrays)
                for name, cfg in _runs(sweep, shrink.get("epochs"))]
    return {"wall_seconds": time.perf_counter() - started, **_best(outcomes)}


def _runs(sweep, epochs: int | None):
    from pipeline.config import apply_overrides, expand_grid

    for point in expand_grid(sweep):
        cfg = point.config
        if epochs is not None:
            cfg = apply_overrides(cfg, {"training.epochs": epochs}, "bench")
        for r in range(sweep.repeats):
            seed = {"training.seed": cfg.training.seed + r}
            yield f"{point.name} #{r + 1}", apply_overrides(cfg, seed, "bench")


def _arrays(root, manifest) -> dict:
    from pipeline.data import feed

    return {split: feed.read_shards(manifest.shard_files(root, split, 0, 1), manifest.layout)
            for split in ("train", "test")}


def _fit_one(name: str, cfg, manifest, arrays: dict):
    import tensorflow as tf

    from pipeline.data.feed import unit_scale
    from pipeline.model import blocks
    from pipeline.model.build import build_for, encode_targets
    from pipeline.train.contract import TrialOutcome

    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(cfg.training.seed)
    problem = manifest.problem()
    built = build_for(cfg, problem)
    (x, y), (xt, yt) = arrays["train"], arrays["test"]
    batch = cfg.training.batch_size
    steps = len(y) // batch
    o = cfg.optimizer
    lr = blocks.learning_rate(o, o.learning_rate, steps)
    built.train.compile(optimizer=blocks.optimizer(o, lr), loss=built.loss)
    data = tf.data.Dataset.from_tensor_slices(
        (unit_scale(x), encode_targets(y, problem, built.label_encoding)))
    data = data.shuffle(len(y), seed=cfg.training.seed).batch(batch, drop_remainder=True)
    built.train.fit(data, epochs=cfg.training.epochs, verbose=0)
    scores = built.inference.predict(unit_scale(xt), batch_size=1024, verbose=0)
    accuracy = float((scores.argmax(axis=1) == yt).mean())
    return TrialOutcome(name, "", "finished", metrics={"test_accuracy": accuracy})
