"""Spark transforms from raw arrays to validated, split, sharded Parquet with a manifest.

Output layout: ``<output>/<name>/{train,val,test}/part-*.parquet`` and ``manifest.json``.
Everything is written under a temporary folder beside the target and renamed into
place only when complete, so a failed run never leaves a dataset that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.config import DataConfig, SplitConfig
from pipeline.data.arrow import pq
from pipeline.data.manifest import (
    MANIFEST_NAME,
    SPLITS,
    Manifest,
    Shard,
    SplitInfo,
    load_manifest,
    write_manifest,
)
from pipeline.data.integrity import shard_digest
from pipeline.data.sources import SourceData
from pipeline.data.tabular import SparkSource
from pipeline.errors import DataError
from pipeline.storage import disk_errors, recover, staging_dir, swap_into_place

__all__ = ["prepare", "describe_split", "existing_manifest", "staging_dir", "swap_into_place"]

logger = logging.getLogger(__name__)

# Bump when the on-disk layout changes, so old datasets get new fingerprints.
LAYOUT_VERSION = 1

SCHEMA = T.StructType([
    T.StructField("id", T.LongType(), False),
    T.StructField("label", T.IntegerType(), False),
    T.StructField("image", T.BinaryType(), False),
    T.StructField("source_split", T.StringType(), False),
])


def dataset_fingerprint(cfg: DataConfig, source_sha256: str) -> str:
    """Same source bytes + same split/shard settings -> same fingerprint."""
    src = cfg.source
    reading = {"format": src.format, "label_column": src.label_column,
               "image_shape": src.image_shape, "num_classes": src.num_classes}
    payload = {"layout": LAYOUT_VERSION, "source": source_sha256, "reading": reading,
               "split": asdict(cfg.split), "shards": cfg.shards, "name": cfg.name}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def existing_manifest(target: Path, fingerprint: str) -> Manifest | None:
    """The manifest at ``target`` if it is a complete dataset with this fingerprint (put
    back first if a swap into ``target`` was killed halfway)."""
    restored = recover(target)
    if restored:
        logger.warning("WARNING: %s", restored)
    if not (target / MANIFEST_NAME).is_file():
        return None
    try:
        manifest = load_manifest(target)
    except DataError:
        return None
    return manifest if manifest.fingerprint == fingerprint else None


def validate_shapes(data: SourceData) -> None:
    shapes = {split: x.shape[1:] for split, (x, _) in data.splits.items()}
    if len(set(shapes.values())) != 1:
        raise DataError(f"image shapes differ between splits: {shapes}")


def count_classes(df: DataFrame, configured: int | None) -> int:
    """Number of classes, checked against the labels (one small Spark aggregation)."""
    counts = {(r["source_split"], r["label"]): r["count"]
              for r in df.groupBy("source_split", "label").count().collect()}
    labels = {label for _, label in counts}
    top = max(labels)
    if configured is not None and top >= configured:
        raise DataError(f"labels outside [0, {configured}): found label {top}")
    num_classes = configured or top + 1
    train = {label for split, label in counts if split == "train"}
    missing = sorted(set(range(num_classes)) - train)
    if missing:
        raise DataError(f"train split has no examples of class(es) {missing}")
    return num_classes


def to_dataframe(spark: SparkSession, data: SourceData) -> DataFrame:
    """One row per example: id, label, raw uint8 image bytes, and the source's split."""
    frames = []
    offset = 0
    for split, (x, y) in data.splits.items():
        flat = x.reshape(len(x), -1)
        frames.append(pd.DataFrame({
            "id": np.arange(offset, offset + len(x), dtype=np.int64),
            "label": y.astype(np.int32),
            "image": [row.tobytes() for row in flat],
            "source_split": split,
        }))
        offset += len(x)
    return spark.createDataFrame(pd.concat(frames, ignore_index=True), schema=SCHEMA)


