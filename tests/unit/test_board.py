"""The driver's trial board (driver.board) and rank 0's link to it (rank.pull), over a real
authenticated socket: who gets which trial, what a failed launch hands back, when the
driver's wait returns, and that a peer without the key is refused."""

from __future__ import annotations

import threading
from multiprocessing.connection import AuthenticationError, Client

import pytest

from pipeline.config import RunConfig
from pipeline.train.contract import BatchPlan, Trial, TrialOutcome
from pipeline.train.driver.board import Board
from pipeline.train.progress import Tracker
from pipeline.train.rank.pull import BoardLink


def _trial(name: str) -> Trial:
    return Trial(name, RunConfig(), name, BatchPlan(1, 32, 10, 1.0, False), name)


def _outcome(trial: Trial, status: str = "finished") -> TrialOutcome:
    return TrialOutcome(trial.name, trial.config_hash, status,
                        history={"val_accuracy": [0.5]})


def test_a_group_claims_one_ahead_only_while_every_other_group_has_one_to_take():
    board = Board(2)
    a, b, c = _trial("a"), _trial("b"), _trial("c")
    board.submit([a, b, c])
    first = board.next(0, wait=0)
    assert (first.trial, first.following) == (a, b)  # 1 left for the other group
    second = board.next(1, wait=0)
    assert (second.trial, second.following) == (c, None)
    assert board.next(1, wait=0) is None  # nothing yet: ask again
    assert board.next(0, wait=0).trial is b  # the reserved one is group 0's next


def test_the_drivers_wait_returns_once_every_trial_is_reported_and_the_ranks_then_end():
    board = Board(1)
    got: list[TrialOutcome] = []
    board.on_outcome(0, got.append)
    a, b = _trial("a"), _trial("b")
    board.submit([a, b])
    waited: list[list[Trial]] = []
    waiter = threading.Thread(target=lambda: waited.append(board.wait()))
    waiter.start()
    board.next(0, wait=0)
    board.next(0, wait=0)  # b starts while a still records
    board.done(0, _outcome(a))
    waiter.join(0.3)
    assert waiter.is_alive()  # b is not settled
    board.done(0, _outcome(b))
    waiter.join(5)
    assert waited == [[]] and [o.name for o in got] == ["a", "b"]
    board.close()
    assert board.next(0, wait=0) is False and board.drained()


def test_a_failed_launch_hands_back_what_it_held_and_a_late_report_is_ignored():
    board = Board(1)
    got: list[TrialOutcome] = []
    board.on_outcome(0, got.append)
    a, b, c = _trial("a"), _trial("b"), _trial("c")
    board.submit([a, b, c])
    board.next(0, wait=0)  # a, with b reserved
    assert board.take_back(0, linger=0) == [a, b]
    board.done(0, _outcome(a))  # from the dead launch, after the driver settled it
    assert got == []
    board.put_back(retry=[b], settled=[a])  # a finished in MLflow; b goes first
    assert board.next(0, wait=0).trial is b


def test_when_every_group_gives_up_the_trials_left_are_abandoned_to_the_driver():
    board = Board(2)
    a, b, c = _trial("a"), _trial("b"), _trial("c")
    board.submit([a, b, c])
    board.next(0, wait=0)
    board.give_up(1)
    board.give_up(0)
    assert sorted(t.name for t in board.wait()) == ["a", "b", "c"]
    board.submit([_trial("d")])  # a later round: nobody left to train it
    assert [t.name for t in board.wait()] == ["d"]


def test_a_groups_error_is_raised_in_the_drivers_wait_and_no_launch_follows():
    board = Board(1)
    board.submit([_trial("a")])
    board.fail(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        board.wait()
    assert board.halted() and board.next(0, wait=0) is False


def test_progress_lines_count_every_groups_runs():
    said: list[str] = []
    board = Board(2, Tracker([], "val_accuracy", higher=True), said.append)
    a, b = _trial("a"), _trial("b")
    board.submit([a, b])
    board.next(0, wait=0)
    board.next(1, wait=0)
    board.done(1, _outcome(b))
    assert "1/2 runs done" in said[0]
    assert "1 done, 1 running, 0 left" in said[1]


def test_rank_zero_talks_to_the_board_over_an_authenticated_socket():
    board = Board(1)
    got: list[TrialOutcome] = []
    board.on_outcome(0, got.append)
    a = _trial("a")
    board.submit([a])
    address = board.address(0)
    link = BoardLink(address)
    try:
        assignment = link.next()
        assert assignment.trial == a and assignment.number == 1
        link.report(_outcome(a))
        assert board.wait() == [] and [o.name for o in got] == ["a"]
        board.close()
        assert link.next() is False
    finally:
        link.close()
    with pytest.raises(AuthenticationError):
        Client((address.host, address.port), authkey=b"not the key")
    board.shutdown()


def test_a_runs_time_ends_when_its_group_asks_for_the_next_not_when_its_records_land(
        monkeypatch):
    from pipeline.train.driver import board as board_module

    clock = iter([0.0, 0.0, 9.0, 9.0, 20.0, 20.0, 20.0])  # the board's reads, in order
    monkeypatch.setattr(board_module.time, "monotonic", lambda: next(clock))
    tracker = Tracker([], "val_accuracy", higher=True)
    board = Board(1, tracker, lambda line: None)
    a, b = _trial("a"), _trial("b")
    board.submit([a, b])
    board.next(0, wait=0)  # a starts at 0
    board.next(0, wait=0)  # a trained for 9 s; b starts
    board.done(0, _outcome(a))  # a's records land at 20: not a's time
    assert tracker.timed == [("a", 9.0)]


def test_a_trial_of_a_later_round_goes_back_to_the_group_that_trained_it():
    """Its ranks kept its model when it paused at the rung (rank.kept_models); another
    group takes it only when its own group has nothing else of its own to take."""
    board = Board(2)
    a, b, c, d = (_trial(n) for n in "abcd")
    board.submit([a, b])
    for group in (0, 1):
        trial = board.next(group, wait=0).trial
        board.done(group, _outcome(trial))
    assert board.wait() == []
    board.submit([a, b, c, d])  # the next rung, a and b first in the queue
    assert board.next(1, wait=0).trial is b  # group 1's own, ahead of a
    assert board.next(0, wait=0).trial is a
    assert board.next(1, wait=0).trial is c  # nothing of its own left: the queue's first
