"""MLflow store access: where the store is, experiments, run look-ups, config params.

One experiment per sweep name; one parent run per sweep invocation; one child run
per configuration, tagged so a re-run can tell which configurations are done.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from mlflow.entities import Dataset, DatasetInput, Experiment, InputTag, Param, Run
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig, flatten, to_dict
from pipeline.errors import PipelineError
from pipeline.tracking.vocab import (
    ARTIFACT_PLANNED,
    DONE_STATUSES,
    KIND_MODEL_TRAINING,
    ROLE_CONFIG,
    ROLE_SWEEP,
    TAG_DATASET,
    TAG_EXPERIMENT_KIND,
    TAG_HASH,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
)

DEFAULT_EXPERIMENT_ID = "0"  # MLflow's own, created with every store

# The MLflow types the other rooms hold (as annotations) without importing MLflow themselves.
Client = MlflowClient


def tracking_uri(uri: str | None = None, home: str | Path | None = None) -> str:
    """The MLflow store: explicit > $MLFLOW_TRACKING_URI > SQLite file in the project folder."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(home or os.getcwd()).resolve()
    return f"sqlite:///{root / 'mlflow.db'}"


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``, for consoles, logs and tags."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def scrub(text: str, uri: str) -> str:
    """``text`` with the password of ``uri`` (plain or URL-encoded) replaced by ``***``."""
    password = urlsplit(uri).password
    if not password:
        return text
    for form in {password, unquote(password)}:
        text = text.replace(form, "***")
    return text


def artifact_location(uri: str, experiment: str) -> str | None:
    """For a local SQLite store, artifacts go beside it (absolute, so any process finds them)."""
    if not uri.startswith("sqlite:///"):
        return None  # a tracking server decides where artifacts live
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "mlartifacts" / experiment).resolve().as_uri()


def connect(uri: str) -> MlflowClient:
    """A client for ``uri``, failing fast with one line when the store is unreachable."""
    # Fail within seconds instead of MLflow's default minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # any failure here means "cannot use this store"
        raise PipelineError(f"MLflow tracking store {redact(uri)} is not usable: "
                            f"{scrub(_refusal(exc), uri)}") from exc
    return client


def client_for(uri: str) -> MlflowClient:
    """A client for ``uri`` without probing it: for callers that retry their own calls."""
    return MlflowClient(tracking_uri=uri)


def _refusal(exc: Exception) -> str:
    """Why the store refused: a rejected login said plainly, anything else its first line."""
    status = getattr(exc, "get_http_status_code", lambda: None)()
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 401 and not user:
        return ("authentication required (HTTP 401): set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD in the environment")
    if status == 401:
        return f"authentication failed for user {user!r} (HTTP 401): wrong username or password"
    if status == 403:
        return f"permission denied for user {user!r} (HTTP 403)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first[:200]


def experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    """The sweep's experiment, created if new; either way marked as model training."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        mark_model_training(client, exp)
        return exp.experiment_id
    try:
        created = client.create_experiment(name, artifact_location=artifact_location(uri, name),
                                           tags={TAG_EXPERIMENT_KIND: KIND_MODEL_TRAINING})
    except Exception:  # another sweep may have created it meanwhile
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id
    retire_empty_default(client, uri)
    return created


def mark_model_training(client: MlflowClient, exp: Experiment) -> None:
    """Tag an experiment made before the tag existed; a kind someone chose is kept."""
    if TAG_EXPERIMENT_KIND not in exp.tags:
        client.set_experiment_tag(exp.experiment_id, TAG_EXPERIMENT_KIND, KIND_MODEL_TRAINING)


def retire_empty_default(client: MlflowClient, uri: str) -> None:
    """Delete (restorably) MLflow's own ``Default`` experiment of the project's SQLite store
    while it holds no run: MLflow creates it with the store, the sweeps never use it, and
    listed beside a sweep named ``default`` it reads as a second, empty sweep. A tracking
    server's, or one that has runs, is left alone."""
    if not uri.startswith("sqlite:///"):
        return
    try:
        default = client.get_experiment(DEFAULT_EXPERIMENT_ID)
        if default.lifecycle_stage == "active" and not client.search_runs(
                [DEFAULT_EXPERIMENT_ID], max_results=1):
            client.delete_experiment(DEFAULT_EXPERIMENT_ID)
    except Exception:  # cosmetic: never worth failing a sweep over
        return


