"""Racing: replicates spent where the answer is still open.

Round 1 trains replicates 0..initial-1 of every cell. After each round the driver reads every
cell's replicates back from MLflow (the last epoch's validation metric of finished runs; a
failed or diverged replicate is NaN and counts against its cell) and judges them with
:mod:`pipeline.report.verdicts`, the report's own rule, at the sweep's ``report.min_effect``.
Cells still "undecided" get their next replicate (the same seed as that replicate in every
other cell, so comparisons stay paired); "best", "tied" and "worse" cells stop. The race ends
when no cell is undecided, none has a replicate left, or ``budget_runs`` runs exist.

Resumable: the decisions are recomputed from the store every round, never carried in memory,
so a relaunched sweep skips the replicates already done and goes on from the same verdicts.
Every cell's runs are tagged with why the cell has the replicates it has (``race``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.config.schema import RacingConfig
from pipeline.report import verdicts
from pipeline.report.verdicts import CellVerdict
from pipeline.tracking import runs as runs_store
from pipeline.tracking.store import Client
from pipeline.tracking.vocab import FINISHED, TAG_STATUS
from pipeline.train.contract import Trial

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    """One round's decision: the verdicts it rests on, the cells given another replicate and
    the runs that existed before it (``spent``)."""

    number: int
    verdicts: list[CellVerdict]
    given: list[str]
    spent: int


@dataclass(frozen=True)
class Race:
    """What the race decided: its rounds and each cell's stop reason (the ``race`` tag)."""

    rounds: list[Round]
    reasons: dict[str, str]
    budget: int


def give(judged: list[CellVerdict], left: dict[str, int], room: int) -> list[str]:
    """The cells that get another replicate, while the budget has ``room``: the undecided ones
    with a replicate left, closest to the best first, and the best cell itself while any is
    undecided (the intervals are of differences to it, paired by seed: they narrow only if
    both sides get the new seed). Room for the best alone buys nothing: then none."""
    open_cells = [c for c in verdicts.undecided(judged) if left.get(c, 0) > 0]
    best = [v.cell for v in judged if v.verdict == "best" and left.get(v.cell, 0) > 0]
    chosen = [*best, *open_cells][:max(room, 0)]
    return chosen if set(chosen) & set(open_cells) else []


def stop_reason(v: CellVerdict, n: int, left: int, min_effect: float) -> str:
    """Why a cell that gets no further replicate has ``n``: its verdict, or what ran out."""
    if v.verdict == "best":
        return f"best after {n}"
    if v.verdict == "tied":
        return f"resolved tied within {min_effect:g} after {n}"
    if v.verdict == "worse":
        return f"out after {n} (worse)"
    if left == 0:
        return f"undecided at max replicates ({n})"
    return f"budget reached at {n}"


def round_line(number: int, given: list[str], judged: list[CellVerdict] | None, which: str,
               cells: int, spent: int, budget: int) -> str:
    """The round's one line: how many cells train what, how many are out, the runs so far.
    ``judged``: the verdicts the round rests on (None for the first round: every cell)."""
    best = {v.cell for v in judged or [] if v.verdict == "best"} & set(given)
    who = f"{len(given) - len(best)} undecided cells" + (" and the best" if best else "")
    return (f"racing: round {number}: {who} get {which}; {cells - len(given)} out; "
            f"{spent} runs so far / {budget} budget")


def _which(reps: Iterable[int]) -> str:
    """Replicate indexes as run names number them (from 1)."""
    got = sorted({r + 1 for r in reps})
    if not got:
        return "no replicate"
    return f"replicate {got[0]}" if len(got) == 1 else f"replicates {got[0]}-{got[-1]}"


def scores(client: Client, exp_id: str, trials: Iterable[Trial],
           metric: str) -> dict[str, dict[int, float]]:
    """cell -> {replicate -> last validation ``metric``} for the given (attempted) trials;
    NaN for a replicate that did not finish (failed, diverged, never recorded)."""
    trials = list(trials)
    found = runs_store.latest_by_hash(client, exp_id, {t.config_hash for t in trials})
    out: dict[str, dict[int, float]] = {}
    for t in trials:
        run = found.get(t.config_hash)
        ok = run is not None and run.data.tags.get(TAG_STATUS) == FINISHED
        value = run.data.metrics.get(metric, math.nan) if ok else math.nan
        out.setdefault(t.cell_hash, {})[t.replicate] = float(value)
    return out


def run_race(client: Client, exp_id: str, trials: list[Trial], todo: list[Trial],
             cfg: RacingConfig, min_effect: float, metric: tuple[str, bool],
             train: Callable[[list[Trial]], None],
             log: Callable[[str], None] = logger.info) -> Race:
    """Race ``trials`` (every cell planned with max_replicates replicates); ``todo`` are those
    not done yet (the rest are read back, not retrained). ``train`` trains a list of trials;
    ``metric`` is the validation metric and its direction (pipeline.tasks.validation_metric).
    """
    name, higher = metric
    cells = list(dict.fromkeys(t.cell_hash for t in trials))
    budget = cfg.budget_runs or len(cells) * cfg.max_replicates
    pending = {t.config_hash: t for t in todo}  # shrinks as trials launch: the loop ends

    def attempted() -> list[Trial]:
        return [t for t in trials if t.config_hash not in pending]

    first = [t for t in todo if t.replicate < cfg.initial]
    rounds: list[Round] = []
    batch, given = first, cells
    while True:
        spent = len(attempted())
        if batch:  # a resumed race whose first round is done says nothing for it
            log(round_line(len(rounds) + 1, given, rounds[-1].verdicts if rounds else None,
                           _which(t.replicate for t in batch), len(cells), spent, budget))
            for t in batch:
                pending.pop(t.config_hash)
            train(batch)
        judged = verdicts.judge(scores(client, exp_id, attempted(), name),
                                min_effect=min_effect, higher_is_better=higher)
        left = {c: sum(1 for t in pending.values() if t.cell_hash == c) for c in cells}
        given = give(judged, left, budget - len(attempted()))
        rounds.append(Round(len(rounds) + 1, judged, given, spent))
        if not given:
            break
        batch = [_next(pending, c) for c in given]
    counts = {c: sum(1 for t in attempted() if t.cell_hash == c) for c in cells}
    reasons = {v.cell: stop_reason(v, counts[v.cell], left[v.cell], min_effect)
               for v in judged}
    tag(client, exp_id, attempted(), reasons)
    log(f"racing: done after {len(rounds)} rounds: {len(attempted())} runs / {budget} budget; "
        + ", ".join(f"{sum(1 for r in reasons.values() if r.startswith(w))} {w}"
                    for w in ("best", "resolved", "out", "undecided", "budget")))
    return Race(rounds, reasons, budget)


def _next(pending: dict[str, Trial], cell: str) -> Trial:
    """The cell's lowest replicate not trained yet (the same seed it has in every cell)."""
    return min((t for t in pending.values() if t.cell_hash == cell), key=lambda t: t.replicate)


def tag(client: Client, exp_id: str, trials: list[Trial], reasons: dict[str, str]) -> None:
    """Every recorded run of a cell gets the cell's stop reason."""
    found = runs_store.latest_by_hash(client, exp_id, {t.config_hash for t in trials})
    for cell, why in reasons.items():
        ids = [found[t.config_hash].info.run_id for t in trials
               if t.cell_hash == cell and t.config_hash in found]
        runs_store.mark_race(client, ids, why)
