"""Leases and claims in MLflow, so sweeps sharing an experiment never train a configuration twice.

MLflow is the one thing every sweep shares, so it holds the state:

* a *heartbeat* tag (ms since the epoch) on a running parent or child run, refreshed every
  ``lease_seconds / 4`` by a thread of the process doing the work. A run whose status tag says
  running but whose heartbeat is older than ``lease_seconds`` belongs to a dead process. Each
  run carries the lease of the sweep that keeps it alive (tag ``lease_seconds``) and is judged
  by that one: sweeps with different leases share an experiment safely.
* a *claim*: before a configuration starts, rank 0 stakes a claim: it creates its child run
  already owned (status running, its sweep as parent, a ``claimed_at`` time) or, to resume an
  existing run, adds only a ``claim.<its parent run id>`` tag to it. It waits
  ``claim_settle_seconds`` so that a rival claiming at the same moment is visible, then looks
  at every holder of that configuration: live runs, paused runs of live sweeps and claims
  staked within the lease. The oldest claim time (parent run id breaks ties) wins. A loser
  deletes the run it created, or its claim tag, and skips the configuration; the winner of a
  resume only then moves the run to its sweep. A run is thus changed by its owner alone.
  MLflow has no compare-and-swap; this works as long as host clocks agree to well within
  the settle time.
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
    PAUSED,
    ROLE_CONFIG,
    RUNNING,
    TAG_CLAIM_PREFIX,
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
    reason = rival(client, req, settings)
    if reason:
        return Claim(None, reason)  # cheap path: nothing written when the answer is already known
    taken = take(client, req, run_name, lease_tag(settings))
    time.sleep(settings.claim_settle_seconds)
    reason = rival(client, req, settings)
    if reason:
        _withdraw(client, req, taken)
        return Claim(None, reason)
    if req.resume_run_id is not None:
        _own(client, req, taken, lease_tag(settings))
    return Claim(taken.run_id)


def trainer() -> str:
    """This process as the ``trainer`` tag names it: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_tag(parent_run_id: str) -> str:
    return f"{TAG_CLAIM_PREFIX}{parent_run_id}"


@dataclass(frozen=True)
class Taken:
    run_id: str
    stamp: str  # the claim time, which the owner keeps as ``claimed_at``


def take(client: MlflowClient, req: ClaimRequest, run_name: str, lease: str) -> Taken:
    """Stake this sweep's claim. A new run is created already owned (no other sweep writes to
    it); an existing run gets only this sweep's own ``claim.<parent>`` tag, so a claimer that
    loses has changed nothing another sweep relies on."""
    stamp = str(now_ms())
    if req.resume_run_id is not None:
        client.set_tag(req.resume_run_id, claim_tag(req.parent_run_id), stamp)
        return Taken(req.resume_run_id, stamp)
    tags = {**req.tags, **_ownership(req, stamp, lease)}
    run = client.create_run(req.experiment_id, run_name=run_name, tags=tags)
    return Taken(run.info.run_id, stamp)


def _ownership(req: ClaimRequest, stamp: str, lease: str) -> dict[str, str]:
    return {TAG_PARENT: req.parent_run_id, TAG_CLAIMED_AT: stamp, TAG_HEARTBEAT: str(now_ms()),
            TAG_STATUS: RUNNING, TAG_LEASE: lease, TAG_TRAINER: trainer()}


def _own(client: MlflowClient, req: ClaimRequest, taken: Taken, lease: str) -> None:
    """The winner of a resume moves the run to its sweep, in one batch so that no reader
    sees the running status without the owner's claim time."""
    tags = _ownership(req, taken.stamp, lease)
    client.log_batch(taken.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    client.update_run(taken.run_id, status="RUNNING")
    _drop_claim(client, req, taken)  # the owner's claim time now stands as ``claimed_at``


def _drop_claim(client: MlflowClient, req: ClaimRequest, taken: Taken) -> None:
    try:  # a claim left behind lapses with the lease; removing it only tidies the run
        client.delete_tag(taken.run_id, claim_tag(req.parent_run_id))
    except Exception:
        return


def _withdraw(client: MlflowClient, req: ClaimRequest, taken: Taken) -> None:
    if req.resume_run_id is None:
        client.delete_run(taken.run_id)  # a run that trained nothing would only confuse reports
        return
    _drop_claim(client, req, taken)


@dataclass(frozen=True)
class _Holder:
    stamp: int
    parent: str
    run_id: str
    how: str


def rival(client: MlflowClient, req: ClaimRequest, settings: TrackingConfig) -> str:
    """Why this sweep must not train the configuration ('' if it may).

    Every sweep holding the configuration is a candidate: the owner of a live run, the live
    sweep of a paused run (halving keeps it between rungs), and every claim staked within
    the lease. The oldest claim time wins (parent run id breaks ties), so all claimers
    agree on one owner whatever order their writes land in."""
    runs = store.search_all(client, req.experiment_id, (
        f"tags.{TAG_HASH} = '{req.config_hash}' and tags.{TAG_ROLE} = "
        f"'{ROLE_CONFIG}' and tags.{TAG_DATASET} = '{req.fingerprint}'"))
    done = [r for r in runs if r.data.tags.get(TAG_STATUS) in DONE_STATUSES]
    if done and not req.force:
        return f"already done (run {done[0].info.run_id})"
    holders = _holders(client, runs, settings.lease_seconds)
    if not holders:
        return ""
    first = min(holders, key=lambda h: (h.stamp, h.parent))
    if first.parent == req.parent_run_id:
        # Ours: the run just claimed or, after a claim whose reply was lost and that was
        # tried again, its twin, which never trains and whose lease runs out.
        return ""
    return f"{first.how} by sweep run {first.parent} (run {first.run_id})"


def _holders(client: MlflowClient, runs: list[Run], lease_seconds: float) -> list[_Holder]:
    at, found = now_ms(), []
    live_parents: dict[str, bool] = {}
    for run in runs:
        tags, run_id = run.data.tags, run.info.run_id
        owner, since = tags.get(TAG_PARENT, ""), _stamp(tags.get(TAG_CLAIMED_AT))
        if is_live(run, lease_seconds, at):
            found.append(_Holder(since, owner, run_id, "being trained"))
        elif tags.get(TAG_STATUS) == PAUSED and _parent_live(client, owner, lease_seconds,
                                                             live_parents):
            found.append(_Holder(since, owner, run_id, "paused"))
        found += [_Holder(_stamp(v), k.removeprefix(TAG_CLAIM_PREFIX), run_id, "being claimed")
                  for k, v in tags.items() if k.startswith(TAG_CLAIM_PREFIX)
                  and at - _stamp(v) <= lease_seconds * 1000]
    return found


def _parent_live(client: MlflowClient, parent: str, lease_seconds: float,
                 seen: dict[str, bool]) -> bool:
    if parent not in seen:
        try:
            seen[parent] = bool(parent) and is_live(client.get_run(parent), lease_seconds)
        except Exception:  # a deleted or unknown parent keeps nothing alive
            seen[parent] = False
    return seen[parent]


def _stamp(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


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
