"""The manifest.json beside a prepared dataset: the contract between prepare and train."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.data import integrity
from pipeline.data.layout import Layout, layout_for
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
        return cls(**{**data, "splits": splits, "features": features, "target": target})

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
        for shard in info.shards:
            if not (Path(folder) / split / shard.file).is_file():
                raise DataError(f"{path}: shard {split}/{shard.file} listed but missing")
    if verify:
        integrity.verify(Path(folder), manifest)
    return manifest
