"""The CPU time of a pytest process and of everything it starts, for the suite's timeline.

A test's CPU is mostly spent outside the pytest process: in the Horovod ranks, the JVMs and
the jobs it starts, some of which outlive it (servers, daemons). A cgroup counts all of them:
each pytest process (an xdist worker, or the only one) moves itself into a cpuacct group of
its own, which every process it starts inherits. The group is made inside the one the process
is in, so that a pytest run inside a test (pytester) still counts towards that test. That
needs cgroup v1's cpuacct hierarchy and the right to write to it (root); elsewhere the
timeline has no CPU column.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

HIERARCHY = Path("/sys/fs/cgroup/cpuacct")
_names = itertools.count()


class CpuGroup:
    """This process's own cpuacct group while joined; ``lap()`` is the group's CPU since the
    last lap."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._came_from: Path | None = None
        self._lapped = 0.0  # the group's CPU at the last lap

    def join(self) -> bool:
        came_from = _current_group()
        if came_from is None:
            return False
        _remove_empty(came_from)
        path = came_from / f"actloss-tests-{os.getpid()}-{next(_names)}"
        try:
            path.mkdir()
            (path / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            return False
        self.path, self._came_from = path, came_from
        self._lapped = self.seconds() or 0.0
        return True

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def lap(self) -> float | None:
        now = self.seconds()
        if now is None:
            return None
        took, self._lapped = now - self._lapped, now
        return took

    def leave(self) -> None:
        """Back to the group it came from; this one is removed unless a process it started
        is still alive (which the suite's own checks report)."""
        if self.path is None or self._came_from is None:
            return
        try:
            (self._came_from / "cgroup.procs").write_text(str(os.getpid()))
            self.path.rmdir()
        except OSError:
            pass
        self.path = None


def _remove_empty(parent: Path) -> None:
    """Groups earlier runs left: a worker's last processes can still be exiting when it
    leaves, and the kernel removes only a group with none in it."""
    for stale in parent.glob("actloss-tests-*"):
        try:
            stale.rmdir()
        except OSError:  # still in use: another run's, or a process still running
            continue


def available() -> bool:
    return _current_group() is not None


def _current_group() -> Path | None:
    """The cpuacct group this process is in, when the hierarchy is there to write to."""
    if not os.access(HIERARCHY, os.W_OK):
        return None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            return HIERARCHY / path.lstrip("/")
    return None
