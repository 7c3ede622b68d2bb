"""The sweep's answer on its parent run, once the report is built: metrics, tags, description.

In MLflow's runs table the parent is the row a reader sees first; with this it says which
cell won, by how much, how sure the report is, and where the report is (its index.html is an
artifact of this run, linked from the description).

The report's leaderboard is read by column name, and only the columns present are used: the
report's statistics change more often than this does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Metric, Run, RunTag
from mlflow.tracking import MlflowClient

from pipeline.tracking.vocab import (
    TAG_BEST,
    TAG_CONFIGURATION,
    TAG_NOTE,
    TAG_REPORT,
    TAG_VERDICT,
)

REPORT_ARTIFACTS = "report"  # the parent's artifact folder holding the report's files
# Per-cell counts of the leaderboard, one per way a run ends; their sum is the runs.
RUN_COUNTS = ("n_finished", "n_diverged", "n_failed", "n_pruned")
TAG_LIMIT = 4900  # MLflow caps a tag value at 5,000 characters


@dataclass
class Summary:
    """What the parent run carries; ``None``/NaN where the report had no such figure."""

    cells: int
    runs: int
    best: str | None = None
    mean: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    tied: int = 0
    verdict: str = ""
    ranked_by: str | None = None
    quoted: dict[str, float] = field(default_factory=dict)  # the best cell's other means
    verdicts: dict[str, int] = field(default_factory=dict)  # cells per verdict, if any

    def metrics(self) -> dict[str, float]:
        """Parent-run metrics; the best cell's figures only when there is a best cell."""
        out = {"cells": float(self.cells), "runs": float(self.runs), "tied_with_best": self.tied,
               **{f"cells_{k}": n for k, n in self.verdicts.items()}}
        if self.best is not None:
            out.update({"best_mean": self.mean, "best_ci_low": self.ci_low,
                        "best_ci_high": self.ci_high})
            out.update({f"best_{k}": v for k, v in self.quoted.items()})
        return {k: float(v) for k, v in out.items() if _finite(v)}


def summarize(board: pd.DataFrame, answer: list[str], ranked_by: str | None = None) -> Summary:
    """The summary of a report's leaderboard (one row per cell, best first) and answer."""
    summary = Summary(cells=len(board), runs=_runs(board), ranked_by=ranked_by,
                      verdict=answer[0] if answer else "")
    best = _best_row(board)
    if best is None:
        return summary
    summary.best = _label(best)
    summary.mean = _number(best, "mean")
    summary.ci_low, summary.ci_high = _number(best, "ci_low"), _number(best, "ci_high")
    summary.quoted = {k.removeprefix("mean_"): _number(best, k) for k in best.index
                      if str(k).startswith("mean_test_")}
    summary.tied = _tied(board)
    if "verdict" in board:
        summary.verdicts = {str(k): int(n) for k, n in board["verdict"].value_counts().items()}
    return summary


def publish(client: MlflowClient, parent: Run, report: Any, metric: str | None) -> Summary:
    """Summarize a built report (pipeline.report.writer.Report: its leaderboard, answer and
    index; its ranking metric when it names one) onto the sweep's parent run."""
    ranked_by = getattr(report, "metric", None) or metric
    summary = summarize(report.leaderboard, list(report.answer), ranked_by)
    record(client, parent.info.run_id, summary, report.index, list(report.answer),
           parent.info.experiment_id)
    return summary


def record(client: MlflowClient, parent_id: str, summary: Summary, report: Path,
           answer: list[str], experiment_id: str) -> None:
    """Metrics, tags and description on the parent; its report folder logged if missing."""
    _log_report(client, parent_id, report)
    tags = {TAG_VERDICT: summary.verdict, TAG_REPORT: str(report.resolve()),
            TAG_NOTE: describe(summary, answer, _artifact_link(experiment_id, parent_id),
                               report)}
    if summary.best is not None:
        tags[TAG_BEST] = summary.best
    client.log_batch(parent_id, metrics=[Metric(k, v, _now(), 0)
                                         for k, v in summary.metrics().items()],
                     tags=[RunTag(k, v[:TAG_LIMIT]) for k, v in tags.items() if v])


def describe(summary: Summary, answer: list[str], link: str, report: Path) -> str:
    """The parent's description (Markdown, shown on its run page and in the runs table)."""
    parts = [f"**{summary.verdict or 'No verdict.'}**"]
    if summary.best is not None:
        parts.append(f"Best configuration: `{summary.best}`, mean {_metric(summary)} "
                     f"{_fmt(summary.mean)} (95% CI {_fmt(summary.ci_low)} to "
                     f"{_fmt(summary.ci_high)}); {summary.tied} other(s) tied with it.")
    counts = f"{summary.cells} configurations, {summary.runs} runs."
    stated = any(f"{summary.runs} runs" in line for line in answer)  # the report's own count
    parts += [*answer[1:], "" if stated else counts,
              f"Report: [index.html]({link}) (this run's artifacts, `report/`); "
              f"on disk: `{report.resolve()}`"]
    return "\n\n".join(p for p in parts if p)


def _best_row(board: pd.DataFrame) -> pd.Series | None:
    """The best cell: flagged ``is_best`` or ``verdict`` best; else the first ranked row."""
    if board.empty:
        return None
    for column, value in (("is_best", True), ("verdict", "best")):
        if column in board:
            hits = board[board[column] == value]
            return hits.iloc[0] if not hits.empty else None
    return board.iloc[0]


def _tied(board: pd.DataFrame) -> int:
    if "verdict" in board:
        return int((board["verdict"] == "tied").sum())
    if "tied_with_best" in board:
        best = board.get("is_best", pd.Series(False, index=board.index)).astype(bool)
        return int((board["tied_with_best"].astype(bool) & ~best).sum())
    return 0


def _runs(board: pd.DataFrame) -> int:
    present = [c for c in RUN_COUNTS if c in board]
    return int(board[present].fillna(0).to_numpy().sum()) if present else 0


def _label(row: pd.Series) -> str:
    for key in (TAG_CONFIGURATION, "cell"):
        if key in row.index and isinstance(row[key], str) and row[key]:
            return row[key]
    return str(row.name)


def _number(row: pd.Series, key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: float) -> str:
    return f"{value:.4f}" if _finite(value) else "n/a"


def _metric(summary: Summary) -> str:
    return f"`{summary.ranked_by}`" if summary.ranked_by else "of the ranking metric"


def _artifact_link(experiment_id: str, run_id: str) -> str:
    """The UI's page of the report in the parent's artifacts, relative to the UI's root, so it
    works whatever host and port the UI is served on."""
    return (f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/{REPORT_ARTIFACTS}/"
            "index.html?workflowType=machine_learning")  # see store.experiment_link


def _log_report(client: MlflowClient, run_id: str, report: Path) -> None:
    """The report's folder under the parent's ``report/`` artifacts, unless the report's build
    logged it already (it does when it knows the parent)."""
    have = {Path(a.path).name for a in client.list_artifacts(run_id, REPORT_ARTIFACTS)}
    if report.name not in have:
        client.log_artifacts(run_id, str(report.parent), REPORT_ARTIFACTS)


def _now() -> int:
    return int(time.time() * 1000)
