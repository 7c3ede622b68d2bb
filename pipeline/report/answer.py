"""The report's first lines in plain words: which cells are best, tied within min_effect,
undecided or worse, each with its difference to the best and that difference's interval; the
test metric of the chosen cells; and the champion's decision."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from pipeline.report.effects import BLOCK, NOISE, RESIDUAL

# Worse cells named one by one up to this many; beyond, the rest are summed up in a count.
MAX_WORSE_NAMED = 6


def label(row: pd.Series, factors: Sequence[str]) -> str:
    return " + ".join(str(row[f]) for f in factors) if factors else str(row["cell"])


def _span(row: pd.Series) -> str:
    if not math.isfinite(row["diff"]):
        return "no finished replicate"
    if not math.isfinite(row["diff_low"]):
        return f"{row['diff']:+.4f}, no interval yet"
    return f"{row['diff']:+.4f}, {row['diff_low']:+.4f} to {row['diff_high']:+.4f}"


def _failures(row: pd.Series) -> str:
    failed = int(row["n_diverged"] + row["n_failed"])
    if not failed:
        return ""
    total = failed + int(row["n_finished"])
    return (f", {failed} of {total} replicates failed or diverged (95% CI "
            f"{100 * row['fail_low']:.0f}–{100 * row['fail_high']:.0f}%)")


def _best_line(b: pd.Series, factors: Sequence[str], metric: str) -> str:
    return (f"Best: {label(b, factors)} ({metric} {b['mean']:.4f}, 95% CI {b['ci_low']:.4f}–"
            f"{b['ci_high']:.4f}, {int(b['n_finished'])} finished replicates, P(best) "
            f"{b['p_best']:.2f}{_failures(b)}).")


def _group_line(rows: pd.DataFrame, head: str, factors: Sequence[str], limit: int) -> str:
    named = [f"{label(r, factors)} ({_span(r)}{_failures(r)})" for _, r in rows.iterrows()]
    more = len(named) - limit
    text = "; ".join(named[:limit]) + (f"; and {more} more (see the table)" if more > 0 else "")
    return f"{head}: {text}."


def verdict_lines(board: pd.DataFrame, factors: Sequence[str]) -> list[str]:
    """One line per verdict present, best first, with differences to the best and their 95%
    intervals."""
    metric, m = board.attrs.get("metric", "metric"), board.attrs.get("min_effect", math.nan)
    best = board[board["is_best"]]
    if best.empty:
        return ["No cell has 2 finished replicates, so no cell is best and none is champion."]
    lines = [_best_line(best.iloc[0], factors, metric)]
    heads = {"tied": f"Tied with the best within ±{m:g} (difference to the best, 95% interval)",
             "undecided": f"Undecided: could be within ±{m:g} of the best or not",
             "worse": f"Worse than the best by more than {m:g}"}
    for verdict, head in heads.items():
        rows = board[board["verdict"] == verdict]
        if not rows.empty:
            limit = MAX_WORSE_NAMED if verdict == "worse" else len(rows)
            lines.append(_group_line(rows, head, factors, limit))
    return lines


def test_line(board: pd.DataFrame, factors: Sequence[str], test_metric: str | None) -> str:
    """The held-out test metric of the chosen cells (best and tied), read once after choosing
    them on validation; empty when ranking was already on the test metric."""
    column = f"mean_{test_metric}"
    if not test_metric or column not in board:
        return ""
    chosen = board[board["is_best"] | board["tied_with_best"]]
    if chosen.empty:
        return ""
    parts = "; ".join(f"{label(r, factors)} {r[column]:.4f}" for _, r in chosen.iterrows())
    return (f"Held-out {test_metric} of the chosen cell{'s' * (len(chosen) > 1)} (mean over "
            f"replicates, measured after choosing on validation): {parts}.")


def decision(board: pd.DataFrame, factors: Sequence[str]) -> str:
    """What the champion's registry entry says about the win."""
    m = board.attrs.get("min_effect", math.nan)
    best = board[board["is_best"]]
    if best.empty:
        return "Not tested: no cell has 2 finished replicates."
    tied = board[board["verdict"] == "tied"]
    open_ = board[board["verdict"] == "undecided"]
    if tied.empty and open_.empty:
        return f"Decisive: every other cell is worse than the best by more than {m:g}."
    parts = []
    if not tied.empty:
        parts.append(f"Tied within ±{m:g} with {len(tied)} other cell(s): "
                     + "; ".join(label(r, factors) for _, r in tied.iterrows()))
    if not open_.empty:
        parts.append(f"Undecided against {len(open_)} cell(s) (more replicates would tell): "
                     + "; ".join(label(r, factors) for _, r in open_.iterrows()))
    return ". ".join(parts) + "."


def top_term(effects: pd.DataFrame | None, factors: Sequence[str]) -> str:
    """The largest term in words: as a share of the variance only where the design is balanced
    (then the shares partition it), otherwise by its F statistic."""
    if effects is None:
        return ""
    balanced = bool(effects.attrs.get("balanced"))
    by = "share" if balanced else "F"
    terms = effects[~effects["term"].isin([RESIDUAL, BLOCK]) & effects["F"].notna()
                    & effects[by].notna()]
    if terms.empty:
        return ""
    top = terms.loc[terms[by].idxmax()]
    name = (top["term"] if top["term"] in factors
            else f"The {top['term'].replace(':', ' × ')} interaction")
    residual = f"the residual ({effects.attrs.get('residual', NOISE)})"
    if balanced:
        low, high = top["share_ci_low"], top["share_ci_high"]
        ci = (f" (95% CI {100 * low:.0f}–{100 * high:.0f}%)"
              if math.isfinite(low) and math.isfinite(high) else "")
        return (f"{name} explains {100 * top['share']:.0f}% of the variance{ci}; "
                f"{residual} {100 * effects.iloc[-1]['share']:.0f}%.")
    return (f"{name} is the largest term (F = {top['F']:.3g}, p = {top['p_value']:.2g}); the "
            f"design is unbalanced, so shares of the variance would not add up and are not "
            f"quoted as a partition.")
