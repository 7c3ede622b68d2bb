"""Logging a configuration's model to MLflow, now or, after an outage, from the spool.

A spooled model is its weights plus the configuration that built it: replay rebuilds the
same network with the project's own builder (so custom activations resolve as in training)
and logs it exactly as rank 0 would have.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig, parse, to_dict
from pipeline.tasks import Problem

if TYPE_CHECKING:
    import tensorflow as tf
    from mlflow.models import ModelSignature

WEIGHTS, EXAMPLE = "model.weights.h5", "input_example.npy"


def log_model(uri: str, run_id: str, model: tf.keras.Model, example: np.ndarray,
              requirements: list[str], custom_objects: dict[str, Callable] | None = None,
              metrics: dict[str, float] | None = None,
              dataset: tuple[str, str] | None = None) -> None:
    """Log ``model`` in the run; ``metrics`` (the test metrics) are linked to the logged model
    and to ``dataset`` (name, digest), so MLflow's Models view shows them beside it."""
    import mlflow
    import mlflow.tensorflow

    mlflow.set_tracking_uri(uri)
    # Inside the run, not run_id=: only then is the logged model filed under the run's
    # experiment, where register_model("runs:/<run>/model") looks for it.
    with mlflow.start_run(run_id=run_id):
        # Explicit requirements: MLflow's inference imports the model in a subprocess (~5 s).
        # HDF5 rather than SavedModel: 0.5-0.9 s instead of 1.2-2.6 s per model here.
        info = mlflow.tensorflow.log_model(model, name="model", input_example=example,
                                           signature=declared_signature(model, example),
                                           pip_requirements=requirements,
                                           custom_objects=custom_objects or None,
                                           keras_model_kwargs={"save_format": "h5"})
    client = MlflowClient(uri)
    name, digest = dataset or (None, None)
    for key, value in (metrics or {}).items():
        client.log_metric(run_id, key, float(value), model_id=info.model_id, dataset_name=name,
                          dataset_digest=digest)


def declared_signature(model: tf.keras.Model, example: np.ndarray) -> ModelSignature | None:
    """The signature MLflow would infer from ``model``'s prediction on ``example``, read from
    the model's declared output instead: inferring it costs a prediction on every logged model,
    on top of the one MLflow's input-example check makes anyway. None (MLflow infers it) when
    the model has several outputs or an output dimension is unknown."""
    from mlflow.models import infer_signature

    if len(model.outputs) != 1:
        return None
    out = model.outputs[0]
    shape = (len(example), *out.shape[1:])
    if any(d is None for d in shape):
        return None
    return infer_signature(example, np.zeros(shape, dtype=out.dtype.as_numpy_dtype))


def stash_model(folder: Path, cfg: RunConfig, problem: Problem, model: tf.keras.Model,
                example: np.ndarray, requirements: list[str]) -> dict:
    """Save what replay needs under ``folder``; the returned fields complete the record."""
    model.save_weights(str(folder / WEIGHTS))
    np.save(folder / EXAMPLE, example)
    return {"config": to_dict(cfg), "problem": json.loads(json.dumps(asdict(problem))),
            "requirements": requirements}


def _problem(record: dict) -> Problem:
    """The record's problem; records spooled before tasks existed name the image shape and
    class count of a multi-class problem."""
    if "problem" not in record:
        return Problem.classes(tuple(record["image_shape"]), record["num_classes"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in record["problem"].items()}
    return Problem(**fields)


def has_model(client: MlflowClient, run_id: str) -> bool:
    """Whether the run already holds its finished model: a replay killed after MLflow took
    the model (and before the spool marked it delivered) must not log a second one."""
    from mlflow.entities import LoggedModelStatus

    experiment = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models([experiment],
                                        filter_string=f"source_run_id = '{run_id}'")
    return any(m.name == "model" and m.status == LoggedModelStatus.READY for m in found)


def replay_model(client: MlflowClient, run_id: str, record: dict, files: Path) -> None:
    if has_model(client, run_id):
        return
    from pipeline.model.build import build_for

    cfg = parse(RunConfig, record["config"], "spool")
    built = build_for(cfg, _problem(record))
    built.inference.load_weights(str(files / WEIGHTS))
    log_model(client.tracking_uri, run_id, built.inference, np.load(files / EXAMPLE),
              record["requirements"], built.custom_objects)
