"""Successive halving in the report: which cells were pruned, and the numbers they were judged by.

A pruned cell stopped after a few epochs, so its numbers are not comparable with a cell
trained to the end: it has no test metric and no rank on the leaderboard. The fair
comparison is the one the decision made, every cell's validation metric at the same epoch,
which this table shows for each rung.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRUNED = "pruned"


def rung_table(runs: pd.DataFrame, curves: pd.DataFrame, factors: list[str],
               metric: str) -> pd.DataFrame | None:
    """A row per cell: its factors, how far it went, and its replicates' mean ``metric`` at
    each rung epoch it reached (None when nothing was pruned)."""
    pruned = runs[runs["status"] == PRUNED]
    if pruned.empty:
        return None
    rungs = sorted({int(e) for e in pruned["rung_epoch"].dropna()})
    cells = runs.groupby("cell", sort=False)
    out = cells[factors].first()
    out.insert(len(factors), "stopped", [_stopped(group) for _, group in cells])
    for epoch in rungs:  # epoch e is step e - 1
        at = curves[curves["step"] == epoch - 1].groupby("cell")["value"].mean()
        out[f"mean {metric} at epoch {epoch}"] = at.reindex(out.index)
    best_first = out.columns[-len(rungs):][::-1].tolist()
    ascending = [not _higher(metric)] * len(best_first)
    return out.sort_values(best_first, ascending=ascending, na_position="last").reset_index(
        drop=True)


def _stopped(group: pd.DataFrame) -> str:
    if (group["status"] == PRUNED).any():
        return f"pruned at epoch {int(np.nanmax(group['rung_epoch']))}"
    return "trained to the end"


def _higher(metric: str) -> bool:
    return not metric.endswith(("mae", "loss"))


def summary(runs: pd.DataFrame) -> str:
    pruned = runs[runs["status"] == PRUNED]
    return (f"Successive halving stopped {pruned['cell'].nunique()} of "
            f"{runs['cell'].nunique()} configurations early ({len(pruned)} runs with status "
            "pruned). A pruned configuration has no test metric and no rank on the "
            "leaderboard; compare it only here, with every configuration's validation metric "
            "at the epoch where the decision was made (the mean over its replicates, the "
            "number the decision used).")
