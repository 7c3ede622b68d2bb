"""Sweeps with different leases sharing one experiment, against a real SQLite store: each run is
judged by the lease of the sweep that keeps it alive, not by the lease of the sweep looking."""

from __future__ import annotations

import os
import socket

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import SweepConfig, TrackingConfig
from pipeline.data.manifest import Manifest
from pipeline.tracking import claims, runs
from pipeline.tracking.vocab import (
    FAILED,
    ROLE_CONFIG,
    TAG_DATASET,
    TAG_HASH,
    TAG_HEARTBEAT,
    TAG_LEASE,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRAINER,
)
from tests.helpers.stores import sqlite_store

LONG = TrackingConfig(lease_seconds=600, claim_settle_seconds=0.0)
SHORT = TrackingConfig(lease_seconds=10, claim_settle_seconds=0.0)
MANIFEST = Manifest(dataset="d", fingerprint="fp", source_format="npz", source_sha256="x",
                    image_shape=[4, 4, 1], num_classes=2, pixel_dtype="uint8")


@pytest.fixture
def store(tmp_path) -> tuple[MlflowClient, str]:
    client = MlflowClient(sqlite_store(tmp_path / "mlflow.db"))
    return client, client.create_experiment("leases")


def _sweep(client: MlflowClient, exp_id: str, settings: TrackingConfig) -> str:
    sweep = SweepConfig(name="leases", dataset="d", tracking=settings)
    return runs.start_parent(client, exp_id, sweep, MANIFEST, 1, 1, [])


def _request(exp_id: str, parent: str) -> claims.ClaimRequest:
    return claims.ClaimRequest(exp_id, parent, "h", "fp", {
        TAG_ROLE: ROLE_CONFIG, TAG_HASH: "h", TAG_DATASET: "fp"}, None, False)


def _beat_ago(client: MlflowClient, run_id: str, seconds: float) -> None:
    client.set_tag(run_id, TAG_HEARTBEAT, str(claims.now_ms() - int(seconds * 1000)))


def test_a_short_lease_sweep_leaves_a_live_long_lease_sweep_alone(store):
    client, exp_id = store
    long_parent = _sweep(client, exp_id, LONG)
    mine = claims.claim(client, _request(exp_id, long_parent), LONG, "h").run_id
    assert mine is not None
    for run_id in (long_parent, mine):  # a normal gap for a 600 s lease (beats every 150 s)
        _beat_ago(client, run_id, 60)

    short_parent = _sweep(client, exp_id, SHORT)
    assert claims.mark_orphans(client, exp_id, SHORT, short_parent) == []
    rival = claims.claim(client, _request(exp_id, short_parent), SHORT, "h")
    assert rival.run_id is None and long_parent in rival.reason
    assert client.get_run(mine).data.tags[TAG_STATUS] == "running"
    for run_id in (long_parent, mine):  # each run says which lease judges it
        assert client.get_run(run_id).data.tags[TAG_LEASE] == "600"
    # ... and the claimed run names the process that trains it
    assert client.get_run(mine).data.tags[TAG_TRAINER] == f"{socket.gethostname()}:{os.getpid()}"


def test_a_run_silent_past_its_own_lease_is_still_an_orphan(store):
    client, exp_id = store
    long_parent = _sweep(client, exp_id, LONG)
    mine = claims.claim(client, _request(exp_id, long_parent), LONG, "h").run_id
    for run_id in (long_parent, mine):
        _beat_ago(client, run_id, 700)
    short_parent = _sweep(client, exp_id, SHORT)
    orphans = {r.info.run_id for r in claims.mark_orphans(client, exp_id, SHORT, short_parent)}
    assert orphans == {long_parent, mine}
    assert client.get_run(mine).data.tags[TAG_STATUS] == FAILED
    assert "lease 600s" in client.get_run(mine).data.tags["orphaned"]


def test_runs_without_a_lease_tag_are_judged_by_the_lookers_lease(store):
    client, exp_id = store
    old = client.create_run(exp_id, tags={TAG_STATUS: "running"}).info.run_id
    _beat_ago(client, old, 60)  # recorded before leases were tagged
    assert not claims.is_live(client.get_run(old), SHORT.lease_seconds)
    assert claims.is_live(client.get_run(old), LONG.lease_seconds)
    client.set_tag(old, TAG_LEASE, "nan")  # unreadable: the looker's lease, not forever
    assert not claims.is_live(client.get_run(old), SHORT.lease_seconds)
