"""The driver's run bookkeeping: the parent run of a sweep invocation, what is done, what failed.

The ranks create and record the child runs (claims, recorder); the driver opens and closes
the parent, lists what is done, makes sure every configuration that did not finish ends
with a run whose status says so, and reads and ends the runs successive halving pauses.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from mlflow.entities import Run, RunTag
from mlflow.tracking import MlflowClient

from pipeline.config import SweepConfig
from pipeline.data.manifest import Manifest
from pipeline.tracking import claims, labels, store
from pipeline.tracking.spool import RunLog
from pipeline.tracking.vocab import (
    ARTIFACT_PLANNED,
    DONE_STATUSES,
    FAILED,
    FINISHED,
    PARAM_GRID_AXES,
    PARAM_PLANNED_RUNS,
    PAUSED,
    PRUNED,
    ROLE_CONFIG,
    ROLE_SWEEP,
    RUNNING,
    TAG_CELL,
    TAG_CONFIGURATION,
    TAG_DATASET,
    TAG_ERROR,
    TAG_HASH,
    TAG_HEARTBEAT,
    TAG_LEASE,
    TAG_PARENT,
    TAG_PREFLIGHT,
    TAG_PRUNED,
    TAG_RACE,
    TAG_REPLICATE,
    TAG_ROLE,
    TAG_RUNG_EPOCH,
    TAG_STATUS,
    TAG_SWEEP,
    TAG_TASK,
)

if TYPE_CHECKING:
    from pipeline.train.contract import Trial

KILLED = "killed"  # the parent's status when the driver was interrupted


def start_parent(client: MlflowClient, exp_id: str, sweep: SweepConfig, manifest: Manifest,
                 num_proc: int, planned_runs: int, preflight: list[str]) -> str:
    """The sweep invocation's parent run. ``planned_runs``: configurations x replicates (the
    report counts configurations, and adds both to this run's summary when it is built)."""
    name = f"{sweep.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = client.create_run(exp_id, run_name=name, tags={
        TAG_ROLE: ROLE_SWEEP, TAG_SWEEP: sweep.name, TAG_DATASET: manifest.fingerprint,
        TAG_TASK: manifest.task, TAG_STATUS: RUNNING, TAG_HEARTBEAT: str(claims.now_ms()),
        TAG_PREFLIGHT: "\n".join(preflight)[:4900] or "no findings",
        TAG_LEASE: claims.lease_tag(sweep.tracking)})
    for key, value in {"num_proc": num_proc, PARAM_PLANNED_RUNS: planned_runs,
                       "dataset": manifest.dataset, PARAM_GRID_AXES: ",".join(sweep.grid),
                       "report.min_effect": sweep.report.min_effect}.items():
        client.log_param(run.info.run_id, key, value)
    return run.info.run_id


def log_planned(client: MlflowClient, parent_id: str, trials: Iterable[Trial]) -> None:
    """Every configuration hash the sweep planned, on its parent run (store.done_before reads
    it back for the report)."""
    hashes = sorted({t.config_hash for t in trials})
    client.log_text(parent_id, json.dumps(hashes), ARTIFACT_PLANNED)


def finish_parent(log: RunLog, status: str) -> bool:
    """Through a RunLog: an outage at the very end must not lose the parent's outcome.
    Returns whether the records went to the spool."""
    log.set_tag(TAG_STATUS, status)
    log.set_terminated({FINISHED: "FINISHED", KILLED: "KILLED"}.get(status, "FAILED"))
    log.close()
    return log.offline


def fail_orphans(client: MlflowClient, exp_id: str, sweep: SweepConfig, parent: str,
                 log: Callable[[str], None]) -> list[str]:
    """Runs a dead sweep left 'running' are marked failed, one line each."""
    orphans = claims.mark_orphans(client, exp_id, sweep.tracking, parent)
    for run in orphans:
        lease = claims.run_lease(run, sweep.tracking.lease_seconds)
        log(f"sweep {sweep.name}: marked run {run.info.run_id} failed: left running by a sweep "
            f"that stopped (no heartbeat for its lease of {lease:g}s)")
    return [r.info.run_id for r in orphans]


def todo(client: MlflowClient, exp_id: str, trials: list[Trial], fingerprint: str,
         force: bool) -> list[Trial]:
    """Configurations not done yet; a rank still claims each before it starts (another
    sweep planned at the same moment sees the same list)."""
    done = set() if force else store.done_hashes(client, exp_id, fingerprint)
    return [t for t in trials if t.config_hash not in done]


