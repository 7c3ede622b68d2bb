"""Where compare may write: a report replaces its whole folder, so ``--output`` must be new,
empty or an earlier report, and the experiment name one plain folder name under reports/."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from jobs import compare
from pipeline.cli import run_job
from pipeline.config import RunConfig
from pipeline.errors import PipelineError
from pipeline.storage import REPORT_MARKER, report_dir
from pipeline.tracking import store
from pipeline.tracking.vocab import (
    FINISHED,
    ROLE_CONFIG,
    ROLE_SWEEP,
    TAG_HASH,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STATUS,
)


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", ".hidden", "/abs", "x\0y"])
def test_an_experiment_name_that_is_not_one_folder_name_is_refused(tmp_path, name):
    with pytest.raises(PipelineError, match="pass --output") as caught:
        report_dir(None, name, root=tmp_path / "reports")
    assert "\n" not in str(caught.value)


def test_the_default_folder_is_the_experiment_under_reports(tmp_path):
    assert report_dir(None, "default", root=tmp_path / "reports") == tmp_path / "reports/default"


def test_a_new_empty_or_earlier_report_folder_may_be_replaced(tmp_path):
    assert report_dir(str(tmp_path / "new"), "e") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert report_dir(str(tmp_path / "empty"), "e") == tmp_path / "empty"
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / REPORT_MARKER).write_text("")
    (marked / "notes.txt").write_text("anything else a report folder holds")
    assert report_dir(str(marked), "e") == marked
    legacy = tmp_path / "legacy"  # written before reports carried the marker
    legacy.mkdir()
    for name in ("index.html", "leaderboard.csv", "leaderboard.md", "heatmap.png"):
        (legacy / name).write_text("")
    assert report_dir(str(legacy), "e") == legacy


@pytest.mark.parametrize("kind", ["others", "file", "symlink", "root"])
def test_any_other_output_folder_is_refused(tmp_path, kind):
    target = {"others": tmp_path / "reports", "file": tmp_path / "f", "root": tmp_path,
              "symlink": tmp_path / "link"}[kind]
    (tmp_path / "reports" / "other").mkdir(parents=True)
    (tmp_path / "reports" / "other" / "index.html").write_text("another experiment's")
    (tmp_path / "f").write_text("a file")
    (tmp_path / "link").symlink_to(tmp_path / "reports" / "other")
    with pytest.raises(PipelineError, match="--output") as caught:
        report_dir(str(target), "e")
    assert "\n" not in str(caught.value)


def _experiment_with_a_finished_run(uri: str, name: str) -> None:
    client = MlflowClient(uri)
    exp_id = client.create_experiment(name)
    parent = client.create_run(exp_id, tags={TAG_ROLE: ROLE_SWEEP}).info.run_id
    child = client.create_run(exp_id, run_name="relu", tags={
        TAG_ROLE: ROLE_CONFIG, TAG_PARENT: parent, TAG_HASH: "h", TAG_STATUS: FINISHED})
    store.log_config_params(client, child.info.run_id, RunConfig())
    for key, value in {"test_accuracy": 0.9, "test_loss": 0.3, "epochs_run": 1}.items():
        client.log_metric(child.info.run_id, key, value)


def test_compare_refuses_an_output_holding_other_reports_and_deletes_nothing(
        tmp_path, mlflow_store, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _experiment_with_a_finished_run(mlflow_store, "mine")
    others = tmp_path / "data" / "reports"
    (others / "theirs").mkdir(parents=True)
    (others / "theirs" / "index.html").write_text("another experiment's report")
    capsys.readouterr()  # MLflow's own lines from creating the store
    code = run_job(compare.main, ["--experiment", "mine", "--output", str(others),
                                  "--no-register"], "compare")
    assert code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"--output {others}" in line
    assert (others / "theirs" / "index.html").read_text() == "another experiment's report"


def test_compare_writes_a_marked_report_it_may_replace_next_time(tmp_path, mlflow_store,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    _experiment_with_a_finished_run(mlflow_store, "mine")
    args = ["--experiment", "mine", "--no-register"]
    assert run_job(compare.main, args, "compare") == 0
    assert (tmp_path / "reports" / "mine" / REPORT_MARKER).is_file()
    assert run_job(compare.main, args, "compare") == 0  # its own earlier report: replaced
    assert (tmp_path / "reports" / "mine" / "index.html").is_file()


def test_compare_refuses_an_experiment_name_that_climbs_out_of_reports(tmp_path, mlflow_store,
                                                                       capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _experiment_with_a_finished_run(mlflow_store, "../outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("not a report")
    assert run_job(compare.main, ["--experiment", "../outside", "--no-register"],
                   "compare") == 2
    assert "pass --output" in capsys.readouterr().err
    assert (tmp_path / "outside" / "keep.txt").is_file()
