"""Bad input through the real entry points: one clear line, non-zero exit, nothing written."""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, SPARK_SUBMIT, load_job, submit_env, write_data_config, write_npz

pytestmark = pytest.mark.integration

def submit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SPARK_SUBMIT), *args], capture_output=True, text=True,
                          cwd=ROOT, env=submit_env(), timeout=300, check=False)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    # spark-submit merges the Python driver's stderr into its stdout.
    output = proc.stdout + proc.stderr
    return [line for line in output.splitlines() if ": error: " in line]


def test_prepare_missing_input_via_spark_submit(tmp_path):
    cfg = write_data_config(tmp_path, tmp_path / "absent.npz")
    proc = submit("jobs/prepare_data.py", "--config", str(cfg))
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "absent.npz: input file not found" in line
    assert not (tmp_path / "processed").exists()


def test_prepare_corrupt_gzip_idx_via_spark_submit(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 8)[:15])
    cfg = write_data_config(tmp_path, folder, fmt="idx")
    proc = submit("jobs/prepare_data.py", "--config", str(cfg))
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "train-images-idx3-ubyte.gz: cannot read" in line
    assert not (tmp_path / "processed").exists()


def test_prepare_unwritable_output(tmp_path, spark, capsys):
    source = write_npz(tmp_path / "d.npz", n_train=40, n_test=8, side=8)
    cfg = write_data_config(tmp_path, source)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    job = load_job("prepare_data")
    from pipeline.cli import run_job

    code = run_job(job.main, ["--config", str(cfg), "--output", str(blocker / "out")], "prepare")
    assert code == 2
    assert "output folder not writable" in capsys.readouterr().err


def test_sweep_unknown_key_fails_before_anything_starts(tmp_path):
    sweep = tmp_path / "bad.yaml"
    sweep.write_text("name: s\ndataset: d\nbase:\n  model:\n    hidden_activaton: relu\n")
    proc = submit("jobs/train_sweep.py", "--config", str(sweep))
    assert proc.returncode == 2
    [line] = error_lines(proc)
    assert "unknown key 'base.model.hidden_activaton'" in line


def _prepared(tmp_path, spark) -> Path:
    source = write_npz(tmp_path / "d.npz", n_train=80, n_test=16, side=8)
    cfg = write_data_config(tmp_path, source)
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return tmp_path / "processed" / "tiny"


def test_sweep_more_ranks_than_spark_slots(tmp_path, spark, capsys, mlflow_uri):
    from pipeline.cli import run_job

    data = _prepared(tmp_path, spark)
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\ndataset: tiny\nbase:\n  training: {batch_size: 8}\n")
    code = run_job(load_job("train_sweep").main,
                   ["--config", str(sweep), "--data", str(data), "--num-proc", "3"], "sweep")
    assert code == 2
    assert "3 ranks requested but Spark can run only 2" in capsys.readouterr().err


def test_sweep_unreachable_mlflow_fails_fast(tmp_path, spark, capsys, monkeypatch):
    from pipeline.cli import run_job

    data = _prepared(tmp_path, spark)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\ndataset: tiny\nbase:\n  training: {batch_size: 8}\n")
    started = time.monotonic()
    code = run_job(load_job("train_sweep").main,
                   ["--config", str(sweep), "--data", str(data)], "sweep")
    assert code == 2
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "http://127.0.0.1:9 is not usable" in err[0]


def test_sweep_misspelt_loss_is_refused_before_any_jvm(tmp_path):
    """The job run by the venv's Python, as spark-submit's driver would be, with no Java to
    be found: a session started before the check would fail on Java, not on the loss."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\ndataset: tiny\ngrid:\n  loss: [mse, mae, categoricl_hinge]\n")
    env = submit_env(JAVA_HOME=str(tmp_path / "no-java"))
    proc = subprocess.run([sys.executable, str(ROOT / "jobs" / "train_sweep.py"),
                           "--config", str(sweep), "--data", str(tmp_path / "data")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"train_sweep: error: {sweep}: grid.loss[2]: unknown loss "
                           "'categoricl_hinge'; did you mean 'categorical_hinge'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # nothing written


def test_sweep_check_only_reads_the_file(tmp_path):
    """--check (what make sweep runs first) passes a good file and refuses a typo, writing
    nothing either way."""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("name: s\ndataset: tiny\ngrid:\n  loss: [mse, categorical_hinge]\n")
    bad.write_text("name: s\ndataset: tiny\ngrid:\n  model.hidden_activation: [relu, tahn]\n")
    env = submit_env(JAVA_HOME=str(tmp_path / "no-java"))
    run = [sys.executable, str(ROOT / "jobs" / "train_sweep.py"), "--check", "--config"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, cwd=tmp_path,
                        env=env, timeout=120, check=False)
    assert ok.returncode == 0 and ok.stdout == f"{good}: every name known\n", ok.stderr
    refused = subprocess.run([*run, str(bad)], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=120, check=False)
    assert refused.returncode == 2
    assert "grid.model.hidden_activation[1]: unknown activation 'tahn'; did you mean 'tanh'" \
        in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "good.yaml"]


def test_sweep_refuses_a_dataset_with_a_missing_shard(tmp_path, spark, capsys, mlflow_uri):
    from pipeline.cli import run_job

    data = _prepared(tmp_path, spark)
    victim = next((data / "train").glob("part-*.parquet"))
    victim.unlink()
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\ndataset: tiny\nbase:\n  training: {batch_size: 8}\n")
    code = run_job(load_job("train_sweep").main,
                   ["--config", str(sweep), "--data", str(data)], "sweep")
    assert code == 2
    err = capsys.readouterr().err
    assert f"shard train/{victim.name} listed but missing" in err


@pytest.mark.parametrize("body, flags, message", [
    ("", ["--repeats", "0"], "--repeats: must be at least 1, got 0"),
    ("", ["--ranks-per-trial", "0"], "--ranks-per-trial: must be at least 1, got 0"),
    ("halving: {enabled: true}\n", ["--racing"], "racing and halving are mutually exclusive"),
    ("halving: {enabled: true, eta: 1}\n", [], "halving.eta: must be at least 2, got 1"),
    ("grid:\n  training.epochs: [2, 0]\n", [],
     "epochs=0: training.epochs must be at least 1, got 0"),
    ("racing: {enabled: true, budget_runs: 1}\n", [],
     "racing.budget_runs: 1 is below the first round's 1 configurations x 2"),
])
def test_sweep_out_of_range_values_are_refused_before_any_jvm(tmp_path, body, flags, message):
    """The command line's values and the file's ranges, checked in one place at load time
    (pipeline.config.resolve): no Java to be found, so a session started first would fail
    on Java instead."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\ndataset: tiny\n{body}")
    env = submit_env(JAVA_HOME=str(tmp_path / "no-java"))
    proc = subprocess.run([sys.executable, str(ROOT / "jobs" / "train_sweep.py"),
                           "--config", str(sweep), "--data", str(tmp_path / "data"), *flags],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("train_sweep: error: ") and message in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # nothing written
