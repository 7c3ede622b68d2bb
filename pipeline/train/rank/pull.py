"""Where a rank's next trial comes from: the driver's board, or the job's own list.

Rank 0 asks; every rank then receives rank 0's answer in one broadcast, so all train the same
trial, wait together while the driver decides the next round, and end together.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipeline.train.contract import Assignment, RankJob, Trial, TrialOutcome
from pipeline.train.rank import distributed

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from pipeline.train.contract import BoardAddress


class JobList:
    """The job's trials in order, then the end (a job launched without a board)."""

    def __init__(self, trials: list[Trial]) -> None:
        self._trials, self._k = trials, 0

    def next(self) -> Assignment | bool:
        if self._k >= len(self._trials):
            return False
        self._k += 1
        following = self._trials[self._k] if self._k < len(self._trials) else None
        return Assignment(self._trials[self._k - 1], following, self._k, len(self._trials))

    def report(self, outcome: TrialOutcome) -> None:
        pass

    def close(self) -> None:
        pass


class BoardLink:
    """Rank 0's two connections to the driver's board: one asks for trials (the training
    thread), one reports them settled (the records thread, while the next one trains)."""

    def __init__(self, address: BoardAddress) -> None:
        self._ask = _connect(address)
        self._tell = _connect(address)
        self._lock = threading.Lock()  # reports come from the records thread and this one

    def next(self) -> Assignment | bool | None:
        self._ask.send(("next", None))
        return self._ask.recv()

    def report(self, outcome: TrialOutcome) -> None:
        with self._lock:
            self._tell.send(("done", outcome))
            self._tell.recv()

    def close(self) -> None:
        self._ask.close()
        self._tell.close()


def _connect(address: BoardAddress) -> Connection:
    from multiprocessing.connection import Client

    conn = Client((address.host, address.port), authkey=address.authkey)
    conn.send(address.group)  # the board's first message: which group this is
    return conn


def source_for(job: RankJob, root: bool) -> JobList | BoardLink | None:
    """Rank 0's source of trials; None on the other ranks (they follow its broadcast)."""
    if not root:
        return None
    return BoardLink(job.board) if job.board is not None else JobList(job.trials)


def assignments(source: JobList | BoardLink | None) -> Iterator[Assignment]:
    """Every rank: each trial rank 0 was handed, until the sweep is over. [hvd] one broadcast
    per answer, on every rank; "nothing yet" is an answer too, so no rank waits in a
    collective for longer than the board's wait."""
    asked = 0
    while True:
        asked += 1
        got = source.next() if source is not None else None
        got = distributed.broadcast_object(got, name=f"next.{asked}")
        if got is False:
            return
        if got is not None:
            yield got
