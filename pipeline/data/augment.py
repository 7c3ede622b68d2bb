"""Larger data: N randomly distorted copies of a prepared training split, made on Spark.

Each executor transforms its partition batch by batch (random affine: rotation, shift,
scale; optionally an elastic distortion), so memory stays bounded whatever N is and the
driver never holds the data. Every copy's randomness is seeded from (seed, row, copy), so
the same input and settings give the same bytes however Spark partitions the work.
Validation and test splits are carried over unchanged: they measure the same thing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.config.schema import AugmentConfig
from pipeline.data.layout import LABEL_TASKS
from pipeline.data.manifest import Manifest, load_manifest, write_manifest
from pipeline.data.prepare import (
    describe_split,
    existing_manifest,
    staging_dir,
    swap_into_place,
)
from pipeline.errors import DataError
from pipeline.storage import disk_errors

OUT_SCHEMA = T.StructType([T.StructField("label", T.IntegerType(), False),
                           T.StructField("image", T.BinaryType(), False)])


def fingerprint(cfg: AugmentConfig, parent: Manifest) -> str:
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("input", "output", "name",
                                                                    "rows_per_batch")}
    payload = json.dumps({"parent": parent.fingerprint, "augment": settings, "name": cfg.name},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def distort(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """One random affine (and optionally elastic) distortion of an [H, W, C] uint8 image."""
    from scipy import ndimage

    h, w = image.shape[:2]
    angle = np.deg2rad(rng.uniform(-cfg.rotation_degrees, cfg.rotation_degrees))
    zoom = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
    shift = rng.uniform(-cfg.shift_pixels, cfg.shift_pixels, size=2)
    # Output pixel o samples input at M @ (o - c) + c - shift: rotation and zoom about the centre.
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    matrix = np.array([[cos, -sin], [sin, cos]])
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre - matrix @ centre - shift
    out = np.empty_like(image)
    for ch in range(image.shape[2]):
        plane = ndimage.affine_transform(image[..., ch].astype(np.float32), matrix, offset,
                                         order=1, mode="constant", cval=0.0)
        if cfg.elastic:
            plane = _elastic(plane, rng, cfg)
        out[..., ch] = np.clip(np.rint(plane), 0, 255).astype(np.uint8)
    return out


def _elastic(plane: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    from scipy import ndimage

    dy, dx = (ndimage.gaussian_filter(rng.uniform(-1, 1, plane.shape), cfg.elastic_sigma)
              * cfg.elastic_alpha for _ in range(2))
    rows, cols = np.meshgrid(np.arange(plane.shape[0]), np.arange(plane.shape[1]),
                             indexing="ij")
    return ndimage.map_coordinates(plane, [rows + dy, cols + dx], order=1, mode="constant")


def _augmenter(cfg: AugmentConfig, shape: tuple[int, ...]) -> Callable[
        [Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def augment(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            labels, images, ids = [], [], pdf["row_id"].to_numpy()
            for row_id, label, blob in zip(ids, pdf["label"], pdf["image"], strict=True):
                image = np.frombuffer(blob, np.uint8).reshape(shape)
                if cfg.keep_original:
                    labels.append(label)
                    images.append(bytes(blob))
                for copy in range(cfg.copies):
                    key = int(row_id) & 0xFFFFFFFFFFFFFFFF  # xxhash64 is signed
                    rng = np.random.default_rng([cfg.seed, key, copy])
                    labels.append(label)
                    images.append(distort(image, rng, cfg).tobytes())
            yield pd.DataFrame({"label": np.asarray(labels, np.int32), "image": images})
    return augment


def augment(spark: SparkSession, cfg: AugmentConfig, force: bool = False) -> tuple[Manifest, bool]:
    """Write ``<output>/<name>``: augmented train, the parent's val and test, a manifest."""
    source = Path(cfg.input)
    parent = load_manifest(source)
    if parent.input_kind != "image" or parent.task not in LABEL_TASKS:
        # The distortions are geometric, and the copies carry one integer label each.
        raise DataError(f"{source}: augmentation needs images with one label per example; "
                        f"this dataset is {parent.task} on {parent.input_kind} inputs")
    fp = fingerprint(cfg, parent)
    target = Path(cfg.output) / cfg.name
    if not force and (found := existing_manifest(target, fp)):
        return found, False
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.rows_per_batch))
    staging = staging_dir(Path(cfg.output), cfg.name)
    try:
        with disk_errors(Path(cfg.output), "dataset"):
            train = spark.read.parquet(*[str(source / "train" / s.file)
                                         for s in parent.splits["train"].shards])
            # Ids from the content, not from Spark's partitioning: the same row always gets
            # the same random streams, however the work is split.
            train = train.withColumn("row_id", F.xxhash64("image", "label"))
            (train.mapInPandas(_augmenter(cfg, tuple(parent.image_shape)), OUT_SCHEMA)
             .repartition(cfg.shards).write.parquet(str(staging / "train")))
            for split in ("val", "test"):
                shutil.copytree(source / split, staging / split)
            splits = {s: describe_split(staging / s, parent.num_classes, parent.task)
                      for s in ("train", "val", "test")}
            manifest = replace(parent, dataset=cfg.name, fingerprint=fp, splits=splits,
                               source_format=f"augment:{parent.dataset}")
            write_manifest(staging, manifest)
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest, True
