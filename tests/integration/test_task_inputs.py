"""Bad tabular input to the prepare job: one line naming the file, the column and the row
count, exit status 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import load_job

pytestmark = pytest.mark.integration


def _refused(tmp_path: Path, capsys, body: str, table: str | None = None) -> str:
    from pipeline.cli import run_job

    if table is not None:
        (tmp_path / "t.csv").write_text(table)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body + f"output: {tmp_path / 'processed'}\n")
    code = run_job(load_job("prepare_data").main, ["--config", str(cfg)], "prepare")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert not (tmp_path / "processed").exists() or not any((tmp_path / "processed").iterdir())
    return err[0]


def _regression_csv(tmp_path: Path) -> str:
    return (f"name: t\ntask: regression\nsource:\n  format: csv\n  path: {tmp_path / 't.csv'}\n"
            "  features: [a, b]\n  targets: [y]\n")


def test_non_numeric_feature_column_is_refused(tmp_path, spark, capsys):
    line = _refused(tmp_path, capsys, _regression_csv(tmp_path),
                    "a,b,y\n1,2,3\n4,five,6\n7,8,9\n")
    assert "t.csv: column 'b' is not numeric (1 rows hold text)" in line


def test_nan_target_is_refused_naming_the_column_and_rows(tmp_path, spark, capsys):
    line = _refused(tmp_path, capsys, _regression_csv(tmp_path),
                    "a,b,y\n1,2,NaN\n4,5,\n7,8,9\n")
    assert "target column 'y' has 2 rows with missing values" in line


def test_missing_feature_values_are_refused(tmp_path, spark, capsys):
    line = _refused(tmp_path, capsys, _regression_csv(tmp_path), "a,b,y\n1,,3\n4,5,6\n")
    assert "column 'b' has 1 rows with missing values" in line


def test_label_outside_the_declared_set_is_refused(tmp_path, spark, capsys):
    body = (f"name: t\ntask: binary\nsource:\n  format: csv\n  path: {tmp_path / 't.csv'}\n"
            "  features: [a]\n  label_column: c\n")
    line = _refused(tmp_path, capsys, body, "a,c\n1,0\n2,1\n3,2\n")
    assert "found label 2, outside the declared set 0..1" in line


def test_multilabel_value_outside_zero_one_is_refused(tmp_path, spark, capsys):
    body = (f"name: t\ntask: multilabel\nsource:\n  format: csv\n  path: {tmp_path / 't.csv'}\n"
            "  features: [a]\n  targets: [p, q]\n")
    line = _refused(tmp_path, capsys, body, "a,p,q\n1,0,1\n2,1,3\n")
    assert "label column 'q' has 1 rows outside the declared set {0, 1}" in line


def test_text_typed_parquet_column_is_refused_by_type(tmp_path, spark, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0, 2.0], "b": ["x", "y"], "y": [0.5, 1.5]}),
                   tmp_path / "t.parquet")
    body = (f"name: t\ntask: regression\nsource:\n  format: parquet\n"
            f"  path: {tmp_path / 't.parquet'}\n  features: [a, b]\n  targets: [y]\n")
    assert "t.parquet: column 'b' is string, not numeric" in _refused(tmp_path, capsys, body)
