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
from pipeline.data.encode import (
    Packing,
    check_labels,
    derive_images,
    target_schema,
    vector_scaling,
)
from pipeline.data.feed import decode_fixed
from pipeline.data.integrity import shard_digest
from pipeline.data.layout import LABEL, LABEL_TASKS, TARGET
from pipeline.data.manifest import (
    MANIFEST_NAME,
    SPLITS,
    Manifest,
    Scaling,
    Shard,
    SplitInfo,
    TargetSchema,
    load_manifest,
    write_manifest,
)
from pipeline.data.sources import SourceData
from pipeline.data.tabular import SparkSource
from pipeline.data.vectors import VectorSource
from pipeline.errors import DataError
from pipeline.storage import disk_errors, recover, staging_dir, swap_into_place

__all__ = ["describe_split", "existing_manifest", "prepare", "staging_dir", "swap_into_place"]

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
    # Only what differs from a multi-class image dataset, so those keep their fingerprints
    # (and their sweeps' finished runs) from before tasks existed.
    target = {"task": cfg.task if cfg.task != "multiclass" else None, "derive": cfg.derive,
              "features": src.features, "targets": src.targets, "label_names": src.label_names}
    if any(target.values()):
        payload["target"] = {k: v for k, v in target.items() if v}
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
    """``df``: the split column and the stored columns (pipeline.data.layout)."""
    for split in SPLITS:
        part = df.filter(F.col("split") == split).drop("split")
        # Round-robin dealing gives shards of equal size and an even share of each class
        # (rows arrive grouped by class), then a seeded shuffle within each shard mixes
        # them: one exchange, where a global random sort before dealing needed two.
        (part.repartition(shards).sortWithinPartitions(F.rand(seed))
         .write.mode("error").parquet(str(staging / split)))


def describe_split(folder: Path, num_classes: int, task: str = "multiclass") -> SplitInfo:
    """Rows, shards and a histogram: rows per class for one-label tasks, positives per label
    for multi-label, none for regression."""
    shards, hist = [], np.zeros(num_classes, dtype=np.int64)
    column = LABEL if task in LABEL_TASKS else TARGET
    for path in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(path, columns=[column])
        shards.append(Shard(path.name, table.num_rows, *shard_digest(path)))
        if task in LABEL_TASKS:
            labels = table.column(LABEL).to_numpy()
            hist += np.bincount(labels, minlength=num_classes)[:num_classes]
        elif task == "multilabel":
            hist += decode_fixed(table.column(TARGET), (num_classes,), np.float32,
                                 path).sum(axis=0).astype(np.int64)
    rows = sum(s.rows for s in shards)
    return SplitInfo(rows, shards, hist.tolist())


def prepare(spark: SparkSession, cfg: DataConfig, data: SourceData | SparkSource | VectorSource,
            output: Path, force: bool = False) -> tuple[Manifest, bool]:
    """Write the dataset under ``output/<name>``; returns (manifest, whether it was written)."""
    target = output / cfg.name
    fingerprint = dataset_fingerprint(cfg, data.sha256)
    if not force and (found := existing_manifest(target, fingerprint)):
        return found, False
    if isinstance(data, SourceData):
        validate_shapes(data)
        df = to_dataframe(spark, data)
    else:
        df = data.df
    present = set(data.splits)
    source_classes = check_labels(df, cfg)
    staging = staging_dir(output, cfg.name)
    try:
        with disk_errors(output, "dataset"):
            features, targets = _write_carved(df, present, cfg, data, staging, source_classes)
            num_classes = {"multiclass": source_classes, "binary": 2,
                           "multilabel": len(targets.names), "regression": 0}[cfg.task]
            manifest = Manifest(
                dataset=cfg.name, fingerprint=fingerprint, source_format=cfg.source.format,
                source_sha256=data.sha256, image_shape=list(data.image_shape),
                num_classes=num_classes, pixel_dtype="uint8" if features is None else "float32",
                splits={s: describe_split(staging / s, num_classes, cfg.task) for s in SPLITS},
                task=cfg.task, input_kind="image" if features is None else "vector",
                features=features, target=targets,
            )
            _check_nonempty(manifest)
            write_manifest(staging, manifest)  # last: a staging folder with it is complete
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest, True


def _write_carved(df: DataFrame, present: set[str], cfg: DataConfig,
                  data: SourceData | SparkSource | VectorSource, staging: Path,
                  classes: int) -> tuple[Scaling | None, TargetSchema]:
    """Split, encode and write; returns the feature scaling (tables) and the target schema."""
    # Each split's write would otherwise re-read the source and redo the stratified carve.
    assigned = assign_splits(df, present, cfg.split).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        if isinstance(data, VectorSource):
            features, targets = vector_scaling(assigned, cfg, data)
            finished = Packing(cfg.task, features, targets).apply(assigned)
            schema = target_schema(cfg, classes, targets.names,
                                   targets if cfg.task == "regression" else None)
        else:
            features, finished = None, derive_images(assigned, cfg.task, cfg.derive)
            schema = target_schema(cfg, classes, list(cfg.derive or ()), None)
        write_splits(finished, staging, cfg.shards, cfg.split.seed)
    finally:
        assigned.unpersist()
    return features, schema


def _check_nonempty(manifest: Manifest) -> None:
    for split, info in manifest.splits.items():
        if info.rows == 0:
            raise DataError(f"{manifest.dataset}: split {split!r} would be empty")
