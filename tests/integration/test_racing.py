"""Racing on real Spark, Horovod and MLflow: a cell whose every replicate diverges is out after
the first round with its reason tagged, a live cell gets more replicates, the race costs
fewer runs than every cell at max_replicates, and the report's rows carry why; a rank killed in
the second round costs a relaunch, its replicate resumes in its own run, and no replicate is
counted twice; a rank killed in a later rung of successive halving costs that rung a relaunch,
and the promoted run resumes with every epoch logged once. (Resuming a whole race from the
store is tested on synthetic scores in tests/unit/test_racing.py.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import load_sweep_config
from pipeline.report import frame, leaderboard
from pipeline.tracking import store as tracking
from pipeline.tracking.vocab import TAG_CELL, TAG_REPLICATE, TAG_RESUMED_FROM
from pipeline.train.driver.sweep import SweepOptions, run_sweep
from tests.helpers import load_job, write_data_config, write_npz
from tests.helpers.kill import kill_checkpointed_rank
from tests.helpers.stores import sqlite_store

pytestmark = pytest.mark.integration

RACE = """
name: race
dataset: tiny
max_attempts: 1
racing: {enabled: true, initial: 2, max_replicates: 3}
report: {min_effect: 0.001}
base:
  model: {hidden_layers: [8]}
  training: {epochs: 1, batch_size: 32, seed: 5}
grid:
  case:
    - {model.hidden_activation: relu}
    - {model.hidden_activation: tanh}
    - {model.hidden_activation: tanh, loss: mse, model.output_activation: linear,
       optimizer.name: sgd, optimizer.learning_rate: 1.0e+12}  # diverges: every replicate NaN
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("racing")
    cfg = write_data_config(root, write_npz(root / "d.npz", n_train=800, n_test=80))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return root / "processed" / "tiny"


def _sweep(folder: Path, spark, data: Path, body: str = RACE):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.yaml").write_text(body)
    uri = sqlite_store(folder / "mlflow.db")
    options = SweepOptions(data, num_proc=2, ranks_per_trial=1, tracking_uri=uri,
                           checkpoint_dir=folder / "ckpt", spool_dir=folder / "spool")
    said: list[str] = []
    result = run_sweep(spark, load_sweep_config(folder / "sweep.yaml"), options, said.append)
    return result, MlflowClient(uri), said


def _sweep_killing(folder: Path, spark, data: Path, body: str, experiment: str,
                   wanted, saved: bool = True) -> tuple:
    """``_sweep`` while a thread SIGKILLs the rank of the first ``wanted`` run that has a
    checkpoint (``saved`` False: that has none yet); also returns what was killed (pid, run
    id), empty if nothing was."""
    killed: dict = {}
    ended = threading.Event()
    killer = threading.Thread(target=kill_checkpointed_rank, args=(
        sqlite_store(folder / "mlflow.db"), experiment, folder / "ckpt", killed, wanted),
        kwargs={"stop": ended, "saved": saved})
    killer.start()
    try:
        result, client, said = _sweep(folder, spark, data, body)
    finally:
        ended.set()
        killer.join()
    return result, client, said, killed


@pytest.mark.slow(reason=(
    "a race of three cells over two rounds on the same ranks, and the decisions between them"))
def test_a_race_stops_the_failing_cell_early_and_spends_replicates_on_the_open_ones(
        tmp_path, spark, data):
    result, client, said = _sweep(tmp_path, spark, data)
    print("\n".join(line for line in said if line.startswith("racing:")))
    runs = tracking.children(client, result.experiment_id)
    by_cell: dict[str, list] = {}
    for run in runs:
        by_cell.setdefault(run.data.tags["cell"], []).append(run)
    bad = next(g for g in by_cell.values() if g[0].data.params["optimizer.name"] == "sgd")
    by_act = {c: g for c, g in by_cell.items() if g is not bad}
    assert {r.data.tags["status"] for r in bad} == {"diverged"}  # counted, not dropped
    assert len(bad) == 2 and {r.data.tags["race"] for r in bad} == {"out after 2 (worse)"}
    assert max(len(v) for v in by_act.values()) > 2, {k: len(v) for k, v in by_act.items()}
    assert len(runs) < 3 * 3
    for group in by_act.values():  # every run of a cell carries the cell's one reason
        assert len({r.data.tags["race"] for r in group}) == 1
    assert next(s for s in said if s.startswith("racing:")) == (
        "racing: round 1: 3 undecided cells get replicates 1-2; 0 out; 0 runs so far / 9 budget")
    assert any(s.startswith("racing: round 2: ") and "1 out" in s for s in said), said

    board = leaderboard.cell_board(frame.load(client, "race").runs, ["configuration"],
                                   "final_val_accuracy")  # the report's rows say why
    assert dict(zip(board["cell"], board["race"], strict=True)) == result.race.reasons


