"""The manifest.json beside a prepared dataset: the contract between prepare and train."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline.data import integrity
from pipeline.data.layout import Layout, layout_for
from pipeline.data.limits import MAX_CLASSES, MAX_IMAGE_PIXELS
from pipeline.errors import DataError
from pipeline.tasks import Problem

MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Shard:
    file: str  # relative to the split's folder
    rows: int
    # Recorded at prepare time and checked before a sweep (pipeline.data.integrity);
    # None in manifests written before they were recorded.
    bytes: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class SplitInfo:
    rows: int
    shards: list[Shard]
    class_histogram: list[int]


@dataclass(frozen=True)
class Scaling:
    """Named numeric columns and the standardization prepare applied to them:
    stored = (original - mean) / std, std being 1 for a constant column."""

    names: list[str]
    mean: list[float]
    std: list[float]


@dataclass(frozen=True)
class TargetSchema:
    """What the targets are. ``names``: the classes (multiclass, binary), the labels
    (multilabel) or the target columns (regression), in output-unit order. ``scaling``:
    regression only. ``derived_from``: label name -> the source classes that carry it."""

    names: list[str]
    scaling: Scaling | None = None
    derived_from: dict[str, list[int]] | None = None


@dataclass(frozen=True)
class Manifest:
    dataset: str
    fingerprint: str
    source_format: str
    source_sha256: str
    # The input shape: [H, W, C] for images, [features] for tabular vectors.
    image_shape: list[int]
    # Classes for multiclass and binary (2), labels for multilabel, 0 for regression.
    num_classes: int
    pixel_dtype: str  # of the input column: uint8 images, float32 features
    splits: dict[str, SplitInfo] = field(default_factory=dict)
    # Manifests written before tasks existed lack these: multi-class images.
    task: str = "multiclass"
    input_kind: str = "image"  # "image" | "vector"
    features: Scaling | None = None
    target: TargetSchema | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        """The manifest in ``data``; ValueError naming the first value out of type or range
        (the file is input: it decides what every rank allocates and which files it reads)."""
        splits = {
            name: SplitInfo(info["rows"], [Shard(**s) for s in info["shards"]],
                            list(info["class_histogram"]))
            for name, info in data["splits"].items()
        }
        features = Scaling(**data["features"]) if data.get("features") else None
        target = data.get("target")
        if target:
            scaling = Scaling(**target["scaling"]) if target.get("scaling") else None
            target = TargetSchema(target["names"], scaling, target.get("derived_from"))
        manifest = cls(**{**data, "splits": splits, "features": features, "target": target})
        _check(manifest)
        return manifest

    @property
    def target_names(self) -> list[str]:
        return self.target.names if self.target else [str(k) for k in range(self.num_classes)]

    @property
    def outputs(self) -> int:
        """Output units of the model's head."""
        return 1 if self.task == "binary" else len(self.target_names)

    @property
    def layout(self) -> Layout:
        return layout_for(self.task, self.input_kind, self.image_shape, len(self.target_names))

    def problem(self) -> Problem:
        f = self.features
        t = self.target.scaling if self.target else None
        return Problem(self.task, tuple(self.image_shape), self.outputs, self.input_kind,
                       tuple(f.mean) if f else None, tuple(f.std) if f else None,
                       tuple(t.mean) if t else None, tuple(t.std) if t else None)

    def shard_files(self, root: Path, split: str, rank: int, size: int) -> list[Path]:
        """The shards rank ``rank`` of ``size`` reads: every size-th shard from ``rank``."""
        shards = self.splits[split].shards
        if len(shards) < size:
            raise DataError(f"{root}: split {split!r} has {len(shards)} shards, fewer than "
                            f"{size} ranks; prepare it with shards >= ranks")
        return [root / split / s.file for s in shards[rank::size]]

    def rank_rows(self, split: str, rank: int, size: int) -> int:
        return sum(s.rows for s in self.splits[split].shards[rank::size])

    def summary(self, where: Path, written: bool) -> str:
        """One line for the jobs' output: where, whether written, rows, shape, fingerprint."""
        counts = ", ".join(f"{s} {i.rows}" for s, i in self.splits.items())
        state = "written" if written else "up to date (use --force to rewrite)"
        shape = "image" if self.input_kind == "image" else "features"
        targets = {"multiclass": f"{self.num_classes} classes", "binary": "binary",
                   "multilabel": f"{self.outputs} labels",
                   "regression": f"{self.outputs} regression target(s)"}[self.task]
        return (f"{where} {state}: {counts} rows; {shape} {self.image_shape}, {targets}, "
                f"fingerprint {self.fingerprint}")


