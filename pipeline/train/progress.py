"""Progress lines a user can trust: a clock time, what is left and how long it will take,
and a one-line table of the trials after each finished run.

The estimate reads the history of the runs so far, by configuration: a run whose
configuration already had replicates finish is expected to take their mean, any other the
median run. Each group's first run is left out once others have finished: it pays for
graph tracing and the first pass over the input, which the later runs do not; trials side by
side (concurrent groups) share the remainder. No TensorFlow, so
the rank, the driver and tests can use it alike; the interval is the report's own.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.tracking.vocab import SKIPPED, UNSTARTED
from pipeline.train.contract import Trial, TrialOutcome

# Outcomes that took no training here: counted as done, never as a duration.
_UNTIMED = (SKIPPED, UNSTARTED)


def estimate_left(done: Sequence[tuple[str, float]], left: Sequence[str],
                  warmups: int = 1) -> float | None:
    """Seconds the runs of configurations ``left`` will take, from ``done``: (configuration,
    seconds) of the runs timed so far, in the order they finished; ``warmups``: how many runs
    paid a launch's warm-up (one per group of ranks). None before any."""
    if not done:
        return None
    steady = list(done[warmups:]) or list(done)  # without the warm-up runs, once there are others
    typical = statistics.median(seconds for _, seconds in steady)
    by_cell: dict[str, list[float]] = {}
    for cell, seconds in steady:
        by_cell.setdefault(cell, []).append(seconds)
    return sum(statistics.fmean(by_cell[c]) if c in by_cell else typical for c in left)


@dataclass
class Tracker:
    """The runs of a sweep as they finish, and the lines that report them.

    ``metric`` is the per-epoch validation metric the report ranks cells by (``higher`` is
    better), read at each run's last epoch: the best configuration so far is the one whose
    finished replicates have the best mean of it, quoted with its Student-t interval. The test
    split stays for the report, which quotes it once for the chosen cells.
    """

    trials: list[Trial]
    metric: str
    higher: bool
    began: float = field(default_factory=time.monotonic)
    timed: list[tuple[str, float]] = field(default_factory=list)  # (cell, seconds)
    scores: dict[str, list[float]] = field(default_factory=dict)  # cell name -> metric
    finished: int = 0

    @property
    def total(self) -> int:
        return len(self.trials)

    def plan(self, trials: list[Trial]) -> None:
        """More runs to come (the next rung or round)."""
        self.trials.extend(trials)

    def record(self, trial: Trial, outcome: TrialOutcome, seconds: float) -> None:
        self.finished += 1
        if outcome.status not in _UNTIMED:
            self.timed.append((_cell(trial), seconds))
        value = (outcome.history.get(self.metric) or [math.nan])[-1]
        if math.isfinite(value):
            self.scores.setdefault(_cell_name(trial), []).append(value)

    def lines(self, now: float | None = None, clock: str | None = None,
              running: int | None = None, left: list[Trial] | None = None,
              parallel: int = 1) -> list[str]:
        """Two lines after a finished run: what is done and left, then the trial table.
        ``running``: runs in training now (default one, while any is left); ``left``: the
        runs not finished (default: those after the finished ones, in plan order);
        ``parallel``: trials trained side by side (concurrent groups)."""
        now = time.monotonic() if now is None else now
        stamp = clock or time.strftime("%H:%M:%S")
        total, done = len(self.trials), self.finished
        line = f"{stamp}     {done}/{total} runs done in {_clock(now - self.began)}"
        todo = self.trials[done:] if left is None else left
        estimate = estimate_left(self.timed, [_cell(t) for t in todo], warmups=parallel)
        if done < total and estimate is not None:
            line += f"; about {_clock(estimate / max(parallel, 1))} left"
        if running is None:
            running = 1 if done < total else 0
        table = (f"{stamp}     trials: {done} done, {running} running, "
                 f"{total - done - running} left; {self._best()}")
        return [line, table]

    def _best(self) -> str:
        if not self.scores:
            return f"no {self.metric} yet"
        means = {name: statistics.fmean(v) for name, v in self.scores.items()}
        pick = max if self.higher else min
        name = pick(means, key=means.__getitem__)
        values = self.scores[name]
        text = f"best so far {name}: {self.metric} {means[name]:.4f}"
        if len(values) < 2:
            return text + " (1 replicate, no interval yet)"
        # Here, not at the top: SciPy's import costs every rank most of a second, and only
        # rank 0 prints, once a cell has two replicates.
        from pipeline.report.verdicts import t_interval

        low, high = t_interval(values)
        return text + f" (95% t-interval {low:.4f} to {high:.4f}, {len(values)} replicates)"


def _cell(trial: Trial) -> str:
    return trial.cell_hash or trial.config_hash


def _cell_name(trial: Trial) -> str:
    return trial.name.rsplit(" #", 1)[0]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
