"""Writing outputs so that a full or unwritable disk never leaves one that looks complete.

Datasets and reports are written into a staging folder beside their target and renamed into
place only when complete (a rename within one file system is atomic). A write that fails
because the disk is full or not writable becomes one line naming the folder and the cause.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import DataError, PipelineError

REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EROFS: "read-only file system",
}
# Spark (Java) and TensorFlow report the same conditions as text in their own exceptions.
MESSAGES = {os.strerror(code): reason for code, reason in REASONS.items()}


def disk_problem(exc: BaseException) -> str | None:
    """The storage condition behind ``exc`` (disk full, no permission...), or None."""
    if isinstance(exc, OSError) and exc.errno in REASONS:
        return REASONS[exc.errno]
    text = str(exc)
    return next((reason for message, reason in MESSAGES.items() if message in text), None)


@contextmanager
def disk_errors(where: Path, what: str) -> Iterator[None]:
    """Turn a storage failure inside the block into one PipelineError line naming ``where``."""
    try:
        yield
    except PipelineError:
        raise
    except Exception as exc:
        reason = disk_problem(exc)
        if reason is None:
            raise
        raise PipelineError(f"{where}: {reason} while writing the {what}") from exc


def staging_dir(output: Path, name: str, label: str = "output folder") -> Path:
    """A fresh hidden folder ``output/.name.tmp-*`` (same file system as the target)."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        staging = output / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except OSError as exc:
        raise DataError(f"{output}: {label} not writable ({exc.strerror})") from exc
    return staging


def swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` with ``staging``; the old copy is removed only after the swap."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
