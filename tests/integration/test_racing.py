"""Racing on real Spark, Horovod and MLflow: a cell whose every replicate diverges is out after
the first round with its reason tagged, a live cell gets more replicates, the race costs
fewer runs than every cell at max_replicates, and the report's rows carry why. (Resuming
from the store is tested on synthetic scores in tests/unit/test_racing.py: a relaunch here
would cost another Spark and Horovod start for nothing new.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.config import load_sweep_config
from pipeline.report import frame, leaderboard
from pipeline.tracking import store as tracking
from pipeline.train.driver.sweep import SweepOptions, run_sweep
from tests.helpers import load_job, write_data_config, write_npz

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


def _sweep(folder: Path, spark, data: Path):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.yaml").write_text(RACE)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    options = SweepOptions(data, num_proc=2, ranks_per_trial=1, tracking_uri=uri,
                           checkpoint_dir=folder / "ckpt", spool_dir=folder / "spool")
    said: list[str] = []
    result = run_sweep(spark, load_sweep_config(folder / "sweep.yaml"), options, said.append)
    return result, MlflowClient(uri), said


@pytest.mark.slow(reason=(
    "a race of three cells over two rounds: a launch per round and the decisions between them"))
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
