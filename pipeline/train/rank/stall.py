"""A deadline on every collective, so that a rank that never joins one ends the launch.

Horovod is meant to shut a launch down when a collective waits on some rank for longer than
``HOROVOD_STALL_SHUTDOWN_TIME_SECONDS``, but on Gloo launches from Spark it only waits
(tests/integration/test_stalled_collective.py shows both). This module enforces that same
setting itself: one watchdog thread per rank, armed while the rank is inside a collective (a
broadcast, an allreduce, or training, whose every step allreduces its gradients: there the
deadline runs from the last step done). Past the
deadline the rank says which collective stalled and exits; the launch fails, and the driver
relaunches what is left, as after any crash.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

DEFAULT_SECONDS = 600.0  # the driver sets HOROVOD_STALL_SHUTDOWN_TIME_SECONDS (launch.py)
STALL_EXIT = 75  # the rank's exit status after a stall


def deadline_seconds() -> float:
    try:
        value = float(os.environ.get("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", DEFAULT_SECONDS))
    except ValueError:
        return DEFAULT_SECONDS
    return value if value > 0 else DEFAULT_SECONDS


class Watchdog:
    """Armed with what the rank is waiting in and since when; a daemon thread checks. Armed
    with a ``progress`` count (training steps done), it waits for the count to stop moving
    rather than for the whole phase to end."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._armed: tuple[str, float, Callable[[], int] | None] | None = None
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self._thread.start()

    def arm(self, what: str, progress: Callable[[], int] | None = None) -> None:
        self._armed = (what, time.monotonic(), progress)

    def disarm(self) -> None:
        self._armed = None

    def _watch(self) -> None:
        tick = min(1.0, self.seconds / 4)
        seen, count, since = None, None, 0.0  # the arming watched, its last count, since when
        while True:
            time.sleep(tick)
            armed = self._armed
            if armed is None:
                continue
            what, armed_at, progress = armed
            if armed is not seen:
                seen, count, since = armed, progress() if progress else None, armed_at
            elif progress is not None and (now := progress()) != count:
                count, since = now, time.monotonic()
            if time.monotonic() - since > self.seconds and self._armed is armed:
                _give_up(what, self.seconds)


def _give_up(what: str, seconds: float) -> None:
    rank = os.environ.get("HOROVOD_RANK", "?")
    print(f"rank {rank}: collective {what}: not every rank joined within {seconds:g}s (a rank "
          "stalled); ending this launch so that the driver relaunches what is left",
          file=sys.stderr, flush=True)
    os._exit(STALL_EXIT)


_watchdog: Watchdog | None = None
_lock = threading.Lock()


def watchdog() -> Watchdog:
    """This rank's watchdog, started on first use."""
    global _watchdog
    with _lock:
        if _watchdog is None:
            _watchdog = Watchdog(deadline_seconds())
        return _watchdog


@contextmanager
def within_deadline(what: str) -> Iterator[None]:
    dog = watchdog()
    dog.arm(what)
    try:
        yield
    finally:
        dog.disarm()
