"""The spool file: one run's records as JSON lines, appended under an exclusive ``flock``.

The format ``pipeline.tracking.spool`` writes and replays: a record per line, a replay's
progress as ``{"op": "delivered", "count": n}`` lines in the same file (never rewritten, so the
lock always covers the one file every process sees), and a torn last line (a write cut short)
moved to ``<file>.torn``.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO

DELIVERED = "delivered"  # a replay's progress mark: the first ``count`` records arrived


def open_locked(path: Path, blocking: bool) -> IO[str] | None:
    """``path`` opened for appending under an exclusive lock; None if busy (non-blocking).

    A replay may delete the file between our open and our lock: then lock the new one.
    """
    while True:
        # Readable by this user only: its records may hold parameters and error messages.
        handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return None
        if path.exists() and os.path.samefile(path, handle.fileno()):
            return handle
        handle.close()


def append(handle: IO[str], record: dict) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def torn_path(path: Path) -> Path:
    """Where a spool file's torn tails are kept (not ``*.jsonl``: never replayed)."""
    return path.with_name(f"{path.name}.torn")


def cut_torn_tail(path: Path, handle: IO[str]) -> str:
    """Under the lock held through ``handle``: move an unfinished last line (a write cut
    short by a kill or a full disk) to ``<file>.torn`` and cut it off. Returns a warning,
    or '' when the file ends on a complete line."""
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep == len(data):
        return ""
    quarantine = torn_path(path)
    with quarantine.open("ab") as f:
        f.write(data[keep:])
        f.flush()
        os.fsync(f.fileno())
    os.truncate(handle.fileno(), keep)
    return (f"{path}: torn last record ({len(data) - keep} bytes, a write cut short) moved to "
            f"{quarantine}; every complete record is kept")


def read_spool(path: Path) -> tuple[list[dict], int]:
    """(every record in order, how many of them a replay already delivered).

    An unfinished last line is left out (see ``cut_torn_tail``); a damaged line anywhere
    else raises ValueError naming it, since skipping it would reorder the run's records.
    """
    lines = path.read_bytes().split(b"\n")[:-1]  # after the last newline: torn, or nothing
    records: list[dict] = []
    delivered = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {number} is not a spool record ({exc})") from exc
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is not a spool record (not a mapping)")
        if record.get("op") == DELIVERED:
            delivered = max(delivered, int(record["count"]))
        else:
            records.append(record)
    return records, delivered


def spooled_steps(folder: str | Path, run_id: str, key: str) -> set[int]:
    """Steps of metric ``key`` that wait, not yet delivered, in ``run_id``'s spool file."""
    path = waiting(folder, run_id)
    if path is None:
        return set()
    try:
        records, delivered = read_spool(path)
    except (OSError, ValueError):
        return set()
    return {m[3] for r in records[delivered:] if r.get("op") == "batch"
            for m in r["metrics"] if m[0] == key}


def waiting(folder: str | Path, run_id: str) -> Path | None:
    """``run_id``'s spool file, if records of that run still wait in ``folder``."""
    path = Path(folder) / f"{run_id}.jsonl"
    return path if path.is_file() else None
