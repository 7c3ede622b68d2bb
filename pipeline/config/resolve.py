"""The sweep as it will run: the file's settings with the command line's merged in, every
range checked, in one place and before any JVM starts.

``resolve`` is what the job calls right after loading the file (so a bad ``--repeats`` or a
grid point with ``training.epochs: 0`` is refused in one line, with no Spark session), and
what the driver calls again for callers that build a sweep in Python; it is idempotent.
What depends on the dataset (a head against the task, a batch split over the ranks) or on
the cluster (the slots) is checked where those are known, and only there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pipeline.config.grid import apply_overrides, expand_grid
from pipeline.config.schema import MAX_REPEATS, GridPoint, RunConfig, SweepConfig, check_at_most
from pipeline.errors import ConfigError

SEED_LIMIT = 2**32  # NumPy's and TensorFlow's seeds


@dataclass(frozen=True)
class Overrides:
    """What the command line (or a Python caller) sets over the sweep file; None: the file's."""

    epochs: int | None = None
    repeats: int | None = None
    num_proc: int | None = None
    ranks_per_trial: int | None = None
    halving: bool | None = None
    racing: bool | None = None


@dataclass(frozen=True)
class Resolved:
    """The merged sweep (schedule switches, replicates, ranks) and its grid points, each
    with the command line's epochs applied and its numbers checked."""

    sweep: SweepConfig
    points: list[GridPoint]


def resolve(sweep: SweepConfig, given: Overrides = Overrides()) -> Resolved:
    _check_counts(given)
    halving = sweep.halving.enabled if given.halving is None else given.halving
    racing = sweep.racing.enabled if given.racing is None else given.racing
    if halving and racing:  # halving stops cells by epochs, racing by replicates
        raise ConfigError("racing and halving are mutually exclusive: turn one off "
                          "(--no-halving or --no-racing)")
    # Racing plans every replicate a cell may get; the race picks which train.
    repeats = sweep.racing.max_replicates if racing else given.repeats or sweep.repeats
    merged = replace(sweep, repeats=repeats, num_proc=given.num_proc or sweep.num_proc,
                     ranks_per_trial=given.ranks_per_trial or sweep.ranks_per_trial,
                     halving=replace(sweep.halving, enabled=halving),
                     racing=replace(sweep.racing, enabled=racing))
    points = [_with_epochs(p, given.epochs) for p in expand_grid(merged)]
    for point in points:
        check_numbers(point.name, point.config)
    if racing:
        _check_budget(merged, len(points))
    return Resolved(merged, points)


def _check_counts(given: Overrides) -> None:
    for flag, value in (("--epochs", given.epochs), ("--repeats", given.repeats),
                        ("--num-proc", given.num_proc),
                        ("--ranks-per-trial", given.ranks_per_trial)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag}: must be at least 1, got {value}")
    if given.repeats is not None:
        check_at_most("--repeats", given.repeats, "1", MAX_REPEATS)


def _with_epochs(point: GridPoint, epochs: int | None) -> GridPoint:
    if epochs is None:
        return point
    return replace(point, config=apply_overrides(point.config, {"training.epochs": epochs},
                                                 "--epochs"))


def _check_budget(sweep: SweepConfig, cells: int) -> None:
    cfg = sweep.racing
    budget = cfg.budget_runs or cells * cfg.max_replicates
    if budget < cells * cfg.initial:
        raise ConfigError(f"racing.budget_runs: {budget} is below the first round's "
                          f"{cells} configurations x {cfg.initial} initial replicates")


def check_numbers(name: str, cfg: RunConfig) -> None:
    """Values the types admit but training cannot use, refused before anything starts (in a
    rank they would fail one configuration after another, or train on NaN)."""
    o, m, t = cfg.optimizer, cfg.model, cfg.training
    es = t.early_stopping
    rules = [
        (t.epochs >= 1, "training.epochs must be at least 1", t.epochs),
        (t.batch_size >= 1, "training.batch_size must be at least 1", t.batch_size),
        (_at_least_zero(o.learning_rate), "optimizer.learning_rate must be a finite number >= 0",
         o.learning_rate),
        (_at_least_zero(o.momentum), "optimizer.momentum must be a finite number >= 0",
         o.momentum),
        (_positive(o.decay_rate), "optimizer.decay_rate must be a finite number above 0",
         o.decay_rate),
        (o.decay_steps >= 1, "optimizer.decay_steps must be at least 1", o.decay_steps),
        (_at_least_zero(o.warmup_epochs), "optimizer.warmup_epochs must be a finite number >= 0",
         o.warmup_epochs),
        (0.0 <= m.dropout < 1.0, "model.dropout must be in [0, 1)", m.dropout),
        (all(units >= 1 for units in m.hidden_layers),
         "model.hidden_layers: every layer needs at least 1 unit", list(m.hidden_layers)),
        (0 <= t.seed < SEED_LIMIT, "training.seed must be in [0, 2**32)", t.seed),
        (es.patience >= 0, "training.early_stopping.patience must be at least 0", es.patience),
        (_at_least_zero(es.min_delta),
         "training.early_stopping.min_delta must be a finite number >= 0", es.min_delta),
    ]
    for ok, rule, value in rules:
        if not ok:
            raise ConfigError(f"{name}: {rule}, got {value}")


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _at_least_zero(x: float) -> bool:
    return math.isfinite(x) and x >= 0
