"""Concurrent trials (several Horovod launches at once, one rank each) and successive halving,
on real Spark, Horovod and MLflow: the same numbers as one trial at a time, records that
never mix, a crash in one trial that spares the other, pruned runs that resume exactly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import load_sweep_config
from pipeline.tracking import store as tracking
from pipeline.tracking.vocab import TAG_TRAINER
from pipeline.train.driver.sweep import SweepOptions, run_sweep
from tests.helpers import load_job, write_data_config, write_npz
from tests.helpers.kill import kill_checkpointed_rank, rank_processes
from tests.helpers.stores import sqlite_store
from tests.helpers.suite import slow_fixture

pytestmark = pytest.mark.integration

EPOCH_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


@pytest.fixture(scope="module")
def data(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("concurrent")
    cfg = write_data_config(root, write_npz(root / "d.npz", n_train=1600, n_test=160))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return root / "processed" / "tiny"


def _sweep(folder: Path, body: str, spark, data: Path, **opts):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.yaml").write_text(body)
    uri = sqlite_store(folder / "mlflow.db")
    options = SweepOptions(data, tracking_uri=uri, checkpoint_dir=folder / "ckpt",
                           spool_dir=folder / "spool", **opts)
    said: list[str] = []
    result = run_sweep(spark, load_sweep_config(folder / "sweep.yaml"), options, said.append)
    return result, MlflowClient(uri), said


def _histories(client: MlflowClient, exp_id: str) -> dict[str, dict[str, list[tuple]]]:
    """Run name -> metric -> [(step, value)] of every per-epoch metric, in logged order."""
    out = {}
    for run in tracking.children(client, exp_id):
        out[run.info.run_name] = {
            key: [(m.step, m.value) for m in sorted(
                client.get_metric_history(run.info.run_id, key), key=lambda m: m.timestamp)]
            for key in EPOCH_KEYS}
    return out


TWO = """
name: two
dataset: tiny
base:
  model: {hidden_layers: [8]}
  training: {epochs: 3, batch_size: 32, seed: 5}
grid:
  model.hidden_activation: [relu, tanh]
"""


class _RankCount(threading.Thread):
    """Samples how many ranks of one store are alive at once, until stopped."""

    def __init__(self, uri: str) -> None:
        super().__init__(daemon=True)
        self.uri, self.most, self.done = uri, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.most = max(self.most, len(rank_processes(self.uri)))
            # Each look reads every process's command line; the ranks live for many seconds.
            time.sleep(0.5)


@pytest.mark.slow(reason=("the same grid swept twice, two one-rank trials at once and one at a "
                          "time, to compare every logged number"))
def test_two_one_rank_trials_at_once_log_what_one_at_a_time_logs(tmp_path, spark, data):
    # Two ranks alive at once is what "at once" means; the runs' own start and end times
    # depend on how long each rank waited for a core to import TensorFlow and claim its run.
    watch = _RankCount(sqlite_store(tmp_path / "together" / "mlflow.db"))
    watch.start()
    together, client, said = _sweep(tmp_path / "together", TWO, spark, data, num_proc=2,
                                    ranks_per_trial=1)
    watch.done.set()
    watch.join()
    alone, alone_client, _ = _sweep(tmp_path / "alone", TWO, spark, data, num_proc=1)
    assert not together.failed and not alone.failed
    assert any("2 trials at once, 1 Horovod rank each" in line for line in said)
    assert watch.most == 2
    got = _histories(client, together.experiment_id)
    want = _histories(alone_client, alone.experiment_id)
    assert set(got) == {"relu | ce(softmax) | s0", "tanh | ce(softmax) | s0"}
    for name, metrics in want.items():
        for key, points in metrics.items():
            assert [s for s, _ in got[name][key]] == [0, 1, 2], (name, key)  # once each, in order
            assert got[name][key] == points, (name, key)  # same seeds, same maths: same numbers
    runs = tracking.children(client, together.experiment_id)
    for run in runs:  # each run holds its own configuration's records
        assert run.info.run_name.startswith(run.data.params["model.hidden_activation"] + " |")
    trainers = {run.data.tags[TAG_TRAINER] for run in runs}
    assert len(trainers) == 2  # one process each


@pytest.mark.slow(reason=(
    "trains until a trial has checkpointed, kills its rank and waits for the relaunched "
    "trial to finish from its checkpoint"))
def test_a_rank_killed_in_one_trial_spares_the_other(tmp_path, spark, data):
    folder = tmp_path / "crash"
    killed: dict = {}
    ended = threading.Event()
    killer = threading.Thread(target=kill_checkpointed_rank,
                              args=(sqlite_store(folder / "mlflow.db"), "crash",
                                    folder / "ckpt", killed), kwargs={"stop": ended})
    killer.start()
    result, client, said = _sweep(folder, """
name: crash
dataset: tiny
max_attempts: 3
base:
  model: {hidden_layers: [8]}
  training: {epochs: 5, batch_size: 4, seed: 4}
grid:
  model.hidden_activation: [relu, tanh]
