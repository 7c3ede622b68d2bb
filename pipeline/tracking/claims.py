"""Leases and claims in MLflow, so sweeps sharing an experiment never train a configuration twice.

MLflow is the one thing every sweep shares, so it holds the state:

* a *heartbeat* tag (ms since the epoch) on a running parent or child run, refreshed every
  ``lease_seconds / 4`` by a thread of the process doing the work. A run whose status tag says
  running but whose heartbeat is older than ``lease_seconds`` belongs to a dead process. Each
  run carries the lease of the sweep that keeps it alive (tag ``lease_seconds``) and is judged
  by that one: sweeps with different leases share an experiment safely.
* a *claim*: before a configuration starts, rank 0 creates (or, to resume, re-takes) its child
  run with status running, its sweep as parent and a ``claimed_at`` time; waits
  ``claim_settle_seconds`` so that a rival claiming at the same moment is visible; then looks
  at every live claim of that configuration. The oldest ``claimed_at`` (run id breaks ties)
  wins; a loser deletes the run it created and skips the configuration. MLflow has no
  compare-and-swap; this works as long as host clocks agree to well within the settle time.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from dataclasses import dataclass

from mlflow.entities import Run, RunTag
from mlflow.tracking import MlflowClient

from pipeline.config import TrackingConfig
from pipeline.tracking import store
from pipeline.tracking.vocab import (
    DONE_STATUSES,
    FAILED,
    ROLE_CONFIG,
    RUNNING,
    TAG_CLAIMED_AT,
    TAG_DATASET,
    TAG_HASH,
    TAG_HEARTBEAT,
    TAG_LEASE,
    TAG_ORPHANED,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRAINER,
)


def now_ms() -> int:
    return int(time.time() * 1000)


def last_heartbeat(run: Run) -> int:
    """The heartbeat tag; runs recorded before heartbeats existed count from their start."""
    tag = run.data.tags.get(TAG_HEARTBEAT, "")
    return int(tag) if tag.isdigit() else int(run.info.start_time or 0)


def run_lease(run: Run, default: float) -> float:
    """The lease of the sweep keeping ``run`` alive (its tag); ``default`` for runs recorded
    before leases were tagged, or with a value that is not a positive finite number."""
    try:
        lease = float(run.data.tags.get(TAG_LEASE, ""))
    except ValueError:
        return default
    return lease if math.isfinite(lease) and lease > 0 else default


def is_live(run: Run, lease_seconds: float, at_ms: int | None = None) -> bool:
    """Running and heard from within its own lease (``lease_seconds`` if it has none)."""
    if run.data.tags.get(TAG_STATUS) != RUNNING:
        return False
    return (at_ms or now_ms()) - last_heartbeat(run) <= run_lease(run, lease_seconds) * 1000


def lease_tag(settings: TrackingConfig) -> str:
    return f"{settings.lease_seconds:g}"


class Heartbeat:
    """A daemon thread refreshing a run's heartbeat tag until stopped.

    Failures are ignored: a missed beat only matters if the outage outlasts the lease,
    and the records that matter go through RunLog's retry and spool.
    """

    def __init__(self, uri: str, run_id: str, lease_seconds: float) -> None:
        self._client = MlflowClient(uri)
        self._run_id = run_id
        self._interval = lease_seconds / 4
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._client.set_tag(self._run_id, TAG_HEARTBEAT, str(now_ms()))
            except Exception:  # see the class docstring
                continue


@dataclass(frozen=True)
class ClaimRequest:
    """What rank 0 knows about the configuration it is about to start."""

    experiment_id: str
    parent_run_id: str
    config_hash: str
    fingerprint: str
    tags: dict[str, str]          # the child run's tags, as for a new run
    resume_run_id: str | None     # the run a checkpoint belongs to, if resuming
    force: bool                   # --force: done runs do not stop a new one


@dataclass(frozen=True)
class Claim:
    run_id: str | None  # None: not ours to train
    reason: str = ""


def claim(client: MlflowClient, req: ClaimRequest, settings: TrackingConfig,
          run_name: str) -> Claim:
    rival = _rival(client, req, settings)
    if rival:
        return Claim(None, rival)  # cheap path: no run created when the answer is already known
    run_id = _take(client, req, run_name, lease_tag(settings))
    time.sleep(settings.claim_settle_seconds)
    rival = _rival(client, req, settings)
    if not rival:
        return Claim(run_id)
    if req.resume_run_id is None:
        client.delete_run(run_id)  # a run that trained nothing would only confuse reports
    elif client.get_run(run_id).data.tags.get(TAG_PARENT) == req.parent_run_id:
        # The interrupted run stays what it was, failed, not a claim nobody keeps alive; unless
        # the winner re-took this very run, whose status is then the winner's.
        client.set_tag(run_id, TAG_STATUS, FAILED)
        client.set_terminated(run_id, "FAILED")
    return Claim(None, rival)


def trainer() -> str:
    """This process as the ``trainer`` tag names it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _take(client: MlflowClient, req: ClaimRequest, run_name: str, lease: str) -> str:
    stamp = str(now_ms())
    tags = {TAG_PARENT: req.parent_run_id, TAG_CLAIMED_AT: stamp, TAG_HEARTBEAT: stamp,
            TAG_STATUS: RUNNING, TAG_LEASE: lease, TAG_TRAINER: trainer()}
    if req.resume_run_id is None:
        return client.create_run(req.experiment_id, run_name=run_name,
                                 tags={**req.tags, **tags}).info.run_id
    # Resuming: the interrupted run moves to this sweep. One batch, so no reader sees the
    # running status without the new claim time.
    client.log_batch(req.resume_run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    client.update_run(req.resume_run_id, status="RUNNING")
    return req.resume_run_id


def _rival(client: MlflowClient, req: ClaimRequest, settings: TrackingConfig) -> str:
    """Why this sweep must not train the configuration ('' if it may)."""
    runs = store.search_all(client, req.experiment_id, (
        f"tags.{TAG_HASH} = '{req.config_hash}' and tags.{TAG_ROLE} = "
        f"'{ROLE_CONFIG}' and tags.{TAG_DATASET} = '{req.fingerprint}'"))
    done = [r for r in runs if r.data.tags.get(TAG_STATUS) in DONE_STATUSES]
    if done and not req.force:
        return f"already done (run {done[0].info.run_id})"
    live = [r for r in runs if is_live(r, settings.lease_seconds)]
    if not live:
        return ""
    first = min(live, key=lambda r: (int(r.data.tags.get(TAG_CLAIMED_AT, "0") or 0),
                                     r.info.run_id))
    owner = first.data.tags.get(TAG_PARENT)
    if owner == req.parent_run_id:
        # Ours: the run just claimed or, after a claim whose reply was lost and that was
        # tried again, its twin, which never trains and whose lease runs out.
        return ""
    return f"being trained by sweep run {owner} (run {first.info.run_id})"


def mark_orphans(client: MlflowClient, experiment_id: str, settings: TrackingConfig,
                 by_parent: str) -> list[Run]:
    """Parent and child runs left running by a process that stopped heartbeating: failed."""
    at = now_ms()
    runs = store.search_all(client, experiment_id,
                               f"tags.{TAG_STATUS} = '{RUNNING}'")
    orphans = [r for r in runs if r.info.run_id != by_parent
               and not is_live(r, settings.lease_seconds, at)]
    for run in orphans:
        silent = (at - last_heartbeat(run)) / 1000
        lease = run_lease(run, settings.lease_seconds)
        client.log_batch(run.info.run_id, tags=[
            RunTag(TAG_STATUS, FAILED),
            RunTag(TAG_ORPHANED, f"no heartbeat for {silent:.0f}s (lease {lease:g}s): its "
                                 f"process died; marked by sweep run {by_parent}")])
        client.set_terminated(run.info.run_id, "FAILED")
    return orphans
