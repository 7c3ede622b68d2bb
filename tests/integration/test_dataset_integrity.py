"""A prepared dataset that no longer matches its manifest: the sweep refuses it with one line
and exit status 2 before Horovod starts (tampering with a copy of one real prepared dataset)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.cli import run_job
from pipeline.data.integrity import shard_digest
from tests.helpers import load_job, prepare_tiny

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, spark) -> Path:
    return prepare_tiny(tmp_path_factory.mktemp("integrity"), n_train=80, n_test=16, side=8)


def _shard(data: Path) -> Path:
    manifest = json.loads((data / "manifest.json").read_text())
    return data / "train" / manifest["splits"]["train"]["shards"][0]["file"]


def _edit_manifest(data: Path, edit) -> None:
    path = data / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def truncate(data: Path) -> str:
    shard = _shard(data)
    shard.write_bytes(shard.read_bytes()[:-100])
    return f"shard train/{shard.name} is {shard.stat().st_size} bytes, the manifest recorded"


def replace_same_size(data: Path) -> str:
    shard = _shard(data)
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte inside the data pages: size and footer unchanged
    shard.write_bytes(bytes(raw))
    return f"shard train/{shard.name} does not match its sha256 in the manifest"


def edit_shard_rows(data: Path) -> str:
    def more(manifest: dict) -> None:
        train = manifest["splits"]["train"]
        train["shards"][0]["rows"] += 5
        train["rows"] += 5  # totals kept consistent: only the shard's file can disagree
        train["class_histogram"][0] += 5
    _edit_manifest(data, more)
    return f"shard train/{_shard(data).name} holds"


def edit_split_rows(data: Path) -> str:
    _edit_manifest(data, lambda m: m["splits"]["val"].update(rows=m["splits"]["val"]["rows"] + 1))
    return "split 'val' counts disagree"


@pytest.mark.parametrize("tamper", [truncate, replace_same_size, edit_shard_rows,
                                    edit_split_rows], ids=lambda f: f.__name__)
def test_sweep_refuses_a_dataset_that_does_not_match_its_manifest(prepared, tmp_path, capsys,
                                                                 mlflow_uri, tamper):
    data = tmp_path / "tiny"
    shutil.copytree(prepared, data)
    expected = tamper(data)
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\ndataset: tiny\nbase:\n  training: {batch_size: 8}\n")
    code = run_job(load_job("train_sweep").main,
                   ["--config", str(sweep), "--data", str(data), "--checkpoint-dir",
                    str(tmp_path / "ckpt")], "train_sweep")
    assert code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"train_sweep: error: {data / 'manifest.json'}: ")
    assert expected in line and "prepare" in line
    assert not (tmp_path / "mlflow.db").exists()  # refused before MLflow was even opened


def test_manifest_records_every_shards_size_and_sha256(prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            size, sha256 = shard_digest(prepared / split / shard["file"])
            assert (shard["bytes"], shard["sha256"]) == (size, sha256)
