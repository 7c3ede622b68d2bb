"""The report of a sweep, as a list of steps: read the runs, compute the statistics and the
explanations, draw, write the page, register the champion.

Files are written into a staging folder beside ``output`` that replaces it only when
complete: a full disk leaves the previous report as it was, never a partial one.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
from mlflow.tracking import MlflowClient

from pipeline.config.study import Study
from pipeline.report import frame, leaderboard, published, statistics
from pipeline.report.analysis import Analysis, analyse
from pipeline.report.champion import Champion, register_champion
from pipeline.report.sections import page_for, write_figures
from pipeline.storage import disk_errors, mark_report, staging_dir, swap_into_place
from pipeline.tasks import primary_metric, task_spec

logger = logging.getLogger(__name__)


@dataclass
class Report:
    leaderboard: pd.DataFrame  # one row per cell, best first
    folder: Path
    files: list[Path]
    champion: Champion | None
    answer: list[str] = field(default_factory=list)  # the page's first lines
    metric: str = ""  # what the cells were ranked by

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


# The sweep's report settings, logged on its parent run (pipeline.config.schema.ReportConfig).
PARAM_MIN_EFFECT = "report.min_effect"


def ranking_metrics(sweep: frame.SweepRuns, metric: str | None) -> tuple[str, str | None]:
    """(metric the cells are ranked by, test metric quoted for the chosen cells).

    By default cells are ranked on the last epoch's validation metric and the task's primary
    test metric is read once, for the cells chosen; an explicit ``metric`` is ranked on as is.
    Runs logged without a validation metric fall back to ranking on the test metric.
    """
    if metric:
        return metric, None
    test = primary_metric(sweep.task)[0]
    val = f"final_val_{task_spec(sweep.task).epoch_metric}"
    if val in sweep.runs and sweep.runs[val].notna().any():
        return val, test
    return test, None


def min_effect(client: MlflowClient, sweep: frame.SweepRuns) -> float:
    """The sweep's min_effect as its parent run logged it; the default otherwise (--all, or
    sweeps from before the setting)."""
    if not sweep.parent_id:
        return statistics.DEFAULT_MIN_EFFECT
    value = client.get_run(sweep.parent_id).data.params.get(PARAM_MIN_EFFECT)
    return float(value) if value is not None else statistics.DEFAULT_MIN_EFFECT


def _analyse(client: MlflowClient, sweep: frame.SweepRuns, metric: str | None) -> Analysis:
    ranked, test = ranking_metrics(sweep, metric)
    return analyse(client, sweep, ranked, test, min_effect(client, sweep))


def write_report(client: MlflowClient, uri: str, experiment: str, output: Path,
                 metric: str | None = None, all_runs: bool = False,
                 register: bool = True, study: Study | None = None) -> Report:
    """Leaderboard, statistics, figures and index.html under ``output``; the champion
    registered (unless ``register`` is false). ``metric``: what to rank by; default the
    task's validation metric, with its primary test metric quoted for the chosen cells.
    ``study``: its published figures are set beside the measured ones."""
    sweep = frame.load(client, experiment, all_runs)
    found = _analyse(client, sweep, metric)
    compared = published.compare(study, sweep) if study else None
    staging = staging_dir(output.parent, output.name, "report folder")
    try:
        with disk_errors(output, "report"):
            names = _write_files(found, staging)
            if compared is not None:
                names += _write_published(compared, staging)
            # Registered once the files are written, so a full disk usually stops before it.
            champion = _champion(client, uri, found) if register else None
            names.append(_write_page(found, champion, staging, ui_address(uri), compared))
        swap_into_place(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [output / name for name in names]
    if sweep.parent_id:
        for path in files:
            client.log_artifact(sweep.parent_id, str(path), "report")
    answer = [*compared.lines, *found.answer] if compared else found.answer
    return Report(found.board, output, files, champion, answer, found.metric)


def _write_published(compared: published.Comparison, folder: Path) -> list[str]:
    (folder / "published.csv").write_text(compared.table.to_csv(index=False))
    (folder / "published.md").write_text(f"# {published.SECTION}\n\n"
                                         + published.to_markdown(compared))
    return ["published.csv", "published.md"]


def _write_files(found: Analysis, folder: Path) -> list[str]:
    mark_report(folder)  # inside the staging folder: the swapped-in report carries it
    board = found.board
    (folder / "leaderboard.csv").write_text(board.to_csv(index=False))
    (folder / "runs.csv").write_text(found.sweep.runs.to_csv(index=False))
    (folder / "leaderboard.md").write_text(
        f"# Sweep `{found.sweep.experiment}`: cells by mean {found.metric}\n\n"
        + "\n".join(found.answer) + "\n\n" + leaderboard.to_markdown(found.compact))
    names = ["leaderboard.csv", "runs.csv", "leaderboard.md"]
    if found.effects is not None:
        (folder / "effects.csv").write_text(found.effects.to_csv(index=False))
        names.append("effects.csv")
    return names + write_figures(found, folder)


def _champion(client: MlflowClient, uri: str, found: Analysis) -> Champion | None:
    """The best cell's best replicate, both chosen on the ranking metric; none when no cell
    has 2 finished replicates (a single lucky replicate is never champion)."""
    best = found.board[found.board["is_best"]]
    if best.empty:
        return None
    run = leaderboard.best_replicate(found.sweep.runs, best.iloc[0]["cell"], found.metric)
    if run is None:
        return None
    return register_champion(client, uri, found.sweep.experiment, run, found.metric,
                             found.decision)


def ui_address(uri: str) -> str:
    """Where the MLflow UI shows this store's runs: the tracking server itself, or the UI
    ``make ui`` starts on a local store (MLFLOW_PORT, 5000 by default)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):  # never a user or password from the URI
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"
    return f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT') or 5000}"


def _write_page(found: Analysis, champion: Champion | None, folder: Path, ui: str,
                compared: published.Comparison | None = None) -> str:
    from pipeline.report.page import write_page

    write_page(folder / "index.html", page_for(found, champion, ui, compared))
    return "index.html"


def read_leaderboard(experiment: str, metric: str | None = None,
                     tracking_uri: str | None = None, all_runs: bool = False) -> pd.DataFrame:
    """The latest sweep of ``experiment`` as a cell leaderboard (a pandas DataFrame, best
    first), without writing files or registering a model: for notebooks."""
    from pipeline.tracking import store

    client = store.connect(store.tracking_uri(tracking_uri))
    sweep = frame.load(client, experiment, all_runs)
    return _analyse(client, sweep, metric).board
