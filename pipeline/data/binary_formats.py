"""Bounded readers of binary array formats: an IDX file's data and an npz member's header are
checked against their declared sizes (and MAX_ARRAY_BYTES) before any memory is taken, so a
gzip bomb or a header declaring a terabyte is one DataError naming the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pipeline.data.limits import MAX_ARRAY_BYTES
from pipeline.errors import DataError


def read_idx(path: Path) -> np.ndarray:
    """One IDX file of unsigned bytes; validates the magic number and the declared size.

    The header is read first and the data only up to the size it declares: a gzip bomb (a
    small ``.gz`` inflating to gigabytes) or a header declaring more than any source array
    may hold is refused before that memory is taken.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return _read_idx_stream(fh, path)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc


def _read_idx_stream(fh: BinaryIO, path: Path) -> np.ndarray:
    magic = fh.read(4)
    if len(magic) < 4:
        raise DataError(f"{path}: too short to be an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
        raise DataError(f"{path}: bad IDX magic {magic.hex()} (expected 000008 + dims)")
    header = fh.read(4 * ndim)
    if len(header) < 4 * ndim:
        raise DataError(f"{path}: too short to be an IDX file")
    dims = struct.unpack(f">{ndim}I", header)
    expected = math.prod(dims)  # Python integers: no overflow
    if expected > MAX_ARRAY_BYTES:
        raise DataError(f"{path}: header declares dimensions {list(dims)} = {expected:,} "
                        f"bytes, more than the {MAX_ARRAY_BYTES:,} a source array may hold")
    raw = fh.read(expected)
    if len(raw) != expected:
        raise DataError(f"{path}: header declares {expected} bytes of data, file has "
                        f"{len(raw)}")
    if fh.read(1):
        raise DataError(f"{path}: header declares {expected} bytes of data, file has more")
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def check_npz_members(path: Path, names: tuple[str, ...]) -> None:
    """Each member's declared shape, before NumPy allocates it: within MAX_ARRAY_BYTES and
    matching the member's size in the archive (which bounds what inflating it produces)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in names:
                try:
                    info = archive.getinfo(f"{name}.npy")
                except KeyError:
                    continue  # reported by the reader, with the list of arrays it needs
                with archive.open(info) as member:
                    _check_npy_header(path, name, member, info.file_size)
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{path}: cannot read npz ({exc})") from exc


def _check_npy_header(path: Path, name: str, member: BinaryIO, size: int) -> None:
    from numpy.lib import format as npy

    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    try:
        version = npy.read_magic(member)
        if version not in readers:
            raise ValueError(f"format version {version} not supported")
        shape, _, dtype = readers[version](member)
    except (ValueError, TypeError, SyntaxError) as exc:
        raise DataError(f"{path}: array {name} has an unreadable header ({exc})") from exc
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_ARRAY_BYTES:
        raise DataError(f"{path}: array {name} declares shape {list(shape)} = {declared:,} "
                        f"bytes, more than the {MAX_ARRAY_BYTES:,} a source array may hold")
    if declared != size - member.tell():
        raise DataError(f"{path}: array {name} declares {declared:,} bytes but holds "
                        f"{size - member.tell():,}")