def fail_stale_children(client: MlflowClient, exp_id: str, parent_id: str,
                        trained_something: Callable[[Run], bool],
                        hashes: set[str] | None = None) -> None:
    """Runs left 'running' by a crashed launch are marked failed, so none looks in progress.

    A run that is only a claim (``trained_something`` false: rank 0 claims the next
    configuration while one trains) is deleted instead, as a losing claim is: it trained
    nothing, and the relaunch claims that configuration afresh. ``hashes``: only the runs of
    these configurations (the crashed launch's), so concurrent launches keep theirs.
    """
    for run in store.children(client, exp_id, parent_id):
        if run.data.tags.get(TAG_STATUS) != RUNNING:
            continue
        if hashes is not None and run.data.tags.get(TAG_HASH) not in hashes:
            continue
        if not trained_something(run):
            client.delete_run(run.info.run_id)
            continue
        client.set_tag(run.info.run_id, TAG_STATUS, FAILED)
        client.set_terminated(run.info.run_id, "FAILED")


def record_failures(client: MlflowClient, exp_id: str, parent_id: str, sweep: str,
                    fingerprint: str, failed: Iterable[Trial]) -> None:
    """Every configuration that never finished gets a failed run, so reports list it."""
    failed = list(failed)
    if not failed:
        return  # no MLflow call: after an outage the store may still be down
    have = {r.data.tags.get(TAG_HASH) for r in store.children(client, exp_id, parent_id)}
    for trial in failed:
        if trial.config_hash in have:
            continue  # the rank created its run; fail_stale_children marked it failed
        run = client.create_run(exp_id, run_name=labels.run_name(trial), tags={
            TAG_PARENT: parent_id, TAG_ROLE: ROLE_CONFIG, TAG_SWEEP: sweep,
            TAG_HASH: trial.config_hash, TAG_CELL: trial.cell_hash,
            TAG_CONFIGURATION: labels.cell_label(trial),
            TAG_REPLICATE: str(trial.replicate), TAG_DATASET: fingerprint, TAG_STATUS: FAILED,
            TAG_ERROR: "training did not complete; see the sweep's console output"})
        store.log_config_params(client, run.info.run_id, trial.config)
        client.set_terminated(run.info.run_id, "FAILED")


def finished_children(client: MlflowClient, exp_id: str, parent_id: str,
                      hashes: set[str]) -> list[Run]:
    """The done runs, one per hash, among ``hashes`` (read back after a failed launch)."""
    out, wanted = [], set(hashes)
    for run in store.children(client, exp_id, parent_id):
        tags = run.data.tags
        if tags.get(TAG_HASH) in wanted and tags.get(TAG_STATUS) in DONE_STATUSES:
            out.append(run)
            wanted.discard(tags[TAG_HASH])
    return out


def value_before(client: MlflowClient, run: Run, metric: str, epoch: int) -> float:
    """``metric``'s value at the last step below ``epoch`` (steps count from 0), or NaN."""
    steps = [m for m in client.get_metric_history(run.info.run_id, metric) if m.step < epoch]
    return max(steps, key=lambda m: m.step).value if steps else math.nan


def latest_by_hash(client: MlflowClient, exp_id: str, hashes: set[str]) -> dict[str, Run]:
    """The run of each configuration hash that holds its progress: a done, paused or pruned
    run before any other (failed claims and relaunches leave several), the newest first."""
    rank = {s: i for i, s in enumerate((*DONE_STATUSES, PAUSED, PRUNED))}

    def order(run: Run) -> tuple[int, int]:
        return rank.get(run.data.tags.get(TAG_STATUS), len(rank)), -run.info.start_time

    best: dict[str, Run] = {}
    for run in store.children(client, exp_id):
        h = run.data.tags.get(TAG_HASH)
        if h in hashes and (h not in best or order(run) < order(best[h])):
            best[h] = run
    return best


def mark_pruned(client: MlflowClient, run_id: str, why: str, epoch: int) -> None:
    """End a paused run as pruned at ``epoch`` (MLflow status KILLED), saying why."""
    client.log_batch(run_id, tags=[RunTag(TAG_PRUNED, why), RunTag(TAG_RUNG_EPOCH, str(epoch)),
                                   RunTag(TAG_STATUS, PRUNED)])
    client.set_terminated(run_id, "KILLED")


def mark_race(client: MlflowClient, run_ids: Iterable[str], why: str) -> None:
    """Tag a racing cell's runs with why it has the replicates it has ("out after 2
    (worse)"); rewritten by every race that decides again, so the last decision stands."""
    for run_id in run_ids:
        client.set_tag(run_id, TAG_RACE, why)