def done_hashes(client: MlflowClient, exp_id: str, fingerprint: str) -> set[str]:
    """Hashes of configurations that already finished (or diverged) on this dataset."""
    runs = search_all(client, exp_id,
                      f"tags.{TAG_DATASET} = '{fingerprint}' and tags.{TAG_ROLE} = '{ROLE_CONFIG}'")
    return {r.data.tags[TAG_HASH] for r in runs
            if r.data.tags.get(TAG_STATUS) in DONE_STATUSES and TAG_HASH in r.data.tags}


def search_all(client: MlflowClient, exp_id: str, filter_string: str = "") -> list[Run]:
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def latest_parent(client: MlflowClient, exp_id: str) -> Run | None:
    runs = client.search_runs([exp_id], f"tags.{TAG_ROLE} = '{ROLE_SWEEP}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def done_before(client: MlflowClient, exp_id: str, parent: Run, have: list[Run]) -> list[Run]:
    """Runs of configurations ``parent``'s sweep planned that an earlier attempt (or another
    sweep) finished, so the sweep skipped them and ``have`` (its own children) lacks them:
    one done run per configuration, on the same dataset. A sweep recorded before its plan
    was (no planned.json) gets none."""
    planned = planned_hashes(client, parent.info.run_id)
    missing = planned - {r.data.tags.get(TAG_HASH) for r in have}
    if not missing:
        return []
    fingerprint, found = parent.data.tags.get(TAG_DATASET), {}
    for run in children(client, exp_id):
        tags = run.data.tags
        if tags.get(TAG_HASH) in missing and tags.get(TAG_STATUS) in DONE_STATUSES \
                and tags.get(TAG_DATASET) == fingerprint:
            found.setdefault(tags[TAG_HASH], run)
    return list(found.values())


def planned_hashes(client: MlflowClient, parent_id: str) -> set[str]:
    """The configuration hashes a sweep's parent run planned (runs.log_planned); empty if it
    has no record of them."""
    with tempfile.TemporaryDirectory(prefix="planned-") as tmp:
        try:
            path = client.download_artifacts(parent_id, ARTIFACT_PLANNED, tmp)
        except Exception:  # no such artifact: a sweep recorded before plans were
            return set()
        try:
            return {str(h) for h in json.loads(Path(path).read_text())}
        except (ValueError, TypeError):
            return set()


def children(client: MlflowClient, exp_id: str, parent_id: str | None = None) -> list[Run]:
    query = f"tags.{TAG_ROLE} = '{ROLE_CONFIG}'"
    if parent_id:
        query += f" and tags.`{TAG_PARENT}` = '{parent_id}'"
    return search_all(client, exp_id, query)


def log_dataset_input(client: MlflowClient, run_id: str, name: str, digest: str,
                      source: str) -> None:
    """The prepared dataset as the run's MLflow dataset input (the UI's Datasets column).

    MLflow keeps one dataset record per experiment, name and digest, inserted by whichever run
    logs it first: two runs logging it at the same moment can both try to insert it, and the
    loser is refused. Logged again, it finds the record and only links it."""
    dataset = Dataset(name=name, digest=digest, source_type="local", source=source)
    inputs = [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except Exception as exc:
        if not _duplicate_insert(exc):
            raise
        client.log_inputs(run_id, datasets=inputs)


def _duplicate_insert(exc: BaseException) -> bool:
    text = str(exc)
    return any(word in text for word in ("UNIQUE constraint", "IntegrityError", "duplicate key",
                                         "Duplicate entry"))


def experiment_link(ui: str, experiment_id: str) -> str:
    """The MLflow UI's page listing the experiment's training runs (not its GenAI overview).

    MLflow 3.17's UI takes an experiment's kind from its GenAI / Model training switch, not
    from the experiment's tag, and the switch starts on GenAI: the link sets it."""
    return f"{ui}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def log_config_params(client: MlflowClient, run_id: str, cfg: RunConfig) -> None:
    """The flattened configuration as run params (``model.hidden_activation`` = ``relu``)."""
    params = flatten(to_dict(cfg))
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
