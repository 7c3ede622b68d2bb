"""Claims on a run that already exists (a resume: a relaunch, a halving rung, a dead sweep's
run taken over), against a real SQLite store: one owner, whatever the interleaving, and a
paused run of a live sweep stays that sweep's."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import claims, vocab
from tests.helpers.stores import sqlite_store
from tests.unit.test_tracking_runs import FAST, _child, _parent


@pytest.fixture
def client(tmp_path) -> MlflowClient:
    return MlflowClient(sqlite_store(tmp_path / "mlflow.db"))


def _resume(exp: str, parent: str, run_id: str) -> claims.ClaimRequest:
    tags = {vocab.TAG_ROLE: vocab.ROLE_CONFIG, vocab.TAG_HASH: "h1", vocab.TAG_DATASET: "fp"}
    return claims.ClaimRequest(exp, parent, "h1", "fp", tags, run_id, False)


def _interrupted(client: MlflowClient, exp: str, status: str = vocab.FAILED) -> str:
    run_id = _child(client, exp, "h1", status)
    client.set_tag(run_id, vocab.TAG_DATASET, "fp")
    return run_id


def test_a_resume_taken_after_the_winner_checked_loses_and_leaves_the_owner_alone(client):
    exp = client.create_experiment("e")
    run_id = _interrupted(client, exp)
    a, b = _parent(client, exp), _parent(client, exp)
    lease = claims.lease_tag(FAST)
    # B looks first and sees nobody; A then claims the run whole and starts training it ...
    assert claims.rival(client, _resume(exp, b, run_id), FAST) == ""
    assert claims.claim(client, _resume(exp, a, run_id), FAST, "r").run_id == run_id
    # ... and only then does B's take land, followed by B's check after its settle time.
    claims.take(client, _resume(exp, b, run_id), "r", lease)
    assert a in claims.rival(client, _resume(exp, b, run_id), FAST)  # B loses
    tags = client.get_run(run_id).data.tags
    assert tags[vocab.TAG_PARENT] == a and tags[vocab.TAG_STATUS] == vocab.RUNNING
    assert claims.rival(client, _resume(exp, a, run_id), FAST) == ""  # A still owns it


def test_two_resumes_at_the_same_moment_have_one_winner(client):
    exp = client.create_experiment("e")
    run_id = _interrupted(client, exp)
    a, b = _parent(client, exp), _parent(client, exp)
    lease = claims.lease_tag(FAST)
    for parent in (a, b):  # both look, both take, then both check
        assert claims.rival(client, _resume(exp, parent, run_id), FAST) == ""
    claims.take(client, _resume(exp, a, run_id), "r", lease)
    claims.take(client, _resume(exp, b, run_id), "r", lease)
    verdicts = [claims.rival(client, _resume(exp, p, run_id), FAST) for p in (a, b)]
    assert verdicts[0] == "" and b not in verdicts[0]
    assert a in verdicts[1]


def test_a_paused_run_of_a_live_sweep_is_that_sweeps(client):
    exp = client.create_experiment("e")
    halving = _parent(client, exp)  # a live parent: its heartbeat is fresh
    paused = _interrupted(client, exp, vocab.PAUSED)
    client.set_tag(paused, vocab.TAG_PARENT, halving)
    other = _parent(client, exp)
    got = claims.claim(client, _resume(exp, other, paused), FAST, "r")
    assert got.run_id is None and halving in got.reason
    assert client.get_run(paused).data.tags[vocab.TAG_STATUS] == vocab.PAUSED
    # its own sweep resumes it at the next rung
    assert claims.claim(client, _resume(exp, halving, paused), FAST, "r").run_id == paused


def test_a_paused_run_of_a_dead_sweep_may_be_taken(client):
    exp = client.create_experiment("e")
    dead = _parent(client, exp)
    client.set_tag(dead, vocab.TAG_HEARTBEAT, str(claims.now_ms() - 3_600_000))
    paused = _interrupted(client, exp, vocab.PAUSED)
    client.set_tag(paused, vocab.TAG_PARENT, dead)
    other = _parent(client, exp)
    assert claims.claim(client, _resume(exp, other, paused), FAST, "r").run_id == paused
    assert client.get_run(paused).data.tags[vocab.TAG_PARENT] == other
