"""Successive halving: train every cell to a rung's budget, keep the best, go on with those.

Synchronous rungs. At each rung every surviving cell's replicates train to the rung's epoch
(resuming from their checkpoints) and pause; the driver then compares cells by the mean of
their replicates' validation metric at that same epoch, keeps the best ``1/eta`` of them and
marks the others' runs pruned (status ``pruned``, the epoch they reached, the decision in
words; checkpoints kept, so a later sweep can take them further). The last rung trains the
survivors to their full epochs, tested and recorded like any run. The decision is made on
the driver between rungs, while the groups' ranks wait on the board for their next trial
(driver.board): a rung costs no new launch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from pipeline.config.schema import HalvingConfig
from pipeline.tracking import runs as runs_store
from pipeline.tracking.store import Client
from pipeline.tracking.vocab import PAUSED, TAG_STATUS
from pipeline.train.contract import Trial

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rung:
    """One rung's decision: each cell's score at ``epoch``, the cells kept and pruned."""

    epoch: int
    metric: str
    scores: dict[str, float]  # cell hash -> mean over its replicates
    kept: list[str]
    pruned: list[str]


def budgets(epochs: int, cfg: HalvingConfig) -> list[int]:
    """The rungs' epochs: min_epochs, min_epochs x eta, ... while below ``epochs``, then
    ``epochs`` itself (the last rung trains the survivors to the end)."""
    out, budget = [], cfg.min_epochs
    while budget < epochs:
        out.append(budget)
        budget *= cfg.eta
    return [*out, epochs]


def decide(scores: dict[str, float], higher: bool, eta: int) -> tuple[list[str], list[str]]:
    """(kept, pruned): the best ceil(n / eta) cells go on; a cell without a score (a
    replicate diverged or failed) ranks last. Ties keep the plan's order."""
    def key(cell: str) -> float:
        value = scores[cell]
        if math.isnan(value):
            return math.inf
        return -value if higher else value

    ranked = sorted(scores, key=key)
    keep = math.ceil(len(ranked) / eta)
    return ranked[:keep], ranked[keep:]


def cell_scores(client: Client, exp_id: str, trials: list[Trial], metric: str,
                epoch: int) -> dict[str, float]:
    """Each cell's mean over its replicates of ``metric`` at ``epoch`` (the last logged value
    up to it, for a replicate that stopped early); NaN when a replicate has none."""
    runs = runs_store.latest_by_hash(client, exp_id, {t.config_hash for t in trials})
    values: dict[str, list[float]] = {}
    for trial in trials:
        run = runs.get(trial.config_hash)
        values.setdefault(trial.cell_hash, []).append(
            runs_store.value_before(client, run, metric, epoch) if run else math.nan)
    return {cell: float(np.mean(vs)) for cell, vs in values.items()}


def prune(client: Client, exp_id: str, trials: list[Trial], rung: Rung,
          higher: bool) -> list[str]:
    """Mark the paused runs of the rung's pruned cells pruned; their trial names."""
    cutoff = min((rung.scores[c] for c in rung.kept), key=lambda v: v if higher else -v)
    pruned = [t for t in trials if t.cell_hash in rung.pruned]
    runs = runs_store.latest_by_hash(client, exp_id, {t.config_hash for t in pruned})
    names = []
    for trial in pruned:
        run = runs.get(trial.config_hash)
        if run is None or run.data.tags.get(TAG_STATUS) != PAUSED:
            continue  # finished early (early stopping, divergence) or failed: stays so
        why = (f"pruned at epoch {rung.epoch}: mean {rung.metric} of its replicates "
               f"{rung.scores[trial.cell_hash]:.4f}, the kept {len(rung.kept)} of "
               f"{len(rung.scores)} configurations reached {cutoff:.4f} or better")
        runs_store.mark_pruned(client, run.info.run_id, why, rung.epoch)
        names.append(trial.name)
    return names


def run_rungs(client: Client, exp_id: str, trials: list[Trial], cfg: HalvingConfig,
              metric: tuple[str, bool], train: Callable[[list[Trial]], None],
              log: Callable[[str], None] = logger.info) -> tuple[list[Rung], list[str]]:
    """Every rung, from the first to the survivors' full training: (decisions, pruned runs).

    ``train`` trains a list of trials (all of them before it returns); ``metric`` is the
    validation metric and its direction (pipeline.tasks.validation_metric).
    """
    name, higher = metric
    epochs = max((t.config.training.epochs for t in trials), default=0)
    plan = budgets(epochs, cfg)
    alive = list(dict.fromkeys(t.cell_hash for t in trials))
    rungs: list[Rung] = []
    pruned: list[str] = []
    for i, epoch in enumerate(plan, 1):
        last = i == len(plan)
        todo = [replace(t, budget=None if last else epoch) for t in trials
                if t.cell_hash in alive]
        log(f"halving: rung {i}/{len(plan)}: {len(alive)} configurations "
            f"({len(todo)} runs) to epoch {epoch}")
        train(todo)
        if last:
            break
        scores = cell_scores(client, exp_id, todo, name, epoch)
        kept, dropped = decide(scores, higher, cfg.eta)
        rung = Rung(epoch, name, scores, kept, dropped)
        rungs.append(rung)
        pruned += prune(client, exp_id, todo, rung, higher)
        log(f"halving: rung {i}: kept {len(kept)} of {len(scores)} configurations by mean "
            f"{name} at epoch {epoch}; {len(dropped)} pruned")
        alive = kept
    return rungs, pruned