KILLED_RACE = """
name: killed
dataset: tiny
max_attempts: 2
racing: {enabled: true, initial: 2, max_replicates: 3}
report: {min_effect: 0.001}
base:
  model: {hidden_layers: [8]}
  optimizer: {name: sgd, learning_rate: 0.003}  # far from converged: replicates disagree
  training: {epochs: 3, batch_size: 4, seed: 5}  # small batches: epochs long enough to kill in
grid:
  model.hidden_activation: [relu, tanh, sigmoid]
"""


@pytest.mark.slow(reason=(
    "a race of three cells whose second round loses a rank to SIGKILL before the trial's first "
    "checkpoint: the relaunch and the rest of the race are what is examined"))
def test_a_rank_killed_mid_race_resumes_its_replicate_and_counts_none_twice(
        tmp_path, spark, data):
    """Killed after the run logged its diagnostics at initialisation, before any checkpoint:
    the retry has nothing to restore, and once started a second run of the replicate beside
    the failed one (a replicate counted twice). (A kill after a checkpoint is the rung test's
    below, and test_training's.)"""
    in_round_two = lambda run: run.data.tags.get(TAG_REPLICATE) == "2"  # noqa: E731
    result, client, _, killed = _sweep_killing(tmp_path / "killed", spark, data, KILLED_RACE,
                                               "killed", in_round_two, saved=False)
    assert killed, "no rank was killed: round 2 finished too fast, or was never run"
    assert not result.failed
    runs = tracking.children(client, result.experiment_id)
    run = next(r for r in runs if r.info.run_id == killed["run_id"])
    # The killed replicate went on in its own run, retrained from the start (or from the
    # checkpoint, if its first one landed as the rank was killed) ...
    assert run.data.tags["status"] == "finished"
    assert run.data.tags[TAG_RESUMED_FROM] == str(killed["epoch"])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
    assert steps == [0, 1, 2]  # every epoch once
    # ... and no replicate of any cell was trained or counted twice.
    pairs = [(r.data.tags["cell"], r.data.tags[TAG_REPLICATE]) for r in runs]
    assert len(pairs) == len(set(pairs))
    for cell, why in result.race.reasons.items():  # the reasons count each run once
        count = sum(1 for c, _ in pairs if c == cell)
        assert why.endswith(f"after {count}") or f"({count})" in why or why.endswith(
            f"at {count}") or why.startswith(f"out after {count}"), (cell, why, count)


KILLED_RUNG = """
name: killed-rung
dataset: tiny
max_attempts: 2
halving: {enabled: true, min_epochs: 1, eta: 2}
base:
  model: {hidden_layers: [8]}
  optimizer: {name: sgd, learning_rate: 0.003}
  training: {epochs: 3, batch_size: 4, seed: 5}  # small batches: epochs long enough to kill in
grid:
  model.hidden_activation: [relu, tanh]
"""


@pytest.mark.slow(reason=(
    "successive halving whose promoted run loses its rank to SIGKILL mid-rung: the rung's "
    "relaunch and the rest of the schedule are what is examined"))
def test_a_rank_killed_mid_rung_resumes_the_promoted_run_and_halving_counts_it_once(
        tmp_path, spark, data):
    promoted = lambda run: TAG_RESUMED_FROM in run.data.tags  # noqa: E731  (a later rung)
    result, client, said, killed = _sweep_killing(tmp_path / "rung", spark, data, KILLED_RUNG,
                                                  "killed-rung", promoted)
    assert killed, "no rank was killed: the later rung finished too fast, or never ran"
    assert not result.failed
    assert any("launch 1/2 failed" in line for line in said), said  # the rung relaunched
    runs = {r.info.run_id: r for r in tracking.children(client, result.experiment_id)}
    assert len(runs) == 2  # one run per cell: the relaunch resumed, it did not start another
    run = runs[killed["run_id"]]
    assert run.data.tags["status"] == "finished"
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
    assert steps == [0, 1, 2]  # every epoch of the promoted run once, across the kill
    # The first rung decided on both cells and kept the one whose rank was later killed.
    first = result.rungs[0]
    assert len(first.scores) == 2 and first.kept == [run.data.tags[TAG_CELL]]
    [other] = [r for rid, r in runs.items() if rid != killed["run_id"]]
    assert other.data.tags["status"] != "finished" and other.data.tags.get("rung_epoch") == "1"
