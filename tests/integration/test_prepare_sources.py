"""Tabular sources through real Spark: CSV and Parquet in, validated sharded Parquet out,
carved splits, determinism, and each bad input as one clear error with nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataConfig, SourceConfig, SplitConfig
from pipeline.data.feed import read_shards
from pipeline.data.manifest import load_manifest
from pipeline.data.prepare import prepare
from pipeline.data.sources import read_source
from pipeline.data.tabular import read_tabular
from pipeline.errors import DataError
from tests.helpers import make_images, write_npz

pytestmark = pytest.mark.integration


def kaggle_csv(path: Path, n: int = 200, side: int = 6, classes: int = 4) -> Path:
    """The digit-recognizer layout: label, pixel0 .. pixelN."""
    x, y = make_images(n, classes, side, seed=9)
    df = pd.DataFrame(x.reshape(n, -1), columns=[f"pixel{i}" for i in range(side * side)])
    df.insert(0, "label", y)
    df.to_csv(path, index=False)
    return path


def config(path: Path, fmt: str, out: Path, **source) -> DataConfig:
    return DataConfig(name="t", source=SourceConfig(format=fmt, path=str(path), **source),
                      split=SplitConfig(val_fraction=0.2, test_fraction=0.1, seed=3), shards=2,
                      output=str(out))


def run(spark, cfg: DataConfig, force: bool = False):
    data = read_tabular(spark, cfg.source) if cfg.source.format in ("csv", "parquet") \
        else read_source(cfg.source)
    return prepare(spark, cfg, data, Path(cfg.output), force=force)


def test_csv_is_split_stratified_and_round_trips(tmp_path, spark):
    csv = kaggle_csv(tmp_path / "train.csv")
    manifest, written = run(spark, config(csv, "csv", tmp_path / "out"))
    assert written and manifest.image_shape == [6, 6, 1] and manifest.num_classes == 4
    rows = {s: i.rows for s, i in manifest.splits.items()}
    assert rows == {"train": 140, "val": 40, "test": 20}  # per class: 5 test, 10 val, 35 train
    assert manifest.splits["test"].class_histogram == [5, 5, 5, 5]
    assert manifest.splits["val"].class_histogram == [10, 10, 10, 10]
    root = tmp_path / "out" / "t"
    parts = [read_shards([root / s / sh.file for sh in manifest.splits[s].shards], [6, 6, 1])
             for s in ("train", "val", "test")]
    got = {(img.tobytes(), int(lbl)) for x, y in parts for img, lbl in zip(x, y, strict=True)}
    x, y = make_images(200, 4, 6, seed=9)
    assert got == {(img.tobytes(), int(lbl)) for img, lbl in zip(x, y, strict=True)}


def test_same_input_and_seed_give_the_same_fingerprint_and_no_rewrite(tmp_path, spark):
    csv = kaggle_csv(tmp_path / "train.csv")
    first, _ = run(spark, config(csv, "csv", tmp_path / "a"))
    again, written = run(spark, config(csv, "csv", tmp_path / "a"))
    other, _ = run(spark, config(csv, "csv", tmp_path / "b"))
    assert not written and again.fingerprint == first.fingerprint == other.fingerprint
    assert other.splits["test"].class_histogram == first.splits["test"].class_histogram
    forced, rewritten = run(spark, config(csv, "csv", tmp_path / "a"), force=True)
    assert rewritten and forced.fingerprint == first.fingerprint


def test_parquet_with_pixel_columns_and_with_image_bytes(tmp_path, spark):
    csv = kaggle_csv(tmp_path / "train.csv", n=80)
    pixels = pd.read_csv(csv)
    pixels.astype("int64").to_parquet(tmp_path / "pixels.parquet")
    x, y = make_images(80, 4, 6, seed=9)
    pd.DataFrame({"label": y.astype("int64"), "image": [r.tobytes() for r in x.reshape(80, -1)]}
                 ).to_parquet(tmp_path / "bytes.parquet")
    a, _ = run(spark, config(tmp_path / "pixels.parquet", "parquet", tmp_path / "o1"))
    b, _ = run(spark, config(tmp_path / "bytes.parquet", "parquet", tmp_path / "o2"))
    assert a.splits["test"].rows == b.splits["test"].rows == 8
    assert a.image_shape == b.image_shape == [6, 6, 1]


@pytest.mark.parametrize("mutate, message", [
    (lambda df: df.rename(columns={"label": "digit"}), "missing label column 'label'"),
    (lambda df: df.set_axis([*df.columns[:-1], "pixel0"], axis=1), "duplicate column 'pixel0'"),
    (lambda df: df.assign(pixel3=df["pixel3"].astype(float).where(df.index != 7, np.nan)),
     "rows with missing values"),
    (lambda df: df.assign(pixel5=df["pixel5"].where(df.index != 3, 300)),
     "pixels outside [0, 255]"),
    (lambda df: df.assign(pixel5=df["pixel5"].astype(float).where(df.index != 3, 1.5)),
     "non-integer values"),
    (lambda df: df.assign(label=df["label"].where(df.index != 2, -1)), "negative labels"),
    (lambda df: df.assign(label=df["label"].where(df.index != 2, 2**32 + 3)),
     "label 4294967299 is not below 100,000"),
    (lambda df: df.iloc[:0], "no rows"),
    (lambda df: df.drop(columns=["pixel35"]), "35 pixel columns is not a square image"),
], ids=["no-label", "duplicate", "missing", "range", "fraction", "negative", "huge-label",
        "empty", "not-square"])
def test_bad_csv_gives_one_clear_error_and_writes_nothing(tmp_path, spark, mutate, message):
    csv = kaggle_csv(tmp_path / "good.csv", n=40)
    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(csv)).to_csv(bad, index=False)
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")) as err:
        run(spark, config(bad, "csv", tmp_path / "out"))
    assert "bad.csv" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / "t").exists()
    assert not list(tmp_path.glob("out/.t.tmp-*"))  # no staging folder left behind


def test_parquet_image_bytes_with_a_label_beyond_any_class_count(tmp_path, spark):
    x, y = make_images(20, 2, 4, seed=9)
    labels = y.astype("int64")
    labels[3] = 2**32 + 3  # an int32 cast would make it 3
    pd.DataFrame({"label": labels, "image": [r.tobytes() for r in x.reshape(20, -1)]}
                 ).to_parquet(tmp_path / "bytes.parquet")
    with pytest.raises(DataError, match="label 4294967299 is not below 100,000"):
        run(spark, config(tmp_path / "bytes.parquet", "parquet", tmp_path / "out"))
    assert not (tmp_path / "out" / "t").exists()


def test_labels_beyond_the_declared_classes(tmp_path, spark):
    csv = kaggle_csv(tmp_path / "train.csv", n=40)
    with pytest.raises(DataError, match=r"labels outside \[0, 3\): found label 3"):
        run(spark, config(csv, "csv", tmp_path / "out", num_classes=3))


def test_sources_with_their_own_test_split_keep_it(tmp_path, spark):
    npz = write_npz(tmp_path / "d.npz", n_train=100, n_test=40, num_classes=4, side=8)
    manifest, _ = run(spark, config(npz, "npz", tmp_path / "out"))
    assert manifest.splits["test"].rows == 40
    assert manifest.splits["val"].rows == 20 and manifest.splits["train"].rows == 80
    assert load_manifest(tmp_path / "out" / "t").fingerprint == manifest.fingerprint
