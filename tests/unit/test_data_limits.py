"""Datasets and raw sources as untrusted input: manifests whose paths leave the dataset or whose
numbers are out of range, labels beyond any class count, gzip and npz bombs, overflowing IDX
headers. Each is one DataError line, raised before the memory or the file is touched."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import SourceConfig, load_data_config
from pipeline.data.binary_formats import read_idx
from pipeline.data.integrity import shard_digest
from pipeline.data.limits import MAX_CLASSES
from pipeline.data.manifest import load_manifest
from pipeline.data.sources import read_source
from pipeline.errors import ConfigError, DataError


def _shard(path: Path, rows: int = 4) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"label": pa.array([0, 1] * (rows // 2), pa.int32()),
                             "image": pa.array([b"\0" * 4] * rows, pa.binary())}), path)
    size, sha = shard_digest(path)
    return {"file": path.name, "rows": rows, "bytes": size, "sha256": sha}


def _dataset(root: Path, **changes: object) -> Path:
    """A valid two-class dataset of 2x2x1 images written by hand, with ``changes`` applied to
    its manifest."""
    splits = {s: {"rows": 4, "shards": [_shard(root / s / "part-0.parquet")],
                  "class_histogram": [2, 2]} for s in ("train", "val", "test")}
    manifest = {"dataset": "d", "fingerprint": "fp", "source_format": "npz",
                "source_sha256": "x", "image_shape": [2, 2, 1], "num_classes": 2,
                "pixel_dtype": "uint8", "splits": splits, **changes}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _one_line_error(root: Path, verify: bool = True) -> str:
    with pytest.raises(DataError) as caught:
        load_manifest(root, verify=verify)
    message = str(caught.value)
    assert "\n" not in message and str(root / "manifest.json") in message
    return message


def test_a_valid_hand_written_dataset_loads(tmp_path):
    assert load_manifest(_dataset(tmp_path), verify=True).num_classes == 2


@pytest.mark.parametrize("name", ["../../outside.parquet", "/etc/hostname", "..", "a/b.parquet"])
def test_shard_paths_must_stay_inside_the_dataset(tmp_path, name):
    root = _dataset(tmp_path / "ds")
    _shard(tmp_path / "outside.parquet")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["file"] = name
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert "must be a file name inside the split's folder" in _one_line_error(root, False)


def test_a_shard_that_is_a_symbolic_link_is_refused(tmp_path):
    root = _dataset(tmp_path / "ds")
    outside = tmp_path / "elsewhere.parquet"
    (root / "train" / "part-0.parquet").rename(outside)
    (root / "train" / "part-0.parquet").symlink_to(outside)
    assert "is a symbolic link" in _one_line_error(root)


def test_a_split_folder_that_is_a_symbolic_link_is_refused(tmp_path):
    root = _dataset(tmp_path / "ds")
    (root / "train").rename(tmp_path / "train-elsewhere")
    (root / "train").symlink_to(tmp_path / "train-elsewhere")
    assert "split folder train is a symbolic link" in _one_line_error(root)


@pytest.mark.parametrize(("changes", "message"), [
    ({"num_classes": 2_000_000_000}, "num_classes must be an integer in [1, 100000]"),
    ({"num_classes": "10"}, "num_classes must be an integer"),
    ({"num_classes": True}, "num_classes must be an integer"),
    ({"image_shape": [0, 2, 1]}, "image_shape must be [height, width, channels]"),
    ({"image_shape": [2, 2]}, "image_shape must be [height, width, channels]"),
    ({"image_shape": [65536, 65536, 3]}, "image_shape must be"),
    ({"pixel_dtype": "float64"}, "pixel_dtype must be 'uint8'"),
])
def test_manifest_numbers_have_types_and_ranges(tmp_path, changes, message):
    assert message in _one_line_error(_dataset(tmp_path, **changes), False)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("rows", -5, "rows must be an integer >= 0"),
    ("rows", "4", "rows must be an integer >= 0"),
    ("bytes", -1, "bytes must be an integer >= 0"),
])
def test_shard_numbers_have_types_and_ranges(tmp_path, field, value, message):
    root = _dataset(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["val"]["shards"][0][field] = value
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert message in _one_line_error(root, False)


def _npz(path: Path, y_train: np.ndarray) -> Path:
    x = np.zeros((len(y_train), 2, 2), np.uint8)
    np.savez(path, x_train=x, y_train=y_train, x_test=x[:2], y_test=np.array([0, 1]))
    return path


@pytest.mark.parametrize("label", [2_000_000_000, 2**32 + 3], ids=["two-billion", "2^32+3"])
def test_labels_beyond_any_class_count_are_refused_not_narrowed(tmp_path, label):
    path = _npz(tmp_path / "d.npz", np.array([0, 1, label], np.uint64))
    with pytest.raises(DataError, match=f"label {label} is not below 100,000"):
        read_source(SourceConfig(format="npz", path=str(path)))


def test_a_configured_class_count_has_a_range(tmp_path):
    cfg = tmp_path / "d.yaml"
    cfg.write_text("name: d\nsource: {format: npz, path: x.npz, num_classes: 2000000000}\n")
    with pytest.raises(ConfigError, match=f"source.num_classes: must be in \\[1, {MAX_CLASSES}"):
        load_data_config(cfg)


def _idx_header(*dims: int) -> bytes:
    return struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = b"\0" * (1 << 20)
    with path.open("wb") as f:  # declares 10 images of 28x28, inflates to 128 MiB
        f.write(packer.compress(_idx_header(10, 28, 28)))
        for _ in range(128):
            f.write(packer.compress(block))
        f.write(packer.flush())
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="header declares 7840 bytes of data, file has more"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # the declared size, not the bomb's


def test_an_overflowing_idx_header_is_one_line(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_header(2**31, 2**31, 2**31))  # product wraps to 0 in int64
    with pytest.raises(DataError, match="more than the 2,147,483,648 a source array") as caught:
        read_idx(path)
    assert "\n" not in str(caught.value)


def test_a_gzipped_idx_still_reads_back(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(_idx_header(3) + bytes([1, 2, 3])))
    assert read_idx(path).tolist() == [1, 2, 3]


def test_an_npz_member_declaring_a_terabyte_is_refused_before_allocation(tmp_path):
    from numpy.lib import format as npy

    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                        "shape": (2**40,)})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())
        for name in ("y_train", "x_test", "y_test"):
            buf = io.BytesIO()
            np.save(buf, np.zeros(2, np.uint8))
            archive.writestr(f"{name}.npy", buf.getvalue())
    with pytest.raises(DataError, match="array x_train declares shape") as caught:
        read_source(SourceConfig(format="npz", path=str(path)))
    assert "\n" not in str(caught.value)