def _is_int(value: object, low: int, high: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def _check(m: Manifest) -> None:
    for key in ("dataset", "fingerprint", "source_format", "source_sha256"):
        if not isinstance(getattr(m, key), str):
            raise ValueError(f"{key} must be a string")
    if m.pixel_dtype not in ("uint8", "float32"):  # images, or tabular features
        raise ValueError(f"pixel_dtype must be 'uint8' or 'float32', got {m.pixel_dtype!r}")
    # A regression target has no classes (0); every classification task at least one.
    if not _is_int(m.num_classes, 0 if m.task == "regression" else 1, MAX_CLASSES):
        raise ValueError(f"num_classes must be an integer in [1, {MAX_CLASSES}], got "
                         f"{m.num_classes!r}")
    shape = m.image_shape
    rank = 3 if m.input_kind == "image" else 1  # tabular features: [number of features]
    if not (isinstance(shape, list) and len(shape) == rank and all(_is_int(d, 1) for d in shape)
            and int(np.prod(shape)) <= MAX_IMAGE_PIXELS):
        raise ValueError(f"image_shape must be [height, width, channels] of positive integers "
                         f"with at most {MAX_IMAGE_PIXELS} pixels, got {shape!r}")
    if m.target is not None:
        _check_target_names(m.target.names, m.num_classes, m.task)
    for split, info in m.splits.items():
        _check_split(split, info, m.num_classes)


def _check_target_names(names: object, num_classes: int, task: str) -> None:
    """The names set the head's width (one unit per name): bounded like the class count, and
    for classification the class count itself."""
    if not (isinstance(names, list) and 1 <= len(names) <= MAX_CLASSES
            and all(isinstance(n, str) for n in names)):
        count = len(names) if isinstance(names, list) else type(names).__name__
        raise ValueError(f"target.names must hold between 1 and {MAX_CLASSES} names (strings), "
                         f"got {count}")
    if task != "regression" and len(names) != num_classes:
        raise ValueError(f"target.names: {len(names)} names for num_classes {num_classes}")


def _check_split(split: str, info: SplitInfo, num_classes: int) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    if not _is_int(info.rows, 0):
        raise ValueError(f"split {split!r}: rows must be an integer >= 0, got {info.rows!r}")
    hist = info.class_histogram
    if len(hist) != num_classes or not all(_is_int(n, 0) for n in hist):
        raise ValueError(f"split {split!r}: class_histogram must hold {num_classes} counts")
    for shard in info.shards:
        _check_shard(split, shard)


def _check_shard(split: str, shard: Shard) -> None:
    # A plain file name: the shard lies in the split's own folder, never elsewhere.
    name = shard.file
    if not (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and "\0" not in name):
        raise ValueError(f"split {split!r}: shard {name!r} must be a file name inside the "
                         f"split's folder (no path)")
    if not _is_int(shard.rows, 0):
        raise ValueError(f"shard {split}/{name}: rows must be an integer >= 0, got "
                         f"{shard.rows!r}")
    if shard.bytes is not None and not _is_int(shard.bytes, 0):
        raise ValueError(f"shard {split}/{name}: bytes must be an integer >= 0")
    if shard.sha256 is not None and not isinstance(shard.sha256, str):
        raise ValueError(f"shard {split}/{name}: sha256 must be a string")


def write_manifest(folder: Path, manifest: Manifest) -> None:
    tmp = folder / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(manifest.to_json())
    os.replace(tmp, folder / MANIFEST_NAME)


def load_manifest(folder: str | Path, verify: bool = False) -> Manifest:
    """The manifest, its shards checked to exist; ``verify``: also sizes, rows and sha256."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{path}: no manifest; run the prepare job for this dataset first")
    try:
        manifest = Manifest.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: malformed manifest ({exc})") from exc
    missing = [s for s in SPLITS if s not in manifest.splits]
    if missing:
        raise DataError(f"{path}: manifest lacks split(s) {', '.join(missing)}")
    for split, info in manifest.splits.items():
        if (Path(folder) / split).is_symlink():
            raise DataError(f"{path}: split folder {split} is a symbolic link; a dataset's "
                            "files must lie inside its folder")
        for shard in info.shards:
            where = Path(folder) / split / shard.file
            if where.is_symlink():
                raise DataError(f"{path}: shard {split}/{shard.file} is a symbolic link; a "
                                "dataset's files must lie inside its folder")
            if not where.is_file():
                raise DataError(f"{path}: shard {split}/{shard.file} listed but missing")
    if verify:
        integrity.verify(Path(folder), manifest)
    return manifest
