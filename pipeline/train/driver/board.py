"""The trial board: the driver hands trials to long-lived ranks, one at a time.

Each trial group is launched once for the whole sweep. Its rank 0 asks the board for the next
trial, trains it with its ranks and reports back once its records are in MLflow; between
rounds (successive halving's rungs, racing's rounds) the ranks wait on the board while the
driver decides, instead of ending and being launched again. Rank 0 reaches the board over a
socket (``multiprocessing.connection``) authenticated by a random key that travels in the
pickled job, so nothing else on the network can hand a rank work.

The board also keeps the sweep's progress lines: it sees every group's runs finish.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener

from pipeline.train.contract import Assignment, BoardAddress, Trial, TrialOutcome
from pipeline.train.progress import Tracker

logger = logging.getLogger(__name__)

# How long rank 0 waits on the board before it lets its ranks wait again: every rank waits in
# a broadcast meanwhile, well inside the stall deadline (driver.launch.STALL_SHUTDOWN_SECONDS).
WAIT_SECONDS = 10.0


@dataclass
class _Group:
    """What one group's rank 0 has been handed: trials started and not yet reported (the
    previous one may still be recording while the next trains), and the one reserved next
    (claimed ahead while the current one trains)."""

    busy: list[Trial] = field(default_factory=list)
    reserved: list[Trial] = field(default_factory=list)
    connections: int = 0
    current: tuple[str, float] | None = None  # (config hash, start) of the one training

    def held(self) -> list[Trial]:
        return [*self.busy, *self.reserved]


class Board:
    """Trials waiting, trials held by each group, and the current batch's open ones."""

    def __init__(self, groups: int, tracker: Tracker | None = None,
                 log: Callable[[str], None] = logger.info, host: str = "127.0.0.1") -> None:
        self._cond = threading.Condition()
        self._pending: deque[Trial] = deque()
        self._groups = {g: _Group() for g in range(groups)}
        self._live = set(range(groups))
        # Config hash -> seconds it held its group: from its start until the group asked for
        # the next (its records then go on beside the next trial, so they do not count).
        self._took: dict[str, float] = {}
        self._open: set[str] = set()  # config hashes of submitted trials not yet settled
        self._home: dict[str, int] = {}  # config hash -> the group that last took it
        self._abandoned: list[Trial] = []  # never trained: every group gave up
        self._handlers: dict[int, Callable[[TrialOutcome], None]] = {}
        self._closed = self._halted = False
        self._error: BaseException | None = None
        self._number = 0
        self._tracker, self._log = tracker, log
        self._key = secrets.token_bytes(32)
        self._listener: Listener | None = None
        self._host = host

    # --- the driver's side -------------------------------------------------------------

    def address(self, group: int) -> BoardAddress:
        """Where group ``group``'s rank 0 finds the board (listening from the first call)."""
        with self._cond:
            if self._listener is None:
                self._listener = Listener((self._host, 0), authkey=self._key)
                threading.Thread(target=self._accept, args=(self._listener,), name="board",
                                 daemon=True).start()
            host, port = self._listener.address
        return BoardAddress(host, port, self._key, group)

    def on_outcome(self, group: int, handler: Callable[[TrialOutcome], None]) -> None:
        """``handler`` gets each outcome group ``group``'s rank 0 reports."""
        self._handlers[group] = handler

    def submit(self, trials: list[Trial]) -> None:
        """Queue ``trials`` (a batch: ``wait`` returns once every one is settled)."""
        with self._cond:
            if self._tracker is not None:
                self._tracker.plan(trials)
            if not self._live:
                self._abandoned += trials
            else:
                self._pending.extend(trials)
                self._open |= {t.config_hash for t in trials}
            self._cond.notify_all()

    def wait(self) -> list[Trial]:
        """Block until every submitted trial is settled; the ones no group could train.
        A group's error is raised here, in the driver's thread."""
        with self._cond:
            while self._open and self._error is None:
                self._cond.wait(timeout=1.0)  # a timeout, so Ctrl-C is seen promptly
            if self._error is not None:
                raise self._error
            left, self._abandoned = self._abandoned, []
            return left

    def close(self) -> None:
        """No more trials: every rank ends once the pending ones are trained."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """A group's thread failed: the driver's ``wait`` raises ``error``."""
        with self._cond:
            self._error = self._error or error
            self._cond.notify_all()
        self.halt()

    def halt(self) -> None:
        """The sweep stops now (interrupted, or failed): no launch is started again."""
        with self._cond:
            self._closed = self._halted = True
            self._cond.notify_all()

    def halted(self) -> bool:
        with self._cond:
            return self._halted

    def drained(self) -> bool:
        """Closed, and no trial waits or is held: a launch that ended has nothing left."""
        with self._cond:
            return self._closed and not self._pending and not any(
                g.held() for g in self._groups.values())

    def take_back(self, group: int, linger: float = 10.0) -> list[Trial]:
        """The trials group ``group`` held when its launch failed. Waits up to ``linger``
        seconds for its connections to close, so a report still in the socket counts first
        (a report after this is ignored)."""
        deadline = time.monotonic() + linger
        with self._cond:
            state = self._groups[group]
            while state.connections and time.monotonic() < deadline:
                self._cond.wait(timeout=0.2)
            held, state.busy, state.reserved = state.held(), [], []
            state.current = None
            return held

    def put_back(self, retry: list[Trial], settled: list[Trial]) -> None:
        """After a failed launch: ``retry`` goes first in the queue; ``settled`` (finished in
        MLflow, or waiting in the spool) leaves the batch."""
        with self._cond:
            self._pending.extendleft(reversed(retry))
            self._open -= {t.config_hash for t in settled}
            self._cond.notify_all()

    def give_up(self, group: int) -> None:
        """Group ``group`` launched its last attempt; when no group is left, every trial
        still waiting is abandoned (the driver marks it failed)."""
        with self._cond:
            self._live.discard(group)
            if not self._live:
                for state in self._groups.values():
                    self._abandoned += state.held()
                    state.busy, state.reserved = [], []
                self._abandoned += self._pending
                self._pending.clear()
                self._open.clear()
            self._cond.notify_all()

    # --- rank 0's side (through the connection threads) --------------------------------

    def next(self, group: int, wait: float = WAIT_SECONDS) -> Assignment | bool | None:
        """The group's next trial; None: nothing yet, ask again; False: the sweep is over."""
        deadline = time.monotonic() + wait
        with self._cond:
            state = self._groups[group]
            if state.current is not None:  # the group is done training its last trial
                self._took[state.current[0]] = time.monotonic() - state.current[1]
                state.current = None
            while self._halted or (not state.reserved and not self._pending):
                if self._closed or self._halted:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(timeout=left)
            now = time.monotonic()
            current = state.reserved.pop() if state.reserved else self._take(group)
            state.busy.append(current)
            # Claim one ahead only while every other group still has one to take: the last
            # trials of a round go to idle groups, not to a queue behind a busy one.
            ahead = self._take(group, steal=False) if len(self._pending) >= len(self._live) \
                else None
            if ahead is not None:  # never one another group's ranks kept the model of
                state.reserved.append(ahead)
            state.current = (current.config_hash, now)
            self._number += 1
            total = (self._tracker.total if self._tracker
                     else self._number + len(self._pending) + len(state.reserved))
            return Assignment(current, state.reserved[0] if state.reserved else None,
                              self._number, total)

    def _take(self, group: int, steal: bool = True) -> Trial | None:
        """The next pending trial for ``group``, under the lock: the first it trained before
        (a trial paused at a rung, whose model its ranks kept: rank.kept_models), else the
        first no other live group trained, else (``steal``) the queue's first."""
        others = self._live - {group}
        free = None
        for i, trial in enumerate(self._pending):
            home = self._home.get(trial.config_hash)
            if home == group:
                del self._pending[i]
                return trial
            if free is None and home not in others:
                free = i
        if free is None and not steal:
            return None
        trial = self._pending[free or 0]
        del self._pending[free or 0]
        self._home[trial.config_hash] = group
        return trial

    def done(self, group: int, outcome: TrialOutcome) -> None:
        """Rank 0 of ``group`` reports a trial settled (its records written)."""
        with self._cond:
            state = self._groups[group]
            trial = next((t for t in state.busy if t.config_hash == outcome.config_hash), None)
            if trial is None:  # taken back after a failed launch: the driver settled it
                return
            state.busy.remove(trial)
            handler = self._handlers.get(group)
            if handler is not None:
                handler(outcome)
            self._open.discard(trial.config_hash)
            seconds = self._took.pop(trial.config_hash, None)
            if seconds is None and state.current and state.current[0] == trial.config_hash:
                seconds = time.monotonic() - state.current[1]  # reported before the next ask
                state.current = None
            self._cond.notify_all()
            if self._tracker is not None:
                self._progress(trial, outcome, seconds or 0.0)

    def _progress(self, trial: Trial, outcome: TrialOutcome, seconds: float) -> None:
        """The progress lines after a settled trial (under the lock). A fault here is said,
        never raised: the lines inform, the sweep goes on."""
        try:
            self._tracker.record(trial, outcome, seconds)
            busy = [t for g in self._groups.values() for t in g.busy]
            waiting = [t for g in self._groups.values() for t in g.reserved]
            for line in self._tracker.lines(running=len(busy),
                                            left=[*busy, *waiting, *self._pending],
                                            parallel=len(self._live)):
                self._log(line)
        except Exception as exc:  # progress must not stop a sweep
            self._log(f"progress: not shown ({type(exc).__name__}: {exc})")

    def _accept(self, listener: Listener) -> None:
        while self._listener is listener:
            try:
                conn = listener.accept()
            except Exception:  # a peer without the key, or the listener closed
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="board-connection").start()

    def _serve(self, conn: Connection) -> None:
        group = None
        try:
            group = int(conn.recv())  # the first message names the group
            if group not in self._groups:
                return
            with self._cond:
                self._groups[group].connections += 1
            while True:
                kind, payload = conn.recv()
                if kind == "next":
                    conn.send(self.next(group))
                elif kind == "done":
                    self.done(group, payload)
                    conn.send(True)
        except (EOFError, OSError, ValueError, TypeError):
            pass  # the rank ended (or died): its launch's outcome tells the driver which
        finally:
            conn.close()
            if group in self._groups:
                with self._cond:
                    self._groups[group].connections -= 1
                    self._cond.notify_all()

    def shutdown(self) -> None:
        """Stop listening (after every launch ended)."""
        with self._cond:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
