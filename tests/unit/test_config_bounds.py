"""Numbers from files are input: each has an upper bound as well as a lower one, refused in
one line naming the key and its allowed range before anything is built from it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_sweep_config
from pipeline.data.integrity import shard_digest
from pipeline.data.limits import MAX_CLASSES
from pipeline.data.manifest import load_manifest
from pipeline.errors import ConfigError, DataError


def _dataset(root: Path, **changes: object) -> Path:
    """A valid two-class dataset written by hand, with ``changes`` applied to its manifest."""
    splits = {}
    for s in ("train", "val", "test"):
        path = root / s / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table({"label": pa.array([0, 1, 0, 1], pa.int32()),
                                 "image": pa.array([b"\0" * 4] * 4, pa.binary())}), path)
        size, sha = shard_digest(path)
        splits[s] = {"rows": 4, "class_histogram": [2, 2], "shards": [
            {"file": path.name, "rows": 4, "bytes": size, "sha256": sha}]}
    manifest = {"dataset": "d", "fingerprint": "fp", "source_format": "npz",
                "source_sha256": "x", "image_shape": [2, 2, 1], "num_classes": 2,
                "pixel_dtype": "uint8", "splits": splits, **changes}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _manifest_error(root: Path) -> str:
    with pytest.raises(DataError) as caught:
        load_manifest(root)
    message = str(caught.value)
    assert "\n" not in message and str(root / "manifest.json") in message
    return message


def test_two_million_target_names_never_build_a_two_million_unit_head(tmp_path):
    names = [f"c{i}" for i in range(2_000_000)]
    message = _manifest_error(_dataset(tmp_path, target={"names": names}))
    assert f"target.names must hold between 1 and {MAX_CLASSES} names" in message


def test_target_names_must_match_the_class_count(tmp_path):
    message = _manifest_error(_dataset(tmp_path, target={"names": ["a", "b", "c"]}))
    assert "target.names: 3 names for num_classes 2" in message


def test_target_names_that_match_still_load(tmp_path):
    manifest = load_manifest(_dataset(tmp_path, target={"names": ["cat", "dog"]}))
    assert manifest.outputs == 2 and manifest.target_names == ["cat", "dog"]


def _sweep_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\ndataset: d\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        load_sweep_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("text", "expected"), [
    ("tracking: {retries: 40}", "tracking.retries: must be in [0, 10], got 40"),
    ("tracking: {backoff_seconds: 1.0e+9}", "tracking.backoff_seconds: must be in [0, 60], got"),
    ("tracking: {lease_seconds: 1.0e+12}", "tracking.lease_seconds: must be in [4 x "
                                          "claim_settle_seconds, 3600], got"),
    ("tracking: {claim_settle_seconds: 1.0e+6}",
     "tracking.claim_settle_seconds: must be in [0, 60], got"),
    ("repeats: 100000", "repeats: must be in [1, 100], got 100000"),
], ids=["retries", "backoff", "lease", "settle", "repeats"])
def test_unbounded_sweep_numbers_are_refused_naming_key_and_range(tmp_path, text, expected):
    assert expected in _sweep_error(tmp_path, text)


def test_a_repeats_override_has_the_same_bound(tmp_path):
    from pipeline.config import SweepConfig
    from pipeline.train.driver.plan import plan_trials

    manifest = load_manifest(_dataset(tmp_path))
    with pytest.raises(ConfigError, match=r"--repeats: must be in \[1, 100\], got 5000"):
        plan_trials(SweepConfig(name="s", dataset="d"), manifest, 1, None, repeats=5000)


def test_a_grid_of_too_many_points_is_refused_before_it_is_expanded(tmp_path):
    keys = ["training.seed", "training.epochs", "training.batch_size", "optimizer.momentum",
            "optimizer.learning_rate", "optimizer.decay_steps"]
    ten = f"[{', '.join(str(v + 1) for v in range(10))}]"
    axes = "\n".join(f"  {key}: {ten}" for key in keys)  # 10^6 points: counted, not expanded
    message = _sweep_error(tmp_path, f"grid:\n{axes}")
    assert "grid: 1,000,000 points (the product of the axes' lengths), must be in [1, 10,000]" \
        in message


def test_the_limits_leave_the_shipped_sweeps_alone():
    from tests.helpers import ROOT

    for path in sorted((ROOT / "conf" / "sweep").glob("*.yaml")):
        load_sweep_config(path)
