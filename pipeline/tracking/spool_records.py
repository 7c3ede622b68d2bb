"""Spool files are read back as untrusted input: a replay delivers a file only when this user
wrote it (owned by us, writable by nobody else) and every record in it has the shape the
writer gives it, with every file it names inside the run's own spool folder.

Without these checks, anyone able to write into the spool folder could make the replaying
driver upload any file it can read (an absolute artifact path), or forge the tags that mark a
configuration finished.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from pipeline.tracking.spool_file import DELIVERED

# MLflow's terminal statuses: what ``set_terminated`` may carry.
STATUSES = ("FINISHED", "FAILED", "KILLED")


class SpoolRecordError(ValueError):
    """A spool record (or file) the replay refuses; the message names the line and the field."""


def private_folder(path: Path) -> Path:
    """``path`` created (with its parents) readable and writable by this user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def untrusted(path: Path) -> str:
    """Why ``path`` (a spool file) must not be replayed, or "" when this user alone wrote it."""
    for item in (path, path.parent):
        info = item.stat()
        if info.st_uid != os.getuid():
            return f"{item} belongs to user id {info.st_uid}, not to this user: not replayed"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{item} is writable by other users: not replayed"
    return ""


def inside(files: Path, name: object, field: str = "path", line: int | None = None) -> Path:
    """``files / name`` when ``name`` is a relative path that stays inside ``files``."""
    where = f"record {line}: " if line is not None else ""
    if not isinstance(name, str) or not name:
        raise SpoolRecordError(f"{where}{field} must be a file name")
    rel = PurePosixPath(name)
    target = (files / rel).resolve()
    # Absolute, climbing out with '..', or through a symbolic link pointing out.
    if rel.is_absolute() or ".." in rel.parts or not target.is_relative_to(files.resolve()):
        raise SpoolRecordError(f"{where}{field} {name!r} leaves the run's spool folder")
    return target


def check_all(records: list[dict], files: Path) -> None:
    """Every record checked before any is delivered: a forged file delivers nothing."""
    for number, record in enumerate(records, 1):
        check(record, number, files)


def check(record: object, line: int, files: Path) -> dict:
    """``record`` when it has the shape its writer (``RunLog``) gives it; SpoolRecordError
    naming the record (``line``: its place among the file's records) and the field otherwise."""
    if not isinstance(record, dict) or not isinstance(record.get("op"), str):
        raise SpoolRecordError(f"record {line}: not a spool record (no op)")
    op = record["op"]
    checker = _CHECKS.get(op)
    if checker is None:
        raise SpoolRecordError(f"record {line}: unknown spool record {op!r}")
    checker(record, line, files)
    return record


def _batch(record: dict, line: int, files: Path) -> None:
    for field, arity in (("metrics", 4), ("params", 2), ("tags", 2)):
        rows = record.get(field)
        if not isinstance(rows, list) or any(
                not isinstance(r, list) or len(r) != arity or not isinstance(r[0], str)
                for r in rows):
            raise SpoolRecordError(f"record {line}: {field} must be a list of {arity}-item rows")
    for key, value, timestamp, step in record["metrics"]:
        if not _number(value) or not _whole(timestamp) or not _whole(step):
            raise SpoolRecordError(f"record {line}: metric {key!r} is not (value, time, step)")
    for key, value in record["params"] + record["tags"]:
        if not isinstance(value, str):
            raise SpoolRecordError(f"record {line}: {key!r} must have a text value")


def _dict(record: dict, line: int, files: Path) -> None:
    if not isinstance(record.get("data"), dict):
        raise SpoolRecordError(f"record {line}: data must be a mapping")
    inside(files, record.get("file"), "file", line)  # where MLflow stores it, in the run


def _artifact(record: dict, line: int, files: Path) -> None:
    inside(files, record.get("path"), "path", line)


def _model(record: dict, line: int, files: Path) -> None:
    # Records spooled before tasks existed give image_shape and num_classes for the problem.
    problem = isinstance(record.get("problem"), dict) or (
        isinstance(record.get("image_shape"), list) and _whole(record.get("num_classes")))
    if not isinstance(record.get("config"), dict) or not problem:
        raise SpoolRecordError(f"record {line}: a model record needs its config and problem")
    requirements = record.get("requirements")
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        raise SpoolRecordError(f"record {line}: requirements must be a list of strings")


def _terminated(record: dict, line: int, files: Path) -> None:
    if record.get("status") not in STATUSES:
        raise SpoolRecordError(f"record {line}: status must be one of {', '.join(STATUSES)}")


def _delivered(record: dict, line: int, files: Path) -> None:
    if not _whole(record.get("count")) or record["count"] < 0:
        raise SpoolRecordError(f"record {line}: count must be a whole number")


def _number(value: object) -> bool:  # NaN and infinities included: a diverged run logs them
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_CHECKS = {"batch": _batch, "dict": _dict, "artifact": _artifact, "model": _model,
           "terminated": _terminated, DELIVERED: _delivered}
