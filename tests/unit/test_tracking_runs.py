"""Run bookkeeping and claims against a real SQLite MLflow store, in-process and fast."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import RunConfig, SweepConfig, TrackingConfig, parse
from pipeline.tracking import claims, labels, runs, store, vocab
from pipeline.tracking.spool import Retry, RunLog
from tests.helpers import trial
from tests.helpers.stores import sqlite_store
from tests.unit.test_plan import _manifest

FAST = TrackingConfig(claim_settle_seconds=0.0, lease_seconds=60.0)


@pytest.fixture
def client(tmp_path) -> MlflowClient:
    return MlflowClient(sqlite_store(tmp_path / "mlflow.db"))


def _parent(client: MlflowClient, exp: str) -> str:
    sweep = parse(SweepConfig, {"name": "s", "dataset": "tiny"})
    return runs.start_parent(client, exp, sweep, _manifest(), 2, 1, ["a: b"])


def _request(exp: str, parent: str, config_hash: str = "h1") -> claims.ClaimRequest:
    tags = {vocab.TAG_ROLE: vocab.ROLE_CONFIG, vocab.TAG_HASH: config_hash,
            vocab.TAG_DATASET: "fp"}
    return claims.ClaimRequest(exp, parent, config_hash, "fp", tags, None, False)


def test_parent_carries_the_sweep_tags_and_preflight(client):
    exp = client.create_experiment("e")
    run = client.get_run(_parent(client, exp))
    assert run.data.tags[vocab.TAG_ROLE] == vocab.ROLE_SWEEP
    assert run.data.tags[vocab.TAG_STATUS] == vocab.RUNNING
    assert run.data.tags[vocab.TAG_PREFLIGHT] == "a: b"
    assert run.data.params[vocab.PARAM_GRID_AXES] == ""


@pytest.mark.parametrize("status, mlflow_status", [
    (vocab.FINISHED, "FINISHED"), (vocab.FAILED, "FAILED"), (runs.KILLED, "KILLED")])
def test_finish_parent_ends_the_run_in_its_status(client, tmp_path, status, mlflow_status):
    exp = client.create_experiment("e")
    parent = _parent(client, exp)
    spooled = runs.finish_parent(RunLog(client, parent, tmp_path / "spool", Retry(0, 0)), status)
    run = client.get_run(parent)
    assert not spooled
    assert run.data.tags[vocab.TAG_STATUS] == status and run.info.status == mlflow_status


def test_first_claim_wins_and_a_rival_sweep_is_told_who_has_it(client):
    exp = client.create_experiment("e")
    mine, theirs = _parent(client, exp), _parent(client, exp)
    won = claims.claim(client, _request(exp, mine), FAST, "cfg")
    lost = claims.claim(client, _request(exp, theirs), FAST, "cfg")
    assert won.run_id is not None and lost.run_id is None
    assert f"being trained by sweep run {mine}" in lost.reason
    assert len(store.children(client, exp)) == 1  # the loser made no run (cheap path)
    client.set_tag(won.run_id, vocab.TAG_STATUS, vocab.FINISHED)
    again = claims.claim(client, _request(exp, theirs), FAST, "cfg")
    assert again.run_id is None and again.reason.startswith("already done")
    assert store.done_hashes(client, exp, "fp") == {"h1"}


def test_a_silent_running_run_is_marked_orphaned_and_a_live_one_is_not(client):
    exp = client.create_experiment("e")
    parent = _parent(client, exp)
    stale = claims.claim(client, _request(exp, parent, "old"), FAST, "old").run_id
    live = claims.claim(client, _request(exp, parent, "new"), FAST, "new").run_id
    client.set_tag(stale, vocab.TAG_HEARTBEAT, str(claims.now_ms() - 3_600_000))
    orphans = [r.info.run_id for r in claims.mark_orphans(client, exp, FAST, by_parent=parent)]
    assert orphans == [stale]
    assert client.get_run(stale).data.tags[vocab.TAG_STATUS] == vocab.FAILED
    assert "no heartbeat" in client.get_run(stale).data.tags[vocab.TAG_ORPHANED]
    assert client.get_run(live).data.tags[vocab.TAG_STATUS] == vocab.RUNNING


def test_stale_children_are_failed_or_deleted_and_missing_ones_recorded(client):
    exp = client.create_experiment("e")
    parent = _parent(client, exp)
    trained = claims.claim(client, _request(exp, parent, "a"), FAST, "a").run_id
    client.log_metric(trained, "loss", 0.5)
    claim_only = claims.claim(client, _request(exp, parent, "b"), FAST, "b").run_id
    runs.fail_stale_children(client, exp, parent, lambda run: bool(run.data.metrics))
    assert client.get_run(trained).data.tags[vocab.TAG_STATUS] == vocab.FAILED
    assert client.get_run(claim_only).info.lifecycle_stage == "deleted"
    never = trial("c #1", RunConfig())
    runs.record_failures(client, exp, parent, "s", "fp", [never])
    [failed] = [r for r in store.children(client, exp, parent)
                if r.data.tags[vocab.TAG_HASH] == never.config_hash]
    assert failed.data.tags[vocab.TAG_STATUS] == vocab.FAILED
    assert failed.data.params["model.hidden_activation"] == "relu"
    assert failed.data.tags[vocab.TAG_REPLICATE] == "0"


def _child(client: MlflowClient, exp: str, config_hash: str, status: str) -> str:
    tags = {vocab.TAG_ROLE: vocab.ROLE_CONFIG, vocab.TAG_HASH: config_hash,
            vocab.TAG_STATUS: status}
    return client.create_run(exp, tags=tags).info.run_id


def test_halving_reads_the_run_holding_a_configurations_progress_and_ends_it_pruned(client):
    exp = client.create_experiment("e")
    _child(client, exp, "h1", vocab.FAILED)  # a failed claim, then the paused run
    paused = _child(client, exp, "h1", vocab.PAUSED)
    _child(client, exp, "h2", vocab.FAILED)
    for step, value in enumerate((0.5, 0.7, 0.9)):
        client.log_metric(paused, "val_accuracy", value, step=step)
    found = runs.latest_by_hash(client, exp, {"h1", "h2"})
    assert found["h1"].info.run_id == paused and found["h2"].data.tags["status"] == "failed"
    # epoch 2 of training has step 1: the value the decision at a budget of 2 epochs uses
    assert runs.value_before(client, found["h1"], "val_accuracy", 2) == 0.7
    assert math.isnan(runs.value_before(client, found["h1"], "val_accuracy", 0))  # nothing yet
    runs.mark_pruned(client, paused, "pruned at epoch 2: ...", 2)
    run = client.get_run(paused)
    assert run.info.status == "KILLED"
    assert (run.data.tags[vocab.TAG_STATUS], run.data.tags[vocab.TAG_RUNG_EPOCH],
            run.data.tags[vocab.TAG_PRUNED]) == (vocab.PRUNED, "2", "pruned at epoch 2: ...")


GRID = {"model.hidden_activation": ["relu", "tanh"],
        "head": [{"model.output_activation": "softmax", "loss": "categorical_crossentropy"},
                 {"model.output_activation": "linear", "loss": "categorical_hinge"}],
        "optimizer.learning_rate": [0.01, 0.1]}


def _trials(grid: dict, repeats: int = 2) -> list:
    from pipeline.train.driver.plan import plan_trials

    sweep = parse(SweepConfig, {"name": "s", "dataset": "tiny", "repeats": repeats,
                                "grid": grid})
    return plan_trials(sweep, _manifest(), 2, epochs=None, log=lambda m: None)


def test_run_names_say_activation_loss_output_other_factors_and_replicate():
    trials = _trials(GRID)
    names = [labels.run_name(t) for t in trials]
    assert names[:2] == ["relu | ce(softmax) | lr=0.01 | s0", "relu | ce(softmax) | lr=0.01 | s1"]
    assert "tanh | chinge(linear) | lr=0.1 | s1" in names
    assert len(set(names)) == len(trials) == 16
    # the cell's label is every replicate's, and only theirs
    cells = {labels.cell_label(t) for t in trials}
    assert len(cells) == len({t.cell_hash for t in trials}) == 8
    # a grid that varies only the activation still names the loss and output it trains with
    [only] = _trials({"model.hidden_activation": ["elu"]}, repeats=1)
    assert labels.run_name(only) == "elu | ce(softmax) | s0"


def test_a_users_own_loss_is_named_by_its_attribute_and_other_factors_compactly():
    cfg = RunConfig(loss="my.losses:focal")
    assert labels.run_name(trial("loss=my.losses:focal", cfg)) == "relu | focal(softmax) | s0"
    swept = trial("hidden_activation=relu,name=sgd,hidden_layers=[64, 64] #2", RunConfig())
    assert labels.cell_label(swept) == "relu | ce(softmax) | opt=sgd layers=[64, 64]"


def test_a_claimed_run_is_named_and_tagged_with_its_cell(client, tmp_path):
    from pipeline.tracking.resume import claim_trial
    from tests.helpers import rank_job

    exp = client.create_experiment("e")
    parent = _parent(client, exp)
    first, second = _trials(GRID)[:2]
    for t in (first, second):
        job = rank_job([t], tracking=dict(uri=client.tracking_uri, experiment_id=exp,
                                          parent_run_id=parent,
                                          spool_dir=str(tmp_path / "spool"), settings=FAST),
                       data=dict(fingerprint="fp"),
                       runtime=dict(checkpoint_dir=str(tmp_path / "ckpt")))
        assert claim_trial(job, t).run_id is not None
    got = {r.info.run_name: r.data.tags for r in store.children(client, exp, parent)}
    assert set(got) == {"relu | ce(softmax) | lr=0.01 | s0", "relu | ce(softmax) | lr=0.01 | s1"}
    assert {tags[vocab.TAG_CONFIGURATION] for tags in got.values()} == {
        "relu | ce(softmax) | lr=0.01"}


def test_failed_runs_the_driver_records_are_named_like_trained_ones(client):
    exp = client.create_experiment("e")
    parent = _parent(client, exp)
    never = _trials(GRID)[3]
    runs.record_failures(client, exp, parent, "s", "fp", [never])
    [run] = store.children(client, exp, parent)
    assert run.info.run_name == "relu | ce(softmax) | lr=0.1 | s1"
    assert run.data.tags[vocab.TAG_CONFIGURATION] == "relu | ce(softmax) | lr=0.1"


def test_the_parent_counts_planned_runs_as_runs_not_configurations(client):
    exp = client.create_experiment("e")
    params = client.get_run(_parent(client, exp)).data.params
    assert params[vocab.PARAM_PLANNED_RUNS] == "1" and "configurations" not in params


def test_sweep_experiments_open_as_model_training_and_default_is_retired_while_empty(tmp_path):
    uri = sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    old = client.create_experiment("old")  # made before the tag existed
    exp = store.experiment_id(client, "new", uri)
    assert client.get_experiment(exp).tags[vocab.TAG_EXPERIMENT_KIND] == "custom_model_development"
    assert client.get_experiment(store.DEFAULT_EXPERIMENT_ID).lifecycle_stage == "deleted"
    assert store.experiment_id(client, "old", uri) == old
    assert client.get_experiment(old).tags[vocab.TAG_EXPERIMENT_KIND] == "custom_model_development"
    client.set_experiment_tag(old, vocab.TAG_EXPERIMENT_KIND, "genai_development")
    store.experiment_id(client, "old", uri)
    assert client.get_experiment(old).tags[vocab.TAG_EXPERIMENT_KIND] == "genai_development"


def test_a_default_experiment_with_runs_is_kept(tmp_path):
    uri = sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    client.create_run(store.DEFAULT_EXPERIMENT_ID)
    store.experiment_id(client, "new", uri)
    assert client.get_experiment(store.DEFAULT_EXPERIMENT_ID).lifecycle_stage == "active"


def _log_at_once(client: MlflowClient, ids: list[str], digest: str) -> list[Exception]:
    """Every run logs the dataset from a thread of its own, released together."""
    import threading

    gate, errors = threading.Barrier(len(ids)), []

    def log(run_id: str) -> None:
        gate.wait()
        try:
            store.log_dataset_input(MlflowClient(client.tracking_uri), run_id, "tiny", digest,
                                    "/data/tiny")
        except Exception as exc:  # collected: a thread's exception would vanish
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_runs_starting_at_once_all_get_the_dataset_input(client):
    # MLflow inserts a dataset's record with the first run that logs it; runs logging it at the
    # same moment race for that insert (CI saw one refused). Each must end up linked to it.
    exp = client.create_experiment("e")
    for round_ in range(8):
        ids = [client.create_run(exp).info.run_id for _ in range(6)]
        assert _log_at_once(client, ids, f"d{round_}") == []
        for run_id in ids:
            [got] = client.get_run(run_id).inputs.dataset_inputs
            assert (got.dataset.name, got.dataset.digest) == ("tiny", f"d{round_}")
