"""Spark reader for tabular problems: CSV or Parquet with named numeric feature columns and
a label (multiclass, binary), 0/1 label columns (multilabel) or target columns (regression).

Validation is one Spark aggregation per file and the first problem is reported in one line
naming the file, the column and how many rows are affected. The rows come out as
``id, label, source_split, x0.., t0..`` (doubles), the names kept in the manifest, so a
column called ``id`` or ``label`` in the user's table cannot collide with ours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.config import DataConfig
from pipeline.data.tabular import csv_header as _csv_header
from pipeline.data.tabular import sha256_path
from pipeline.errors import DataError

NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType,
           T.DecimalType, T.BooleanType)


@dataclass
class VectorSource:
    """A table read by Spark: rows of (id, label, source_split, x0.., t0..)."""

    df: DataFrame
    sha256: str
    features: list[str]
    targets: list[str]
    splits: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, ...]:  # the input shape, as for images
        return (len(self.features),)


def feature_column(i: int) -> str:
    return f"x{i}"


def target_column(i: int) -> str:
    return f"t{i}"


def read_vectors(spark: SparkSession, cfg: DataConfig) -> VectorSource:
    src = cfg.source
    parts = {"train": Path(src.path)}
    if src.test_path:
        parts["test"] = Path(src.test_path)
    label = None if src.targets else src.label_column
    frames, digests = [], []
    for split, path in parts.items():
        df = _numeric(path, _read(spark, src.format, path), list(src.features),
                      list(src.targets or ()), label, cfg.task)
        frames.append(df.withColumn("source_split", F.lit(split)))
        digests.append(sha256_path(path))
    df = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    df = df.withColumn("id", F.monotonically_increasing_id())
    digest = hashlib.sha256("".join(digests).encode()).hexdigest()
    return VectorSource(df, digest, list(src.features), list(src.targets or ()), tuple(parts))


def _read(spark: SparkSession, fmt: str, path: Path) -> DataFrame:
    if not path.exists():
        raise DataError(f"{path}: input not found")
    if fmt == "parquet":
        return spark.read.parquet(str(path))
    # Every column as text: a non-number is then counted and named, where a numeric schema
    # would turn it into a null (or, in FAILFAST mode, an error naming no column).
    columns = _csv_header(path)
    schema = T.StructType([T.StructField(c, T.StringType()) for c in columns])
    return spark.read.csv(str(path), header=True, schema=schema, mode="FAILFAST")


def _numeric(path: Path, df: DataFrame, features: list[str], targets: list[str],
             label: str | None, task: str) -> DataFrame:
    """The wanted columns as doubles, after one aggregation that checks them all."""
    wanted = [*features, *targets, *([label] if label else [])]
    types = dict(df.dtypes)
    missing = [c for c in wanted if c not in types]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} (columns: {', '.join(df.columns)})")
    text = all(isinstance(df.schema[c].dataType, T.StringType) for c in df.columns)
    for c in wanted:  # a CSV's columns are all text here; a Parquet column has its own type
        field = df.schema[c].dataType
        if not (isinstance(field, NUMERIC) or text):
            raise DataError(f"{path}: column {c!r} is {field.simpleString()}, not numeric")
    values = {c: _as_double(c) for c in wanted}
    checks = []
    for c in wanted:
        v, raw = values[c], F.col(f"`{c}`")
        checks += [F.sum(F.when(raw.isNotNull() & v.isNull(), 1).otherwise(0)).alias(f"{c}|text"),
                   F.sum(F.when(raw.isNull() | F.isnan(v) | (F.abs(v) == float("inf")), 1)
                         .otherwise(0)).alias(f"{c}|missing")]
    for c in ([label] if label else []) + (targets if task == "multilabel" else []):
        v = values[c]
        allowed = v.isin(0.0, 1.0) if c in targets else (v == F.round(v)) & (v >= 0)
        checks.append(F.sum(F.when(v.isNotNull() & ~allowed, 1).otherwise(0)).alias(f"{c}|set"))
    counts = _aggregate(path, df, checks)
    if counts["rows"] == 0:
        raise DataError(f"{path}: no rows")
    _report(path, counts, wanted, targets, label)
    out = [values[c].alias(feature_column(i)) for i, c in enumerate(features)]
    out += [values[c].alias(target_column(i)) for i, c in enumerate(targets)]
    out.append(values[label].cast("int").alias("label") if label else F.lit(0).alias("label"))
    return df.select(*out)


def _as_double(c: str) -> Column:
    # try_cast: a text value that is not a number becomes null instead of failing the job.
    return F.expr(f"try_cast(`{c}` AS DOUBLE)")


def _aggregate(path: Path, df: DataFrame, checks: list[Column]) -> dict[str, int]:
    try:
        row = df.agg(F.count(F.lit(1)).alias("rows"), *checks).first()
    except Exception as exc:  # malformed rows surface here, where Spark first parses them
        first = str(exc).strip().splitlines()[0][:300]
        raise DataError(f"{path}: malformed data ({first})") from exc
    return row.asDict()


def _report(path: Path, counts: dict[str, int], wanted: list[str], targets: list[str],
            label: str | None) -> None:
    """The first problem found, in one line."""
    for c in wanted:
        role = "target column" if c in targets else "label column" if c == label else "column"
        if counts[f"{c}|text"]:
            raise DataError(f"{path}: {role} {c!r} is not numeric ({counts[f'{c}|text']} rows "
                            "hold text)")
        if counts[f"{c}|missing"]:
            raise DataError(f"{path}: {role} {c!r} has {counts[f'{c}|missing']} rows with "
                            "missing values (empty, null, NaN or inf)")
    for c in [*targets, *([label] if label else [])]:
        bad = counts.get(f"{c}|set")
        if bad:
            declared = "{0, 1}" if c in targets else "non-negative integers"
            raise DataError(f"{path}: label column {c!r} has {bad} rows outside the declared "
                            f"set {declared}")
