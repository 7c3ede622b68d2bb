"""A study's published figures beside the measured ones: a verdict per cell, one for the order.

Per cell, the published value (on the run metric's scale) against the 95% Student-t interval
of the cell's finished replicates: inside it, the measurement agrees. Over the cells, Kendall's
tau between the published and the measured means says whether the order is the same (scipy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.config.study import PublishedCell, Study
from pipeline.errors import PipelineError
from pipeline.report import statistics
from pipeline.report.frame import SweepRuns
from pipeline.report.leaderboard import higher_is_better
from pipeline.tracking.vocab import DIVERGED

SECTION = "Published vs measured"


@dataclass
class Comparison:
    table: pd.DataFrame  # one row per published cell
    lines: list[str]  # the verdicts in words, the study's first
    method: list[str] = field(default_factory=list)  # how they were judged, and the caveats


def compare(study: Study, sweep: SweepRuns) -> Comparison:
    cfg = study.config
    if cfg.metric not in sweep.runs.columns:
        raise PipelineError(f"study {cfg.name}: metric {cfg.metric!r} is not among the runs' "
                            f"metrics (study file {study.path})")
    rows = [_row(study, cell, _replicates(sweep, cell.where)) for cell in cfg.published]
    table = pd.DataFrame(rows)
    lines = _lines(study, table) if rows else [
        f"Study {cfg.name}: no published figures to compare. {cfg.note}".strip()]
    return Comparison(table, lines, _method(study))


def _replicates(sweep: SweepRuns, where: dict[str, Any]) -> pd.DataFrame:
    """The runs of the cell the published row names, by the configuration params they log."""
    runs = sweep.runs
    mask = pd.Series(True, index=runs.index)
    short = {key: col for col, key in sweep.params.items()}
    for key, value in where.items():
        column = short.get(key, f"params.{key}")
        if column not in runs:
            return runs.iloc[0:0]
        mask &= runs[column].map(lambda logged, v=value: _same(logged, v))
    return runs[mask]


def _same(logged: object, value: Any) -> bool:
    """A logged param (``str()`` of the configuration value) against a study's value: numbers
    by value, so that ``1`` in a study matches a learning rate logged as ``1.0``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(str(logged)) == float(value)
        except ValueError:
            return False
    return str(logged) == str(value)


def _row(study: Study, cell: PublishedCell, runs: pd.DataFrame) -> dict[str, Any]:
    cfg = study.config
    x = statistics.finished_runs(runs, cfg.metric)[cfg.metric].to_numpy(float)
    ci = statistics.mean_interval(x)
    expected = cfg.expected(cell)
    mean = float(x.mean()) if x.size else math.nan
    return {"configuration": cell.label or _label(cell.where),
            "published": _stated(cell.value, cfg.published_as),
            f"published {cfg.metric}": expected,
            f"measured {cfg.metric}": mean,
            "95% interval": "" if math.isnan(ci.low) else f"[{ci.low:.4f}, {ci.high:.4f}]",
            "replicates": int(x.size),
            "diverged": int((runs["status"] == DIVERGED).sum()) if "status" in runs else 0,
            "verdict": _verdict(expected, mean, ci, int(x.size))}


def _label(where: dict[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in where.items())


def _stated(value: float, units: str) -> str:
    return {"error_percent": f"{value:g}% error", "accuracy_percent": f"{value:g}%"}.get(
        units, f"{value:g}")


def _verdict(expected: float, mean: float, ci: statistics.Interval, n: int) -> str:
    if n == 0:
        return "not measured (no finished replicate)"
    if n == 1:
        return "one replicate: no interval to judge by"
    if ci.low <= expected <= ci.high:
        return "agrees: inside the interval"
    side = "above" if mean > expected else "below"
    return f"differs: measured {abs(mean - expected):.4f} {side} the published value"


def _lines(study: Study, table: pd.DataFrame) -> list[str]:
    cfg = study.config
    judged = table[table["replicates"] >= 2]
    inside = int(judged["verdict"].str.startswith("agrees").sum())
    form = " (quick form)" if study.quick else ""
    head = (f"Against {cfg.source or cfg.name}{', ' + cfg.table if cfg.table else ''}{form}: "
            f"{inside} of {len(judged)} published values lie inside the measured 95% "
            f"intervals")
    if len(judged) < len(table):
        head += f" ({len(table) - len(judged)} cells had fewer than 2 finished replicates)"
    lines = [head + "."]
    order = ranking_line(table, cfg.metric)
    if order:
        lines.append(order)
    if cfg.agreement == "ranking":
        lines.reverse()  # the study is judged on the order: say it first
    return lines


def ranking_line(table: pd.DataFrame, metric: str) -> str:
    """Kendall's tau between published and measured means, over cells measured at all."""
    both = table[np.isfinite(table[f"measured {metric}"].astype(float))]
    if len(both) < 3:
        return ""
    pub, got = both[f"published {metric}"].astype(float), both[f"measured {metric}"].astype(float)
    tau, p = stats.kendalltau(pub, got)
    if not np.isfinite(tau):
        return ""
    better = "higher" if higher_is_better(metric) else "lower"
    best_pub = both.loc[pub.idxmax() if better == "higher" else pub.idxmin(), "configuration"]
    best_got = both.loc[got.idxmax() if better == "higher" else got.idxmin(), "configuration"]
    same = "the same best cell" if best_pub == best_got else (
        f"published best {best_pub}, measured best {best_got}")
    return (f"Order: Kendall's tau {tau:+.2f} (p = {p:.2g}) between published and measured "
            f"means over {len(both)} cells; {same}.")


def _method(study: Study) -> list[str]:
    cfg = study.config
    notes = [f"Each published value is converted to {cfg.metric} and judged against the "
             "cell's 95% Student-t interval of its finished replicates (diverged replicates "
             "count as not finished and are listed). The order is compared with Kendall's tau "
             "(scipy.stats.kendalltau)."]
    if study.quick:
        notes.append("This is the study's quick form (the overrides under quick: in "
                     f"{study.path.name}): fewer epochs or smaller layers than the setup the "
                     "figures come from, so disagreement is expected and says little.")
    notes += [f"Differs from the source: {d}" for d in cfg.differences]
    if cfg.note:
        notes.append(cfg.note)
    return notes


def to_markdown(comparison: Comparison) -> str:
    from pipeline.report.leaderboard import to_markdown as table_markdown

    text = "\n".join(comparison.lines) + "\n\n"
    if not comparison.table.empty:
        text += table_markdown(comparison.table) + "\n\n"
    return text + "\n".join(f"- {m}" for m in comparison.method) + "\n"
