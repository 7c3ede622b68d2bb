"""Spark-native readers for tabular sources: CSV (the Kaggle digit-recognizer layout, a label
column and one column per pixel) and existing Parquet (pixel columns, or a binary image column).

The driver never holds the rows: validation is one Spark aggregation and the conversion to
compact uint8 image bytes runs in the executors, partition by partition.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.config import SourceConfig
from pipeline.data.limits import label_problem
from pipeline.data.sources import sha256_file
from pipeline.errors import DataError

IMAGE_SCHEMA = T.StructType([
    T.StructField("label", T.IntegerType(), False),
    T.StructField("image", T.BinaryType(), False),
])


@dataclass
class SparkSource:
    """A source read by Spark: rows of (id, label, image bytes, source_split)."""

    df: DataFrame
    sha256: str
    image_shape: tuple[int, ...]
    splits: tuple[str, ...]


def read_tabular(spark: SparkSession, src: SourceConfig) -> SparkSource:
    parts = {"train": Path(src.path)}
    if src.test_path:
        parts["test"] = Path(src.test_path)
    frames, digests, shape = [], [], None
    for split, path in parts.items():
        df, part_shape = _read_one(spark, src, path)
        if shape is not None and part_shape != shape:
            raise DataError(f"{path}: image shape {part_shape} differs from {shape}")
        shape = part_shape
        frames.append(df.withColumn("source_split", F.lit(split)))
        digests.append(sha256_path(path))
    df = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    df = df.withColumn("id", F.monotonically_increasing_id())
    digest = hashlib.sha256("".join(digests).encode()).hexdigest()
    return SparkSource(df, digest, shape, tuple(parts))


def _read_one(spark: SparkSession, src: SourceConfig,
              path: Path) -> tuple[DataFrame, tuple[int, ...]]:
    if not path.exists():
        raise DataError(f"{path}: input not found")
    if src.format == "csv":
        columns = csv_header(path)
        _check_columns(path, columns, src.label_column)  # before Spark sees the schema
        df = spark.read.csv(str(path), header=True, mode="FAILFAST",
                            schema=T.StructType([T.StructField(c, T.DoubleType())
                                                 for c in columns]))
    else:
        df = spark.read.parquet(str(path))
        columns = df.columns
    label = src.label_column
    _check_columns(path, columns, label)
    if src.format == "parquet" and "image" in columns:
        return _binary_images(path, df, label, src.image_shape)
    pixels = [c for c in columns if c != label]
    shape = _shape(path, len(pixels), src.image_shape)
    _validate_pixels(path, df, label, pixels)
    return _pack(df, label, pixels), shape


def csv_header(path: Path) -> list[str]:
    """A CSV file's column names, with a one-line error for an unreadable or empty file."""
    try:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read CSV header ({exc})") from exc
    if not header:
        raise DataError(f"{path}: empty CSV (no header)")
    return [h.strip() for h in header]


def _check_columns(path: Path, columns: list[str], label: str) -> None:
    seen = set()
    for name in columns:
        if name in seen:
            raise DataError(f"{path}: duplicate column {name!r}")
        seen.add(name)
    if label not in seen:
        raise DataError(f"{path}: missing label column {label!r}")
    if len(columns) < 2:
        raise DataError(f"{path}: no pixel columns besides {label!r}")


def _shape(path: Path, n_pixels: int, configured: tuple[int, ...] | None) -> tuple[int, ...]:
    if configured:
        if math.prod(configured) != n_pixels:
            raise DataError(f"{path}: {n_pixels} pixel columns do not fit image_shape "
                            f"{list(configured)}")
        return tuple(configured) if len(configured) == 3 else (*configured, 1)
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise DataError(f"{path}: {n_pixels} pixel columns is not a square image; "
                        f"set source.image_shape")
    return (side, side, 1)


