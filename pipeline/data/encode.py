"""From split rows to the stored columns: derived labels, standardization, packed values.

Runs after the split is assigned, so the standardization statistics (mean and sd, computed
by Spark) come from the train split only: validation and test rows are scaled with them,
as new data would be. Derived labels (a binary or multi-label target from a source's
classes) are Spark expressions; tabular rows are packed into float32 columns in the
executors by ``Packing.frame``, a plain pandas function the unit tests call directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.config import DataConfig
from pipeline.data.layout import FEATURES, IMAGE, LABEL, LABEL_TASKS, TARGET
from pipeline.data.manifest import Scaling, TargetSchema
from pipeline.data.vectors import VectorSource, feature_column, target_column
from pipeline.errors import DataError


def count_classes(df: DataFrame, configured: int | None) -> int:
    """Number of classes, checked against the labels (one small Spark aggregation)."""
    counts = {(r["source_split"], r["label"]): r["count"]
              for r in df.groupBy("source_split", "label").count().collect()}
    labels = {label for _, label in counts}
    top = max(labels)
    if configured is not None and top >= configured:
        raise DataError(f"labels outside [0, {configured}): found label {top}, outside the "
                        f"declared set 0..{configured - 1}")
    num_classes = configured or top + 1
    train = {label for split, label in counts if split == "train"}
    missing = sorted(set(range(num_classes)) - train)
    if missing:
        raise DataError(f"train split has no examples of class(es) {missing}")
    return num_classes


def check_labels(df: DataFrame, cfg: DataConfig) -> int:
    """The source's class count, its labels checked against the declared set; 0 when the
    targets are columns (multi-label or regression tables, checked by their reader)."""
    if cfg.source.targets:
        return 0
    declared = 2 if cfg.task == "binary" and not cfg.derive else cfg.source.num_classes
    classes = count_classes(df, declared)
    for name, wanted in (cfg.derive or {}).items():
        if max(wanted) >= classes:
            raise DataError(f"derive.{name}: class {max(wanted)} is not a class of the source "
                            f"(0..{classes - 1})")
    return classes


def vector_scaling(df: DataFrame, cfg: DataConfig, data: VectorSource
                   ) -> tuple[Scaling, Scaling]:
    """Train-split scaling of the features and (regression) of the targets."""
    features = train_scaling(df, [feature_column(i) for i in range(len(data.features))],
                             data.features)
    if cfg.task == "regression":
        columns = [target_column(i) for i in range(len(data.targets))]
        return features, train_scaling(df, columns, data.targets)
    return features, Scaling(data.targets, [], [])


def target_schema(cfg: DataConfig, classes: int, names: list[str],
                  scaling: Scaling | None) -> TargetSchema:
    """Names of the output units' targets; ``names``: the label or target columns."""
    if cfg.task == "binary" and cfg.derive:
        [name] = cfg.derive
        return TargetSchema([f"not {name}", name], None, cfg.derive)
    if cfg.task in LABEL_TASKS:
        count = 2 if cfg.task == "binary" else classes
        return TargetSchema(list(cfg.source.label_names or map(str, range(count))))
    return TargetSchema(names, scaling, cfg.derive)


def train_scaling(df: DataFrame, columns: list[str], names: list[str]) -> Scaling:
    """Mean and population sd of ``columns`` over the train split, in one aggregation.

    A constant column gets sd 1, so it is only centred (a zero divisor would make NaN).
    """
    if not columns:
        return Scaling([], [], [])
    train = df.filter(F.col("split") == "train")
    aggs = [F.mean(c).alias(f"m{i}") for i, c in enumerate(columns)]
    aggs += [F.stddev_pop(c).alias(f"s{i}") for i, c in enumerate(columns)]
    row = train.agg(*aggs).first()
    mean = [float(row[f"m{i}"]) for i in range(len(columns))]
    std = [float(row[f"s{i}"]) for i in range(len(columns))]
    return Scaling(list(names), mean, [s if s > 0 else 1.0 for s in std])


def derive_images(df: DataFrame, task: str, derive: dict[str, list[int]] | None) -> DataFrame:
    """``split``, the target columns and ``image`` for an image source.

    Binary: label 1 when the source class is one of the derived label's classes. Multi-label:
    a float32 0/1 vector per row, looked up from the source class.
    """
    if not derive:
        return df.select("split", LABEL, IMAGE)
    if task == "binary":
        [classes] = derive.values()
        label = F.col(LABEL).isin(*classes).cast("int").alias(LABEL)
        return df.select("split", label, IMAGE)
    vectors = multi_hot(derive, max(c for cs in derive.values() for c in cs) + 1)
    lookup = F.create_map(*[x for k, v in enumerate(vectors)
                            for x in (F.lit(k), F.lit(bytearray(v.tobytes())))])
    empty = F.lit(bytearray(np.zeros(len(derive), np.float32).tobytes()))
    target = F.coalesce(lookup[F.col(LABEL)], empty).alias(TARGET)
    return df.select("split", target, IMAGE)


def multi_hot(derive: dict[str, list[int]], num_classes: int) -> np.ndarray:
    """float32 [class, label]: 1 where the class carries the label."""
    table = np.zeros((num_classes, len(derive)), np.float32)
    for j, classes in enumerate(derive.values()):
        table[[c for c in classes if c < num_classes], j] = 1.0
    return table


@dataclass(frozen=True)
class Packing:
    """How a tabular row becomes stored columns: standardized float32 features, and the
    label (multiclass, binary), 0/1 labels (multilabel) or standardized targets."""

    task: str
    features: Scaling
    targets: Scaling  # regression: standardized; multilabel: names only, values as they are

    def schema(self) -> T.StructType:
        target = (T.StructField(LABEL, T.IntegerType(), False) if self.task in LABEL_TASKS
                  else T.StructField(TARGET, T.BinaryType(), False))
        return T.StructType([T.StructField("split", T.StringType(), False), target,
                             T.StructField(FEATURES, T.BinaryType(), False)])

    def frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """Rows of ``split, label, x0.., t0..`` -> ``split, label|target, features``."""
        x = _scaled(pdf, [feature_column(i) for i in range(len(self.features.names))],
                    self.features)
        out = {"split": pdf["split"].to_numpy()}
        if self.task in LABEL_TASKS:
            out[LABEL] = pdf[LABEL].to_numpy(np.int32)
        else:
            columns = [target_column(i) for i in range(len(self.targets.names))]
            y = (_scaled(pdf, columns, self.targets) if self.task == "regression"
                 else pdf[columns].to_numpy(np.float32))
            out[TARGET] = [row.tobytes() for row in y]
        out[FEATURES] = [row.tobytes() for row in x]
        return pd.DataFrame(out)

    def apply(self, df: DataFrame) -> DataFrame:
        def pack(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for pdf in batches:
                yield self.frame(pdf)
        return df.drop("id", "source_split").mapInPandas(pack, self.schema())


def _scaled(pdf: pd.DataFrame, columns: list[str], scaling: Scaling) -> np.ndarray:
    values = pdf[columns].to_numpy(np.float64)
    return ((values - np.asarray(scaling.mean)) / np.asarray(scaling.std)).astype(np.float32)
