"""Does a prepared dataset still match its manifest? Checked by the sweep before it plans.

The manifest records each shard's rows, byte size and sha256 at prepare time. A shard that was
truncated, replaced or edited, or a manifest whose counts were edited, is refused with one line
before any training. Hashing is cheap next to training: MNIST's 17 MB of shards take ~0.1 s.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from pipeline.data.layout import LABEL_TASKS
from pipeline.errors import DataError

if TYPE_CHECKING:
    from pipeline.data.manifest import Manifest, Shard, SplitInfo


def shard_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of a file, read in 1 MiB blocks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def verify(root: Path, manifest: Manifest) -> None:
    """Raise DataError naming the first disagreement between the manifest and the files."""
    where = root / "manifest.json"
    for split, info in manifest.splits.items():
        _check_totals(where, split, info, manifest.task in LABEL_TASKS)
        for shard in info.shards:
            _check_shard(where, root / split / shard.file, f"{split}/{shard.file}", shard)


def _check_totals(where: Path, split: str, info: SplitInfo, one_label: bool) -> None:
    shard_rows = sum(s.rows for s in info.shards)
    # One label per row: the class histogram adds up to the rows. A multi-label histogram
    # counts positives per label, and a regression one is empty.
    histogram = sum(info.class_histogram) if one_label else info.rows
    if not info.rows == shard_rows == histogram:
        raise DataError(f"{where}: split {split!r} counts disagree (rows {info.rows}, shards "
                        f"{shard_rows}, class histogram {sum(info.class_histogram)}); "
                        "prepare the dataset again")


def _check_shard(where: Path, path: Path, name: str, shard: Shard) -> None:
    # Size first: a truncated file is named as such, without reading it.
    if shard.bytes is not None and path.stat().st_size != shard.bytes:
        raise DataError(f"{where}: shard {name} is {path.stat().st_size} bytes, the manifest "
                        f"recorded {shard.bytes} (truncated or replaced); prepare it again")
    try:
        rows = pq.read_metadata(path).num_rows
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        raise DataError(f"{where}: shard {name} is not a readable Parquet file ({exc})") from exc
    if rows != shard.rows:
        raise DataError(f"{where}: shard {name} holds {rows} rows, the manifest says "
                        f"{shard.rows}; prepare the dataset again")
    if shard.sha256 is not None and shard_digest(path)[1] != shard.sha256:
        raise DataError(f"{where}: shard {name} does not match its sha256 in the manifest "
                        "(modified since prepare); prepare it again")
