"""A pkl.gz source declares its arrays' shapes: a few hundred bytes must not be able to ask
for gigabytes. Shape x itemsize is bounded before NumPy allocates anything."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import SourceConfig
from pipeline.data.sources import read_source
from pipeline.errors import DataError
from tests.helpers import load_job, write_data_config

_RECONSTRUCT = ("numpy.core.multiarray", "_reconstruct")


class _Declared:
    """Pickles as NumPy does an array, with whatever shape, dtype and state we declare."""

    def __init__(self, shape: tuple[int, ...], dtype: str, state: tuple | None = None):
        self.shape, self.dtype, self.state = shape, np.dtype(dtype), state

    def __reduce__(self):
        from numpy.core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, self.shape, self.dtype), self.state)


class _Direct:
    """``numpy.ndarray(shape, dtype)`` called as the pickle's constructor."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def __reduce__(self):
        return (np.ndarray, (self.shape, np.dtype("f8")))


def _write(path: Path, payload: object) -> str:
    with gzip.open(path, "wb") as fh:
        pickle.dump(payload, fh, protocol=4)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refusal(path: Path, payload: object) -> str:
    sha = _write(path, payload)
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as caught:
            read_source(SourceConfig(format="pkl_gz", path=str(path), sha256=sha))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert peak < 16 << 20
    return message


def _split(x: object) -> tuple:
    labels = np.zeros(2, np.int64)
    return ((x, labels), (x, labels), (x, labels))


def test_a_tiny_pickle_declaring_32_gib_is_refused_before_allocation(tmp_path):
    path = tmp_path / "bomb.pkl.gz"
    message = _refusal(path, _split(_Declared((1 << 32,), "f8")))
    assert path.stat().st_size < 300
    assert "declares shape (4294967296,) of float64" in message
    assert "more than the 2,147,483,648 bytes a source array may hold" in message


def test_a_state_declaring_a_huge_object_array_is_refused(tmp_path):
    state = (1, (1 << 32,), np.dtype("O"), False, [])
    message = _refusal(tmp_path / "obj.pkl.gz", _split(_Declared((0,), "O", state)))
    assert "declares shape (4294967296,) of object" in message


def test_calling_ndarray_directly_is_bounded_too(tmp_path):
    message = _refusal(tmp_path / "direct.pkl.gz", _split(_Direct((1 << 40,))))
    assert "declares shape (1099511627776,) of float64" in message


def test_arrays_may_not_together_declare_more_than_the_file_holds(tmp_path):
    # Each under the per-array bound, together far beyond the few hundred bytes that hold them.
    many = [_Declared((1 << 20,), "f8") for _ in range(8)]
    message = _refusal(tmp_path / "many.pkl.gz", _split(many))
    assert "more than the pickle's" in message


def test_a_genuine_pickle_still_reads(tmp_path):
    x = (np.arange(8, dtype=np.float32).reshape(2, 4) / 256.0)
    path = tmp_path / "ok.pkl.gz"
    sha = _write(path, _split(x))
    data = read_source(SourceConfig(format="pkl_gz", path=str(path), sha256=sha))
    assert data.splits["train"][0].shape == (2, 2, 2, 1)
    assert all(type(a) is np.ndarray for a in data.splits["train"])


def test_the_job_refuses_in_one_line_exits_2_and_writes_nothing(tmp_path, capsys):
    from pipeline.cli import run_job

    source = tmp_path / "bomb.pkl.gz"
    sha = _write(source, _split(_Declared((1 << 32,), "f8")))
    cfg = write_data_config(tmp_path, source, fmt="pkl_gz", sha256=sha)
    code = run_job(load_job("prepare_data").main, ["--config", str(cfg)], "prepare")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and f"{source}: cannot read pickle" in err
    assert not (tmp_path / "processed").exists()
