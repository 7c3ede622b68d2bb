"""Comparison tables from a sweep's MLflow runs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from pipeline.errors import PipelineError
from pipeline.report import figures as plots
from pipeline.report.champion import Champion, register_champion
from pipeline.report.page import render, write_page
from pipeline.storage import disk_errors, staging_dir, swap_into_place
from pipeline.tracking import store as tracking

COLUMNS = {
    "name": "configuration",
    "params.model.architecture": "architecture",
    "params.model.hidden_activation": "hidden_activation",
    "params.model.output_activation": "output_activation",
    "params.loss": "loss",
    "params.model.kernel_initializer": "initializer",
    "params.optimizer.name": "optimizer",
    "metrics.test_accuracy": "test_accuracy",
    "metrics.test_loss": "test_loss",
    "best_val_accuracy": "best_val_accuracy",
    "best_val_epoch": "best_val_epoch",
    "metrics.epochs_run": "epochs_run",
    "metrics.train_seconds": "train_seconds",
    "mean_samples_per_sec": "samples_per_sec",
    "tags.status": "status",
    "run_id": "run_id",
}


@dataclass
class Report:
    leaderboard: pd.DataFrame
    folder: Path
    files: list[Path]
    champion: Champion | None

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


def leaderboard(client: MlflowClient, runs: list[Run], metric: str) -> pd.DataFrame:
    """One row per configuration run, best ``metric`` first; failed runs stay, at the bottom."""
    rows = [_row(client, run) for run in runs]
    df = pd.DataFrame(rows, columns=list(COLUMNS)).rename(columns=COLUMNS)
    key = COLUMNS.get(f"metrics.{metric}", metric)
    if key not in df.columns:
        raise PipelineError(f"--metric: {metric!r} is not a leaderboard column")
    return df.sort_values(key, ascending="loss" in key, na_position="last").reset_index(drop=True)


def _row(client: MlflowClient, run: Run) -> dict:
    row = {"name": run.info.run_name, "run_id": run.info.run_id}
    row.update({f"params.{k}": v for k, v in run.data.params.items()})
    row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
    row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
    val = client.get_metric_history(run.info.run_id, "val_accuracy")
    if val:
        best = max(val, key=lambda m: m.value)
        row["best_val_accuracy"], row["best_val_epoch"] = best.value, best.step + 1
    speed = client.get_metric_history(run.info.run_id, "samples_per_sec")
    if speed:
        row["mean_samples_per_sec"] = sum(m.value for m in speed) / len(speed)
    return row


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


def select_runs(client: MlflowClient, experiment: str, all_runs: bool) -> tuple[str, list[Run]]:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise PipelineError(f"--experiment: no MLflow experiment named {experiment!r}")
    parent_id = None
    if not all_runs:
        parent = tracking.latest_parent(client, exp.experiment_id)
        if parent is None:
            raise PipelineError(f"experiment {experiment!r} has no sweep runs")
        parent_id = parent.info.run_id
    runs = tracking.children(client, exp.experiment_id, parent_id)
    if not runs and parent_id:
        # A re-run that skipped everything has no children of its own: show the sweep's history.
        runs = tracking.children(client, exp.experiment_id)
    return parent_id or "", runs


def write_report(client: MlflowClient, uri: str, experiment: str, output: Path,
                 metric: str = "test_accuracy", all_runs: bool = False,
                 register: bool = True) -> Report:
    """Leaderboard, figures and index.html under ``output``; the champion registered.

    The files are written into a staging folder beside ``output`` that replaces it only when
    complete: a full disk leaves the previous report as it was, never a partial one.
    """
    parent_id, runs = select_runs(client, experiment, all_runs)
    if not runs:
        raise PipelineError(f"experiment {experiment!r} has no configuration runs to compare")
    df = leaderboard(client, runs, metric)
    staging = staging_dir(output.parent, output.name, "report folder")
    try:
        with disk_errors(output, "report"):
            names, champion = _write_files(client, uri, experiment, df, runs, metric, staging,
                                           register)
        swap_into_place(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [output / name for name in names]
    if parent_id:
        for path in files:
            client.log_artifact(parent_id, str(path), "report")
    return Report(df, output, files, champion)


def _write_files(client: MlflowClient, uri: str, experiment: str, df: pd.DataFrame,
                 runs: list[Run], metric: str, folder: Path,
                 register: bool) -> tuple[list[str], Champion | None]:
    (folder / "leaderboard.csv").write_text(df.to_csv(index=False))
    (folder / "leaderboard.md").write_text(
        f"# Sweep `{experiment}`: leaderboard by {metric}\n\n{to_markdown(df)}")
    images = {
        f"{metric} by hidden activation and loss": plots.heatmap(df, metric,
                                                                 folder / "heatmap.png").name,
        "validation loss and accuracy per epoch": plots.curves(_histories(client, runs),
                                                               folder / "curves.png").name,
    }
    # Registered once the figures are written, so a full disk usually stops before it.
    champion = register_champion(client, uri, df, experiment, metric) if register else None
    page = render(f"Sweep {experiment}", df, images, _notes(df, metric, champion))
    write_page(folder / "index.html", page)
    names = ["leaderboard.csv", "leaderboard.md", "heatmap.png", "curves.png", "index.html"]
    return names, champion


def _histories(client: MlflowClient, runs: list[Run]) -> dict[str, dict[str, list]]:
    return {run.info.run_name: {key: [(m.step, m.value)
                                      for m in client.get_metric_history(run.info.run_id, key)]
                                for key in ("val_loss", "val_accuracy")}
            for run in runs}


def _notes(df: pd.DataFrame, metric: str, champion: Champion | None) -> list[str]:
    counts = df["status"].value_counts().to_dict()
    notes = [f"{len(df)} configurations: " + ", ".join(f"{v} {k}" for k, v in counts.items()),
             f"ranked by {metric}"]
    if champion:
        notes.append(f"champion: {champion.configuration} ({metric}={champion.value:.4f}), "
                     f"registered as {champion.uri} (version {champion.version})")
    return notes
