"""The benchmark runs end to end at a tiny size and writes valid results (no timing asserted)."""

import json

import pytest

from tests.conftest import load_job, write_data_config, write_npz

pytestmark = pytest.mark.integration


def test_bench_runs_and_writes_results(tmp_path, spark):
    source = write_npz(tmp_path / "d.npz", n_train=600, n_test=40, side=28, num_classes=10)
    cfg = write_data_config(tmp_path, source)
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    from bench import run

    out, md = tmp_path / "results", tmp_path / "BENCH.md"
    code = run.main(["--data", str(tmp_path / "processed" / "tiny"), "--repeats", "1",
                     "--skip-data-prep",
                     "--epochs", "2", "--global-batch", "32", "--hidden", "8",
                     "--out", str(out), "--markdown", str(md)])
    assert code == 0
    results = json.loads((out / "latest.json").read_text())
    t = results["training_throughput"]
    assert len(t["plain"]) == len(t["horovod"]) == 1
    assert t["plain_median"] > 0 and t["horovod_median"] > 0
    assert t["ratio"] == pytest.approx(t["horovod_median"] / t["plain_median"])
    assert "Ratio Horovod / plain" in md.read_text()
