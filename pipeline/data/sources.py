"""Readers for raw image-classification data: MNIST pkl.gz, IDX (plain or gzipped), Keras npz.

Each reader returns a :class:`SourceData`: uint8 images ``[N, H, W, C]`` and int64
labels per source split. Problems come out as one-line DataErrors naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pipeline.config import SourceConfig
from pipeline.data.binary_formats import check_npz_members, read_idx
from pipeline.data.limits import MAX_ARRAY_BYTES, label_problem
from pipeline.data.pickles import load_arrays
from pipeline.errors import ConfigError, DataError


@dataclass
class SourceData:
    """Raw splits as arrays; ``splits`` maps a source split name to (images, labels)."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    sha256: str

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(next(iter(self.splits.values()))[0].shape[1:])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> str:
    actual = sha256_file(path)
    if expected is not None and actual != expected.lower():
        raise DataError(f"{path}: sha256 mismatch (expected {expected}, got {actual})")
    return actual


# ---------------------------------------------------------------------------
# pkl.gz


def read_pkl_gz(src: SourceConfig) -> SourceData:
    """The classic ``mnist.pkl.gz``: ((train_x, train_y), (val_x, val_y), (test_x, test_y))."""
    path = _existing(src.path)
    if not src.sha256:
        raise ConfigError(f"source.sha256: required for pkl_gz ({path} is never unpickled "
                          "unchecked)")
    digest = verify_sha256(path, src.sha256)
    try:
        with gzip.open(path, "rb") as fh:
            raw = _read_at_most(fh, 3 * MAX_ARRAY_BYTES, path)  # train + val + test
            payload = load_arrays(raw)
    # A malformed stream surfaces as whichever error the opcode it broke raises.
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError,
            KeyError, IndexError) as exc:
        raise DataError(f"{path}: cannot read pickle ({exc})") from exc
    if not (isinstance(payload, tuple) and len(payload) == 3):
        raise DataError(f"{path}: expected a tuple of (train, validation, test)")
    splits = {}
    for name, part in zip(("train", "val", "test"), payload, strict=True):
        x, y = part
        splits[name] = (_unit_floats_to_uint8(x, path), _labels(y, len(x), path))
    return SourceData(splits, digest)


def _unit_floats_to_uint8(x: np.ndarray, path: Path) -> np.ndarray:
    """Pixels stored as k/256 floats back to their 8-bit values, as square images."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{path}: expected flat images [N, pixels], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: images contain NaN or inf")
    if x.min() < 0.0 or x.max() > 1.0:
        raise DataError(f"{path}: pixel values outside [0, 1]")
    side = round(np.sqrt(x.shape[1]))
    if side * side != x.shape[1]:
        raise DataError(f"{path}: {x.shape[1]} pixels per image is not a square image")
    scaled = np.rint(x * 256.0)
    return np.clip(scaled, 0, 255).astype(np.uint8).reshape(len(x), side, side, 1)


# ---------------------------------------------------------------------------
# IDX

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx_dir(src: SourceConfig) -> SourceData:
    """A directory with MNIST-style IDX files, each plain or ``.gz``."""
    root = Path(src.path)
    if not root.is_dir():
        raise DataError(f"{root}: IDX source must be a directory holding the four IDX files")
    digest = hashlib.sha256()
    splits = {}
    for split, (img_name, lbl_name) in _IDX_FILES.items():
        img_path, lbl_path = _idx_path(root, img_name), _idx_path(root, lbl_name)
        images = read_idx(img_path)
        labels = read_idx(lbl_path)
        if images.ndim != 3:
            raise DataError(f"{img_path}: expected 3 dimensions (N, rows, cols), got {images.ndim}")
        if labels.ndim != 1:
            raise DataError(f"{lbl_path}: expected 1 dimension, got {labels.ndim}")
        if len(images) != len(labels):
            raise DataError(f"{img_path}: {len(images)} images but {len(labels)} labels")
        splits[split] = (images[..., None], _labels(labels, len(images), lbl_path))
        for p in (img_path, lbl_path):
            digest.update(sha256_file(p).encode())
    return SourceData(splits, digest.hexdigest())


def _idx_path(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root / stem}: IDX file not found (plain or .gz)")


def _read_at_most(fh: BinaryIO, limit: int, path: Path) -> bytes:
    # In blocks: read(limit) would reserve the whole limit up front, whatever the file holds.
    data = bytearray()
    while block := fh.read(min(1 << 20, limit + 1 - len(data))):
        data += block
        if len(data) > limit:
            raise DataError(f"{path}: inflates to more than {limit:,} bytes")
    return bytes(data)


# ---------------------------------------------------------------------------
# npz


def read_npz(src: SourceConfig) -> SourceData:
    """Keras' ``mnist.npz``: x_train, y_train, x_test, y_test."""
    path = _existing(src.path)
    digest = verify_sha256(path, src.sha256)
    check_npz_members(path, ("x_train", "y_train", "x_test", "y_test"))
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise DataError(f"{path}: missing array {exc} (need x_train, y_train, x_test, "
                        "y_test)") from None
    except (OSError, ValueError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read npz ({exc})") from exc
    splits = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise DataError(f"{path}: x_{split} must be uint8 [N, H, W(, C)], got {x.dtype} "
                            f"{x.shape}")
        x = x[..., None] if x.ndim == 3 else x
        splits[split] = (x, _labels(y, len(x), path))
    return SourceData(splits, digest)


# ---------------------------------------------------------------------------
# Shared checks and the registry


def _existing(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: input file not found")
    return p


def _labels(y: np.ndarray, n_images: int, path: Path) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_images:
        raise DataError(f"{path}: {n_images} images but labels of shape {y.shape}")
    if n_images == 0:
        raise DataError(f"{path}: no examples")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers, got {y.dtype}")
    if y.min() < 0:
        raise DataError(f"{path}: negative label {int(y.min())}")
    problem = label_problem(int(y.max()))  # before any narrowing: 2**32 + 3 is not 3
    if problem:
        raise DataError(f"{path}: {problem}")
    return y.astype(np.int64)


READERS: dict[str, Callable[[SourceConfig], SourceData]] = {
    "pkl_gz": read_pkl_gz,
    "idx": read_idx_dir,
    "npz": read_npz,
}


def read_source(src: SourceConfig) -> SourceData:
    try:
        reader = READERS[src.format]
    except KeyError:
        raise ConfigError(f"source.format: unknown {src.format!r} "
                          f"(known: {', '.join(READERS)})") from None
    return reader(src)
