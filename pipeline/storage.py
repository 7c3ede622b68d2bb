"""Writing outputs so that a full disk, a kill or a careless path never loses one.

Datasets and reports are written into a staging folder beside their target and renamed into
place only when complete (a rename within one file system is atomic). A write that fails
because the disk is full or not writable becomes one line naming the folder and the cause.

Replacing a target takes two renames (target aside to ``.name.old-*``, staging into place).
Both happen under an exclusive ``flock`` on the parent folder, and so does recovery: a kill
between them leaves the data in the ``.old-*`` folder, which the next writer of that target
(``staging_dir``, or ``recover`` before reading it) renames back. Each staging folder is
locked by the process writing it, for as long as it lives, so a staging folder nobody holds
was left by a killed process and is removed. (Locks are per host: two hosts writing the same
folder on shared storage at once are not guarded.)

A report replaces its whole folder: ``report_dir`` allows only a new or empty folder or an
earlier report (it carries ``REPORT_MARKER``), never a folder holding anything else.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
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
    """A fresh hidden folder ``output/.name.tmp-*`` (same file system as the target), locked
    by this process until it is swapped into place or the process ends.

    First puts back ``output/name`` if a swap was killed halfway, and removes staging folders
    and old copies that killed processes left in ``output``.
    """
    try:
        output.mkdir(parents=True, exist_ok=True)
        recover(output / name)
        staging = output / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
    except OSError as exc:
        raise DataError(f"{output}: {label} not writable ({exc.strerror})") from exc
    _hold(staging)
    return staging


def swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` with ``staging``; the old copy is removed only after the swap."""
    with _folder_lock(target.parent):
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
        os.replace(staging, target)  # a kill before this line: recover() puts ``old`` back
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    _release(staging)


def recover(target: Path) -> str | None:
    """Undo what a killed writer left beside ``target``; a line saying what was put back.

    Target missing but an old copy there: the swap was killed between its renames, and the
    old copy is the data; rename it back. Target present: old copies are leftovers of swaps
    killed before their clean-up. Staging folders no live process holds are removed.
    """
    parent = target.parent
    if not parent.is_dir():
        return None
    restored = None
    with _folder_lock(parent):
        olds = sorted((p for p in parent.glob(f".{target.name}.old-*") if p.is_dir()),
                      key=lambda p: p.stat().st_ctime)  # a rename sets ctime: newest last
        if olds and not target.exists():
            os.replace(olds.pop(), target)
            restored = f"{target}: restored from the copy an interrupted swap left aside"
        for old in olds:
            shutil.rmtree(old, ignore_errors=True)
        _remove_abandoned_staging(parent)
    return restored


STAGING = re.compile(r"^\..+\.tmp-[0-9a-f]{8}$")
_held: dict[Path, int] = {}  # staging folder -> the open descriptor holding its lock


def _hold(staging: Path) -> None:
    fd = os.open(staging, os.O_RDONLY)  # not inherited by child processes (PEP 446)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held[staging] = fd


def _release(staging: Path) -> None:
    fd = _held.pop(staging, None)
    if fd is not None:
        os.close(fd)


def _remove_abandoned_staging(parent: Path) -> None:
    for path in parent.iterdir():
        if not (STAGING.match(path.name) and path.is_dir() and not path.is_symlink()):
            continue
        if path in _held:
            continue  # ours, still being written
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live process is writing it
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` itself (no lock file to leave behind)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# Report folders

REPORT_MARKER = ".pipeline-report"
# What a report held before reports carried the marker (and between its swap and its marker).
REPORT_FILES = frozenset({"leaderboard.csv", "leaderboard.md", "heatmap.png", "curves.png",
                          "index.html", REPORT_MARKER})


def report_dir(output: str | None, experiment: str, root: Path = Path("reports")) -> Path:
    """The folder compare may replace with a new report; PipelineError, one line, if none.

    Default ``<root>/<experiment>``: the experiment name must be one plain folder name.
    ``--output`` must not exist, be empty, or be an earlier report (``REPORT_MARKER`` inside,
    or nothing but report files): ``--output /data/reports`` would otherwise replace every
    other report under it.
    """
    if output is None:
        return _checked_report_dir(root / _folder_name(experiment), "report folder")
    return _checked_report_dir(Path(output), f"--output {output}")


def mark_report(folder: Path) -> None:
    """Mark ``folder`` as a report, so the next compare may replace it."""
    (folder / REPORT_MARKER).write_text("written by jobs/compare.py; replaced by the next "
                                        "report of this experiment\n")


def _folder_name(experiment: str) -> str:
    if (not experiment or experiment.startswith(".") or "/" in experiment
            or "\\" in experiment or "\0" in experiment):
        raise PipelineError(f"--experiment {experiment!r} cannot name a folder under reports/ "
                            "(it must be one folder name, not starting with '.'); pass --output")
    return experiment


def _checked_report_dir(target: Path, what: str) -> Path:
    if target.is_symlink():
        raise PipelineError(f"{what}: is a symbolic link; give the report a folder of its own")
    if not target.exists():
        return target
    if not target.is_dir():
        raise PipelineError(f"{what}: exists and is not a folder")
    entries = {p.name for p in target.iterdir()}
    if not entries or REPORT_MARKER in entries or entries <= REPORT_FILES:
        return target
    example = sorted(entries - REPORT_FILES)[0]
    raise PipelineError(f"{what}: exists and is not a report folder (it holds {example!r}, "
                        f"and no {REPORT_MARKER}); a report replaces its whole folder, so give "
                        "a new or empty one")


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` as the whole of ``path``, or ``path`` untouched: written beside it, then
    renamed over it, so a full disk or a kill never leaves half a file under its name."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
