"""Data by task without Spark: config rules, packing, the Parquet layout, old manifests, the
generated regression table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import DataConfig, GenerateConfig, SourceConfig, load_data_config
from pipeline.data import feed, synthetic
from pipeline.data.encode import Packing, multi_hot
from pipeline.data.layout import FEATURES, TARGET, Layout
from pipeline.data.manifest import Manifest, Scaling
from pipeline.errors import ConfigError


def _data_yaml(tmp_path, body: str):
    path = tmp_path / "d.yaml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(("body", "message"), [
    ("task: regression\nsource: {format: csv, path: t.csv, features: [a]}",
     "task regression: needs source.features and source.targets"),
    ("task: regression\nsource: {format: npz, path: t.npz, features: [a], targets: [y]}",
     "only for csv or parquet"),
    ("task: multilabel\nsource: {format: npz, path: t.npz}\nderive: {big: [5, 6]}",
     "task multilabel: needs either derive with two or more labels"),
    ("task: binary\nsource: {format: npz, path: t.npz}\nderive: {a: [1], b: [2]}",
     "task binary: needs derive with one label"),
    ("task: multiclass\nsource: {format: npz, path: t.npz}\nderive: {a: [1]}",
     "derive: only for binary or multilabel"),
    ("task: binary\nsource: {format: csv, path: t.csv, label_names: [a, b, c]}",
     "3 names for 2 classes"),
    ("task: regression\nsource: {format: parquet, path: t.parquet, features: [x1], "
     "targets: [y], generate: {features: 4}}", "rows >= 1, test_rows >= 0, features >= 5"),
    ("task: regression\nsource: {format: parquet, path: t.parquet, features: [x9], "
     "targets: [y], generate: {features: 5}}", "features x1..x5 and target y"),
])
def test_task_config_rules(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_data_config(_data_yaml(tmp_path, f"name: d\n{body}\n"))


def test_packing_standardizes_with_the_given_statistics():
    features = Scaling(["a", "b"], [1.0, 10.0], [2.0, 5.0])
    targets = Scaling(["y"], [3.0], [0.5])
    pdf = pd.DataFrame({"split": ["train", "test"], "label": [0, 0], "x0": [1.0, 5.0],
                        "x1": [10.0, 0.0], "t0": [3.0, 4.0]})
    out = Packing("regression", features, targets).frame(pdf)
    x = np.frombuffer(b"".join(out[FEATURES]), np.float32).reshape(2, 2)
    np.testing.assert_allclose(x, [[0.0, 0.0], [2.0, -2.0]])
    np.testing.assert_allclose(np.frombuffer(b"".join(out[TARGET]), np.float32), [0.0, 2.0])
    assert list(out.columns) == ["split", TARGET, FEATURES]


def test_multilabel_targets_are_packed_as_they_are():
    pdf = pd.DataFrame({"split": ["train"], "label": [0], "x0": [2.0], "t0": [1.0],
                        "t1": [0.0]})
    out = Packing("multilabel", Scaling(["a"], [0.0], [1.0]), Scaling(["p", "q"], [], []))
    target = out.frame(pdf)[TARGET][0]
    np.testing.assert_array_equal(np.frombuffer(target, np.float32), [1.0, 0.0])


def test_multi_hot_from_derived_classes():
    table = multi_hot({"big": [5, 6], "even": [0, 6]}, 7)
    assert table[6].tolist() == [1.0, 1.0]
    assert table[5].tolist() == [1.0, 0.0]
    assert table[1].tolist() == [0.0, 0.0]


def test_feed_reads_features_and_float_targets(tmp_path):
    layout = Layout(FEATURES, (3,), TARGET, 2)
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(20, dtype=np.float32).reshape(10, 2) / 4
    path = tmp_path / "part-0.parquet"
    pq.write_table(pa.table({FEATURES: [r.tobytes() for r in x],
                             TARGET: [r.tobytes() for r in y]}), path)
    got_x, got_y = feed.read_shards([path], layout)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    xs, ys = next(feed.stream_blocks([path], layout, batch=4, seed=0, window_rows=10))
    assert xs.shape == (2, 4, 3) and ys.shape == (2, 4, 2)
    rows = (xs[..., 0] / 3).astype(int).ravel()  # shuffled, each row with its own targets
    assert len(set(rows)) == 8
    np.testing.assert_array_equal(ys.reshape(-1, 2), y[rows])
    np.testing.assert_array_equal(feed.unit_scale(x), x)  # features are not divided by 255


def test_old_manifest_reads_as_multiclass_images(tmp_path):
    old = {"dataset": "mnist", "fingerprint": "f", "source_format": "npz", "source_sha256": "s",
           "image_shape": [28, 28, 1], "num_classes": 10, "pixel_dtype": "uint8",
           "splits": {}}
    m = Manifest.from_dict(json.loads(json.dumps(old)))
    assert (m.task, m.input_kind, m.outputs) == ("multiclass", "image", 10)
    assert m.target_names == [str(k) for k in range(10)]
    assert m.layout == Layout("image", (28, 28, 1))
    assert m.problem().task == "multiclass"


def test_manifest_round_trip_keeps_the_target_schema():
    from pipeline.data.manifest import TargetSchema

    m = Manifest("r", "f", "parquet", "s", [5], 0, "float32", task="regression",
                 input_kind="vector", features=Scaling(["a"] * 5, [0.0] * 5, [1.0] * 5),
                 target=TargetSchema(["y"], Scaling(["y"], [14.0], [5.0])))
    back = Manifest.from_dict(json.loads(m.to_json()))
    assert back == m
    p = back.problem()
    assert (p.outputs, p.target_mean, p.target_std) == (1, (14.0,), (5.0,))


def test_friedman_table_is_reproducible_with_the_configured_outliers(tmp_path):
    g = GenerateConfig(rows=1000, test_rows=200, features=6, outlier_fraction=0.1, seed=3)
    src = SourceConfig("parquet", str(tmp_path / "train.parquet"),
                       test_path=str(tmp_path / "test.parquet"), generate=g,
                       features=("x1",), targets=("y",))
    assert len(synthetic.write_tables(src)) == 2
    assert synthetic.write_tables(src) == []  # same settings: kept
    train = pq.read_table(src.path).to_pandas()
    assert list(train.columns) == [f"x{i}" for i in range(1, 7)] + ["y"]
    _, clean = synthetic.friedman1(1000, 6, 1.0, 3)
    moved = ~np.isclose(train["y"].to_numpy(), clean)
    assert moved.sum() == 100  # 10% outliers, every one raised
    assert (train["y"].to_numpy()[moved] - clean[moved] > 4 * clean.std()).all()
    test = pq.read_table(src.test_path).to_pandas()
    _, test_clean = synthetic.friedman1(200, 6, 1.0, 4)
    np.testing.assert_allclose(test["y"], test_clean)  # the test table has none
    from dataclasses import replace

    again = replace(src, generate=replace(g, outlier_fraction=0.2))
    assert len(synthetic.write_tables(again)) == 1  # changed settings: train rewritten


def test_every_shipped_task_config_names_its_dataset_task():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "conf" / "data"
    tasks = {load_data_config(p).task for p in root.glob("*.yaml")}
    assert tasks == {"multiclass", "binary", "multilabel", "regression"}
    assert isinstance(load_data_config(root / "mnist.yaml"), DataConfig)


def test_multiclass_datasets_keep_their_fingerprints():
    """A data config without task keys hashes as before tasks existed, so its prepared data
    and the finished runs of its sweeps stay valid."""
    import hashlib
    from dataclasses import asdict

    from pipeline.data.prepare import LAYOUT_VERSION, dataset_fingerprint

    cfg = DataConfig("mnist", SourceConfig("npz", "m.npz"))
    src = cfg.source
    before = {"layout": LAYOUT_VERSION, "source": "abc", "split": asdict(cfg.split),
              "reading": {"format": src.format, "label_column": src.label_column,
                          "image_shape": src.image_shape, "num_classes": src.num_classes},
              "shards": cfg.shards, "name": cfg.name}
    expected = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert dataset_fingerprint(cfg, "abc") == expected
    from dataclasses import replace

    assert dataset_fingerprint(replace(cfg, task="binary", derive={"a": [1]}), "abc") != expected


def test_outlier_table_compares_each_loss_with_mse_per_dataset():
    from scripts.outlier_table import markdown, outlier_table

    runs = pd.DataFrame({
        "experiment": ["clean"] * 4 + ["dirty"] * 4,
        "loss": ["mse", "mse", "mae", "mae"] * 2,
        "activation": ["relu", "tanh"] * 4,
        "test_rmse": [1.0, 1.2, 1.1, 1.3, 4.0, 5.0, 2.0, 2.5],
        "test_mae": [0.8, 0.9, 0.85, 0.95, 3.0, 4.0, 1.5, 1.6],
        "test_r2": [0.9] * 8})
    table = outlier_table(runs).set_index(["experiment", "loss"])
    assert table.loc[("dirty", "mae"), "best_rmse_vs_mse"] == pytest.approx(0.5)
    assert table.loc[("clean", "mse"), "mean_rmse"] == pytest.approx(1.1)
    assert "| dirty | mae | 2 |" in markdown(outlier_table(runs))