def assign_splits(df: DataFrame, present: set[str], split: SplitConfig) -> DataFrame:
    """Add a ``split`` column, carving the splits the source lacks out of its train split.

    Within each class, rows are ordered by a seeded random key; the first ceil(n x test
    fraction) become test, the next ceil(n x val fraction) validation: stratified and
    reproducible, and every class present keeps at least one example in each carved split.
    """
    test_frac = 0.0 if "test" in present else split.test_fraction
    val_frac = 0.0 if "val" in present else split.val_fraction
    if test_frac == 0.0 and val_frac == 0.0:
        return df.withColumn("split", F.col("source_split"))
    train = df.filter(F.col("source_split") == "train")
    counts = train.groupBy("label").count().withColumnRenamed("count", "n")
    order = Window.partitionBy("label").orderBy(F.rand(split.seed), F.col("id"))
    n_test = F.ceil(F.col("n") * test_frac)
    n_val = F.ceil(F.col("n") * val_frac)
    ranked = (train.join(F.broadcast(counts), "label")
              .withColumn("k", F.row_number().over(order))
              .withColumn("split", F.when(F.col("k") <= n_test, "test")
                          .when(F.col("k") <= n_test + n_val, "val").otherwise("train"))
              .drop("k", "n"))
    rest = df.filter(F.col("source_split") != "train").withColumn("split", F.col("source_split"))
    return ranked.unionByName(rest)


def write_splits(df: DataFrame, staging: Path, shards: int, seed: int) -> None:
    for split in SPLITS:
        part = df.filter(F.col("split") == split).select("label", "image")
        # Round-robin dealing gives shards of equal size and an even share of each class
        # (rows arrive grouped by class), then a seeded shuffle within each shard mixes
        # them: one exchange, where a global random sort before dealing needed two.
        (part.repartition(shards).sortWithinPartitions(F.rand(seed))
         .write.mode("error").parquet(str(staging / split)))


def describe_split(folder: Path, num_classes: int) -> SplitInfo:
    shards, hist = [], np.zeros(num_classes, dtype=np.int64)
    for path in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(path, columns=["label"])
        shards.append(Shard(path.name, table.num_rows, *shard_digest(path)))
        labels = table.column("label").to_numpy()
        hist += np.bincount(labels, minlength=num_classes)[:num_classes]
    return SplitInfo(int(hist.sum()), shards, hist.tolist())


def prepare(spark: SparkSession, cfg: DataConfig, data: SourceData | SparkSource, output: Path,
            force: bool = False) -> tuple[Manifest, bool]:
    """Write the dataset under ``output/<name>``; returns (manifest, whether it was written)."""
    target = output / cfg.name
    fingerprint = dataset_fingerprint(cfg, data.sha256)
    if not force and (found := existing_manifest(target, fingerprint)):
        return found, False
    if isinstance(data, SourceData):
        validate_shapes(data)
        df, present = to_dataframe(spark, data), set(data.splits)
    else:
        df, present = data.df, set(data.splits)
    num_classes = count_classes(df, cfg.source.num_classes)
    staging = staging_dir(output, cfg.name)
    try:
        with disk_errors(output, "dataset"):
            _write_carved(df, present, cfg, staging)
            manifest = Manifest(
                dataset=cfg.name, fingerprint=fingerprint, source_format=cfg.source.format,
                source_sha256=data.sha256, image_shape=list(data.image_shape),
                num_classes=num_classes, pixel_dtype="uint8",
                splits={s: describe_split(staging / s, num_classes) for s in SPLITS},
            )
            _check_nonempty(manifest)
            write_manifest(staging, manifest)  # last: a staging folder with it is complete
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest, True


def _write_carved(df: DataFrame, present: set[str], cfg: DataConfig, staging: Path) -> None:
    # Each split's write would otherwise re-read the source and redo the stratified carve.
    assigned = assign_splits(df, present, cfg.split).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        write_splits(assigned, staging, cfg.shards, cfg.split.seed)
    finally:
        assigned.unpersist()


def _check_nonempty(manifest: Manifest) -> None:
    for split, info in manifest.splits.items():
        if info.rows == 0:
            raise DataError(f"{manifest.dataset}: split {split!r} would be empty")