""", spark, data, num_proc=2, ranks_per_trial=1)
    ended.set()
    killer.join()
    assert killed, "no rank was killed: training finished too fast"
    assert not result.failed
    assert sum("launch 1/3 failed" in line for line in said) == 1  # one group relaunched
    runs = tracking.children(client, result.experiment_id)
    assert len(runs) == 2 and all(r.data.tags["status"] == "finished" for r in runs)
    resumed = [r for r in runs if "resumed_from_epoch" in r.data.tags]
    assert [r.info.run_id for r in resumed] == [killed["run_id"]]  # it went on from its checkpoint
    for run in runs:  # ... and no trial's epochs were lost or trained twice
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(steps) == list(range(5)), run.info.run_name


HALVING = """
name: halving
dataset: tiny
repeats: 2
halving: {enabled: true, min_epochs: 1, eta: 2}
base:
  model: {hidden_layers: [8]}
  optimizer: {name: sgd, learning_rate: 0.02}  # slow enough for the cells to differ early
  training: {epochs: 4, batch_size: 32, seed: 3}
grid:
  model.hidden_activation: [relu, tanh, sigmoid, linear]
"""


@pytest.fixture(scope="module")
@slow_fixture("successive halving of 4 cells x 2 replicates through three rungs, each rung a "
              "launch of its own: what the two tests below examine")
def halving(tmp_path_factory, spark, data):
    """The halving sweep, once for the two tests below: its folder, result, store, output."""
    folder = tmp_path_factory.mktemp("halving")
    return (folder, *_sweep(folder / "halved", HALVING, spark, data, num_proc=2,
                            ranks_per_trial=1))


def test_halving_prunes_by_the_replicates_mean(halving, monkeypatch):
    folder, halved, client, said = halving
    assert not halved.failed
    assert [r.epoch for r in halved.rungs] == [1, 2]  # rungs at 1, 2, then 4 for the last
    assert [len(r.kept) for r in halved.rungs] == [2, 1]
    runs = {r.info.run_name: r for r in tracking.children(client, halved.experiment_id)}
    assert len(runs) == 8
    first = halved.rungs[0]
    for cell, score in first.scores.items():  # the decision is the replicates' mean
        values = [client.get_metric_history(r.info.run_id, "val_accuracy")[0].value
                  for r in runs.values() if r.data.tags["cell"] == cell]
        assert score == pytest.approx(sum(values) / 2)
    worst_kept = min(first.scores[c] for c in first.kept)
    assert all(first.scores[c] < worst_kept for c in first.pruned), first.scores  # not a tie
    status = {name: r.data.tags["status"] for name, r in runs.items()}
    assert sorted(status.values()) == ["finished"] * 2 + ["pruned"] * 6
    for run in runs.values():
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
        if run.data.tags["status"] == "pruned":  # stopped where the decision was made
            assert run.info.status == "KILLED" and run.data.tags["rung_epoch"] == str(len(steps))
            assert "pruned at epoch" in run.data.tags["pruned"]
            assert "test_accuracy" not in run.data.metrics
        else:  # the survivors went on from their rung-2 checkpoints
            assert run.data.tags["resumed_from_epoch"] == "2" and steps == [0, 1, 2, 3]
            assert "test_accuracy" in run.data.metrics
    # A promoted trial goes back to the group that paused it, whose ranks kept its model
    # (the exact numbers of that resume: test_promoted_runs_resume_exactly, below).
    assert any(r.data.tags.get("resumed_in_memory") for r in runs.values())
    assert any("halving: rung 1/3: 4 configurations (8 runs) to epoch 1" in s for s in said)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)  # what the report reads
    _report_keeps_pruned_cells_apart(folder / "report")


@pytest.mark.slow(reason=(
    "the full grid swept from scratch and the halved store taken to the end: two sweeps "
    "compared epoch by epoch"))
def test_promoted_runs_resume_exactly(halving, spark, data):
    """Runs after the prune test (same module, same worker, file order): it reads the halved
    store before this test promotes its pruned runs."""
    folder, halved, client, _ = halving
    # The same grid without halving, from scratch, in another store ...
    full, full_client, _ = _sweep(folder / "full", HALVING.replace("enabled: true",
                                                                   "enabled: false"),
                                  spark, data, num_proc=2, ranks_per_trial=1)
    # ... and the halved store taken to the end: the pruned runs are promoted, resuming.
    promoted, _, _ = _sweep(folder / "halved", HALVING, spark, data, num_proc=2,
                            ranks_per_trial=1, halving=False)
    assert not full.failed and not promoted.failed and promoted.skipped == 2
    got = _histories(client, halved.experiment_id)
    want = _histories(full_client, full.experiment_id)
    for name, metrics in want.items():
        for key in EPOCH_KEYS:  # every epoch once, and the numbers of one uninterrupted fit
            assert [s for s, _ in got[name][key]] == [0, 1, 2, 3], (name, key)
            assert got[name][key] == metrics[key], (name, key)


def _report_keeps_pruned_cells_apart(out: Path) -> None:
    """The report ranks only the finished cell and shows the rest at their rungs' epochs."""
    import pandas as pd

    assert load_job("compare").main(["--experiment", "halving", "--output", str(out),
                                     "--no-register"]) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert board["rank"].notna().sum() == 1 and board["n_pruned"].sum() == 6
    page = (out / "index.html").read_text()
    assert "Pruned by successive halving" in page and "pruned at epoch 1" in page
    assert "mean val_accuracy at epoch 2" in page
