"""Does a prepared dataset still match its manifest? Checked by the sweep before it plans.

The manifest records each shard's rows, byte size and sha256 at prepare time. A shard that was
truncated, replaced or edited, or a manifest whose counts were edited, is refused with one line
before any training. Hashing is cheap next to training: MNIST's 17 MB of shards take ~0.1 s.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.data.arrow import CVE, is_refused_type, pa, pq
from pipeline.data.layout import LABEL, LABEL_TASKS, Layout
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
            _check_shard(where, root / split / shard.file, f"{split}/{shard.file}", shard,
                         manifest.layout)


def _check_totals(where: Path, split: str, info: SplitInfo, one_label: bool) -> None:
    shard_rows = sum(s.rows for s in info.shards)
    # One label per row: the class histogram adds up to the rows. A multi-label histogram
    # counts positives per label, and a regression one is empty.
    histogram = sum(info.class_histogram) if one_label else info.rows
    if not info.rows == shard_rows == histogram:
        raise DataError(f"{where}: split {split!r} counts disagree (rows {info.rows}, shards "
                        f"{shard_rows}, class histogram {sum(info.class_histogram)}); "
                        "prepare the dataset again")


def _check_columns(where: Path, name: str, schema: pa.Schema, layout: Layout) -> None:
    """The columns prepare writes for this layout: the input as bytes (uint8 images or
    float32 features), the target as an integer label or float32 bytes."""
    fields = {f.name: f.type for f in schema}
    binary = (pa.types.is_binary, pa.types.is_large_binary)
    inp, target = fields.get(layout.input_column), fields.get(layout.target_column)
    target_ok = target is not None and (pa.types.is_integer(target) if
                                        layout.target_column == LABEL else
                                        any(t(target) for t in binary))
    if inp is None or not any(t(inp) for t in binary) or not target_ok:
        kind = "an integer" if layout.target_column == LABEL else "a binary"
        raise DataError(f"{where}: shard {name} must hold {kind} {layout.target_column!r} and "
                        f"a binary {layout.input_column!r} column, found "
                        f"{', '.join(f'{k}: {v}' for k, v in fields.items())}")


def _check_shard(where: Path, path: Path, name: str, shard: Shard, layout: Layout) -> None:
    # Size first: a truncated file is named as such, without reading it.
    if shard.bytes is not None and path.stat().st_size != shard.bytes:
        raise DataError(f"{where}: shard {name} is {path.stat().st_size} bytes, the manifest "
                        f"recorded {shard.bytes} (truncated or replaced); prepare it again")
    try:
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        if is_refused_type(exc):
            raise DataError(f"{where}: shard {name} holds a column of type "
                            f"arrow.py_extension_type, which runs code when read ({CVE}); "
                            "refused") from exc
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{where}: shard {name} is not a readable Parquet file ({first})") \
            from exc
    _check_columns(where, name, schema, layout)
    rows = metadata.num_rows
    if rows != shard.rows:
        raise DataError(f"{where}: shard {name} holds {rows} rows, the manifest says "
                        f"{shard.rows}; prepare the dataset again")
    if shard.sha256 is not None and shard_digest(path)[1] != shard.sha256:
        raise DataError(f"{where}: shard {name} does not match its sha256 in the manifest "
                        "(modified since prepare); prepare it again")
