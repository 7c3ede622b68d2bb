"""A trained configuration's records: final metrics, resolved config, figures, the model.

Runs in rank 0's records thread, beside the next configuration's training; on the other
ranks it is never called (their records thread discards it, see Role).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.config import to_dict
from pipeline.data.manifest import Manifest
from pipeline.tasks import epoch_metrics
from pipeline.tracking.vocab import (
    ARTIFACT_CONFIG,
    ARTIFACT_CONFUSION,
    ARTIFACT_CURVES,
    final_metrics,
)
from pipeline.train.contract import RankJob, Trial, TrialOutcome
from pipeline.train.rank.data import RankData
from pipeline.train.rank.evaluation import TestResult

if TYPE_CHECKING:
    from pipeline.model.build import BuiltModel
    from pipeline.tracking.recorder import Recorder


def record_results(job: RankJob, trial: Trial, recorder: Recorder, built: BuiltModel,
                   data: RankData, manifest: Manifest, test: TestResult,
                   outcome: TrialOutcome) -> None:
    import tensorflow as tf

    from pipeline.model.build import served_input
    from pipeline.report.run_figures import close, confusion_figure, history_figure
    from pipeline.tracking.models import log_model, stash_model

    if not job.runtime.verbose:  # Keras keeps this per thread; MLflow's example check predicts
        tf.keras.utils.disable_interactive_logging()
    final = {**outcome.metrics, "train_seconds": outcome.train_seconds,
             "epochs_run": outcome.epochs_run}
    for key in final_metrics(manifest.task):  # the task's metrics (pipeline.tasks)
        # NaN test metrics of a diverged run are logged as such; the status tag says why.
        recorder.log_metric(key, float(final[key]))
    recorder.log_dict({"name": trial.name, "config_hash": trial.config_hash,
                       "dataset": job.data.fingerprint, "config": to_dict(trial.config)},
                      ARTIFACT_CONFIG)
    figures = [(history_figure(figure_history(recorder, outcome, manifest.task)),
                ARTIFACT_CURVES)]
    if test.confusion is not None:  # classification with one label per example
        figures.insert(0, (confusion_figure(test.confusion), ARTIFACT_CONFUSION))
    for figure, name in figures:
        recorder.log_figure(figure, name)
        close(figure)
    problem = manifest.problem()
    example = served_input(data.splits["test"][0][:5], problem)  # as the served model takes it
    reqs = model_requirements()
    recorder.log_model(
        live=lambda: log_model(job.tracking.uri, recorder.run_id, built.inference, example, reqs,
                               built.custom_objects, outcome.metrics,
                               (job.data.name or "dataset", job.data.fingerprint)),
        stash=lambda folder: stash_model(folder, trial.config, problem, built.inference,
                                         example, reqs))
    recorder.end(outcome.status)


def figure_history(recorder: Recorder, outcome: TrialOutcome,
                   task: str = "multiclass") -> dict[str, list[tuple[int, float]]]:
    """Per-epoch curves from MLflow (a resumed run's Keras history starts mid-way), or, when
    MLflow is out of reach, from this launch's Keras history."""
    keys = epoch_metrics(task)
    history = {key: recorder.metric_history(key) for key in keys}
    if all(h is not None for h in history.values()):
        return history
    first = outcome.resumed_from_epoch
    return {key: list(enumerate(outcome.history.get(key, []), first)) for key in keys}


def model_requirements() -> list[str]:
    """Pinned requirements of a logged model: the versions this rank runs."""
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("tensorflow-cpu", "tensorflow", "numpy", "mlflow"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return reqs
