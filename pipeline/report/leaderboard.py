"""The leaderboard: one row per cell (configuration), ranked by its mean over replicates.

A metric's direction is known: losses, errors and seconds rank ascending, everything else
descending, so ``--metric train_seconds`` puts the fastest cell first.
"""

from __future__ import annotations

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.report import statistics

_LOWER_IS_BETTER = ("loss", "seconds", "error", "rmse", "mae", "hamming")


def higher_is_better(metric: str) -> bool:
    return not any(word in metric for word in _LOWER_IS_BETTER)


def cell_board(runs: pd.DataFrame, factors: list[str], metric: str,
               min_effect: float = statistics.DEFAULT_MIN_EFFECT) -> pd.DataFrame:
    """Cells best first: factors, mean and interval, difference to the best and its interval,
    verdict, P(best), replicate counts, other metrics' means (``statistics.cell_summary``)."""
    if metric not in runs.columns:
        known = [c for c in runs.columns if c not in ("run_id", "cell", "status", *factors)]
        raise PipelineError(f"--metric: {metric!r} is not a run metric (known: "
                            f"{', '.join(known)})")
    board = statistics.cell_summary(runs, factors, metric, higher_is_better(metric),
                                    min_effect=min_effect)
    if "configuration" not in board.columns:
        names = runs.groupby("cell")["configuration"].first()
        board.insert(1, "configuration", board["cell"].map(names))
    extra = [m for m in runs.columns if m != metric and (
        m.startswith("test_") or m in ("train_seconds", "final_samples_per_sec"))]
    done = runs[runs["status"] == statistics.FINISHED]
    means = done.groupby("cell")[extra].mean().add_prefix("mean_")
    out = board.join(means, on="cell")
    if "race" in runs and runs["race"].astype(bool).any():  # why each cell has its replicates
        out["race"] = out["cell"].map(runs.groupby("cell")["race"].max()).fillna("")
    out.attrs.update(board.attrs)
    return out


def best_replicate(runs: pd.DataFrame, cell: str, metric: str) -> pd.Series | None:
    """The cell's best finished replicate by ``metric`` (the ranking metric, validation by
    default, so the test split plays no part in the choice): its model becomes champion."""
    mine = runs[(runs["cell"] == cell) & (runs["status"] == statistics.FINISHED)]
    mine = mine.dropna(subset=[metric])
    if mine.empty:
        return None
    ordered = mine.sort_values(metric, ascending=not higher_is_better(metric))
    return ordered.iloc[0]


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; floats to 4 significant digits."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
