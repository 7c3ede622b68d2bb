"""The manifest.json beside a prepared dataset: the contract between prepare and train."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.data import integrity
from pipeline.errors import DataError

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
class Manifest:
    dataset: str
    fingerprint: str
    source_format: str
    source_sha256: str
    image_shape: list[int]
    num_classes: int
    pixel_dtype: str
    splits: dict[str, SplitInfo] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        splits = {
            name: SplitInfo(info["rows"], [Shard(**s) for s in info["shards"]],
                            list(info["class_histogram"]))
            for name, info in data["splits"].items()
        }
        return cls(**{**data, "splits": splits})

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
        return (f"{where} {state}: {counts} rows; image {self.image_shape}, "
                f"{self.num_classes} classes, fingerprint {self.fingerprint}")


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
