"""Two sweeps started at once on one experiment (two spark-submit processes, one Horovod rank
each, one MLflow server): both plan every configuration, the claims in MLflow split them, and
each configuration ends with exactly one finished run holding its whole history once."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tracking import store as tracking
from pipeline.tracking import vocab
from tests.helpers import (
    ROOT,
    SPARK_SUBMIT,
    MlflowServer,
    free_port,
    load_job,
    submit_env,
    write_data_config,
    write_npz,
)

pytestmark = pytest.mark.integration

SWEEP = """
name: twins
dataset: tiny
tracking: {lease_seconds: 30, claim_settle_seconds: 1.0}
base:
  model: {hidden_layers: [8]}
  training: {epochs: 2, batch_size: 16, seed: 8}
grid:
  model.hidden_activation: [relu, tanh, elu]
"""


def _counts(out: str) -> tuple[int, int]:
    """(trained, left to other sweeps) from a sweep's summary line."""
    m = re.search(r"(\d+) trained, \d+ skipped, (\d+) left to other sweeps", out)
    assert m, out[-3000:]
    return int(m[1]), int(m[2])


@pytest.mark.slow(reason=("two spark-submit sweeps at once on one server: two drivers and their "
                          "Horovod launches are the scenario"))
def test_two_sweeps_at_once_train_each_configuration_once(tmp_path, spark):
    cfg = write_data_config(tmp_path, write_npz(tmp_path / "d.npz", n_train=400, n_test=80))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    server = MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, free_port()).start()
    args = [str(SPARK_SUBMIT), "jobs/train_sweep.py", "--config", str(tmp_path / "sweep.yaml"),
            "--data", str(tmp_path / "processed" / "tiny"), "--num-proc", "1",
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--spool-dir", str(tmp_path / "spool")]
    env = submit_env(MLFLOW_TRACKING_URI=server.url)
    try:
        sweeps = [subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [p.communicate(timeout=600)[0] for p in sweeps]
        client = MlflowClient(server.url)
        exp_id = client.get_experiment_by_name("twins").experiment_id
        runs = tracking.children(client, exp_id)
        parents = client.search_runs([exp_id], "tags.role = 'sweep'")
        history = {r.info.run_id: sorted(m.step for m in
                                         client.get_metric_history(r.info.run_id, "loss"))
                   for r in runs}
    finally:
        server.kill()
    assert [p.returncode for p in sweeps] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    for out in outputs:  # both planned everything: only the claims kept them apart
        assert "3 configurations, 0 already done, 3 to run" in out, out[-2000:]
    counts = [_counts(out) for out in outputs]
    assert sum(trained for trained, _ in counts) == 3
    assert sum(left for _, left in counts) == 3
    assert len(runs) == 3  # claims lost were deleted: no extra run in the experiment
    hashes = Counter(r.data.tags["config_hash"] for r in runs)
    assert set(hashes.values()) == {1}
    assert all(r.data.tags["status"] == "finished" for r in runs)
    assert {r.data.tags[vocab.TAG_PARENT] for r in runs} <= {p.info.run_id for p in parents}
    assert all(steps == [0, 1] for steps in history.values()), history  # nothing clobbered
    assert sorted(p.info.status for p in parents) == ["FINISHED", "FINISHED"]