def _any(columns: list[str], test: Callable[[Column], Column]) -> Column:
    """1 if ``test`` holds for any of the columns in some row, summed over rows."""
    hit = F.lit(False)
    for c in columns:
        hit = hit | F.coalesce(test(F.col(c)), F.lit(False))
    return F.sum(F.when(hit, 1).otherwise(0))


def _validate_pixels(path: Path, df: DataFrame, label: str, pixels: list[str]) -> None:
    """One aggregation over all rows; the first problem found is reported."""
    cols = [label, *pixels]
    try:
        row = df.agg(
            F.count(F.lit(1)).alias("rows"),
            _any(cols, lambda c: c.isNull()).alias("nulls"),
            _any(cols, lambda c: F.isnan(c) | (F.abs(c) == float("inf"))).alias("nans"),
            _any(cols, lambda c: c != F.round(c)).alias("fractions"),
            F.min(label).alias("label_min"),
            F.max(label).alias("label_max"),
            _any(pixels, lambda c: (c < 0) | (c > 255)).alias("out_of_range"),
        ).first()
    except Exception as exc:  # malformed rows surface here, where Spark first parses them
        first = str(exc).strip().splitlines()[0][:300]
        raise DataError(f"{path}: malformed data ({first})") from exc
    problems = [
        (row["rows"] == 0, "no rows"),
        (row["nulls"], f"{row['nulls']} rows with missing values"),
        (row["nans"], f"{row['nans']} rows with NaN or inf"),
        (row["fractions"], f"{row['fractions']} rows with non-integer values"),
        (row["label_min"] is not None and row["label_min"] < 0, "negative labels"),
        _too_large(row["label_max"]),
        (row["out_of_range"], f"{row['out_of_range']} rows with pixels outside [0, 255]"),
    ]
    for bad, message in problems:
        if bad:
            raise DataError(f"{path}: {message}")


def _too_large(label_max: float | None) -> tuple[bool, str]:
    """(whether, why) the largest label is refused, before the int32 cast could wrap it."""
    problem = label_problem(int(label_max)) if label_max is not None else None
    return problem is not None, problem or ""


def _pack(df: DataFrame, label: str, pixels: list[str]) -> DataFrame:
    """Pixel columns -> one uint8 bytes column, computed in the executors."""
    def pack(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            values = pdf[pixels].to_numpy(dtype=np.float64).astype(np.uint8)
            yield pd.DataFrame({"label": pdf[label].astype(np.int32),
                                "image": [row.tobytes() for row in values]})
    return df.select(label, *pixels).mapInPandas(pack, IMAGE_SCHEMA)


def _binary_images(path: Path, df: DataFrame, label: str,
                   configured: tuple[int, ...] | None) -> tuple[DataFrame, tuple[int, ...]]:
    stats = df.agg(F.count(F.lit(1)).alias("rows"), F.min(F.length("image")).alias("lo"),
                   F.max(F.length("image")).alias("hi"), F.min(label).alias("label_min"),
                   F.max(label).alias("label_max"),
                   F.sum(F.when(F.col(label).isNull() | F.col("image").isNull(), 1)
                         .otherwise(0)).alias("nulls")).first()
    if stats["rows"] == 0:
        raise DataError(f"{path}: no rows")
    if stats["nulls"]:
        raise DataError(f"{path}: {stats['nulls']} rows with missing label or image")
    if stats["lo"] != stats["hi"]:
        raise DataError(f"{path}: images have different sizes ({stats['lo']}..{stats['hi']} "
                        f"bytes)")
    if stats["label_min"] < 0:
        raise DataError(f"{path}: negative labels")
    too_large, why = _too_large(stats["label_max"])
    if too_large:
        raise DataError(f"{path}: {why}")
    shape = _shape(path, stats["lo"], configured)
    return df.select(F.col(label).cast("int").alias("label"), "image"), shape


def sha256_path(path: Path) -> str:
    """A file's sha256, or for a folder (Parquet) the hash of its files' hashes."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{f.relative_to(path)}:{sha256_file(f)}".encode())
    return digest.hexdigest()
