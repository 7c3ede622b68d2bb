"""Readers on tiny files written as real bytes, and their one-line errors."""

import gzip
import hashlib
import pickle
import struct

import numpy as np
import pytest

from pipeline.config import SourceConfig
from pipeline.data.binary_formats import read_idx
from pipeline.data.sources import read_source
from pipeline.errors import ConfigError, DataError
from tests.helpers import make_images, write_npz


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dir(folder, gz: bool, n_train=40, n_test=12):
    folder.mkdir(exist_ok=True)
    parts = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x, y = make_images(n, 4, 8, seed=n)
        parts[split] = (x, y)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{prefix}-{kind}-ubyte"
            data = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return parts


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_reader_round_trips(tmp_path, gz):
    parts = write_idx_dir(tmp_path / "idx", gz)
    data = read_source(SourceConfig(format="idx", path=str(tmp_path / "idx")))
    assert set(data.splits) == {"train", "test"}
    x, y = data.splits["train"]
    assert x.shape == (40, 8, 8, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[..., 0], parts["train"][0])
    np.testing.assert_array_equal(y, parts["train"][1])


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "bad-idx"
    path.write_bytes(b"\x00\x00\x09\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="bad IDX magic"):
        read_idx(path)


def test_idx_size_mismatch(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4)))[:-5])
    with pytest.raises(DataError, match="header declares 48 bytes"):
        read_idx(path)


def test_idx_truncated_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((10, 4, 4))))[:-12])
    with pytest.raises(DataError, match=r"x\.gz: cannot read"):
        read_idx(path)


def test_idx_image_label_count_mismatch(tmp_path):
    folder = tmp_path / "idx"
    write_idx_dir(folder, gz=False)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(39)))
    with pytest.raises(DataError, match="40 images but 39 labels"):
        read_source(SourceConfig(format="idx", path=str(folder)))


def test_idx_missing_file(tmp_path):
    folder = tmp_path / "idx"
    write_idx_dir(folder, gz=False)
    (folder / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte: IDX file not found"):
        read_source(SourceConfig(format="idx", path=str(folder)))


def test_npz_reader(tmp_path):
    path = write_npz(tmp_path / "d.npz", n_train=20, n_test=8, side=8)
    data = read_source(SourceConfig(format="npz", path=str(path)))
    assert data.splits["train"][0].shape == (20, 8, 8, 1)
    assert data.splits["test"][1].dtype == np.int64
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_npz_missing_array(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataError, match="missing array"):
        read_source(SourceConfig(format="npz", path=str(path)))


def test_missing_input_file(tmp_path):
    with pytest.raises(DataError, match="input file not found"):
        read_source(SourceConfig(format="npz", path=str(tmp_path / "none.npz")))


def _mnist_like_pickle(path, payload=None):
    if payload is None:
        x, y = make_images(30, 3, 4, seed=3)
        flat = (x.reshape(30, -1) / 256.0).astype(np.float32)
        part = (flat, y.astype(np.int64))
        payload = (part, part, part)
    with gzip.open(path, "wb") as fh:
        pickle.dump(payload, fh, protocol=4)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pkl_gz_reader_recovers_bytes(tmp_path):
    path = tmp_path / "m.pkl.gz"
    sha = _mnist_like_pickle(path)
    data = read_source(SourceConfig(format="pkl_gz", path=str(path), sha256=sha))
    x, _ = data.splits["val"]
    expected, _ = make_images(30, 3, 4, seed=3)
    np.testing.assert_array_equal(x[..., 0], expected)


def test_pkl_gz_checksum_mismatch_refuses_to_unpickle(tmp_path):
    path = tmp_path / "m.pkl.gz"
    _mnist_like_pickle(path)
    with pytest.raises(DataError, match="sha256 mismatch"):
        read_source(SourceConfig(format="pkl_gz", path=str(path), sha256="0" * 64))


def test_pkl_gz_requires_a_checksum(tmp_path):
    path = tmp_path / "m.pkl.gz"
    _mnist_like_pickle(path)
    with pytest.raises(ConfigError, match="sha256: required"):
        read_source(SourceConfig(format="pkl_gz", path=str(path)))


class _Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_pkl_gz_restricted_unpickler_refuses_other_globals(tmp_path):
    """Even with a matching checksum, only numpy's array globals may be loaded."""
    path = tmp_path / "evil.pkl.gz"
    sha = _mnist_like_pickle(path, payload=_Exploit())
    with pytest.raises(DataError, match="is not allowed"):
        read_source(SourceConfig(format="pkl_gz", path=str(path), sha256=sha))


def test_unknown_format_lists_known(tmp_path):
    src = SourceConfig(format="npz", path="x")
    object.__setattr__(src, "format", "tfrecord")
    with pytest.raises(ConfigError, match="known: pkl_gz, idx, npz"):
        read_source(src)


def test_negative_labels_rejected(tmp_path):
    path = tmp_path / "d.npz"
    x = np.zeros((4, 4, 4), np.uint8)
    np.savez(path, x_train=x, y_train=np.array([0, 1, -1, 0]), x_test=x, y_test=np.zeros(4, int))
    with pytest.raises(DataError, match="negative label"):
        read_source(SourceConfig(format="npz", path=str(path)))
