"""Racing's decisions on synthetic scores (no Spark, no MLflow): who gets another replicate,
why each cell stops, the budget, the refusal of racing with halving, and a race resumed from
what a killed one left in the store."""

import math

import pytest

from pipeline.config import RacingConfig, RunConfig
from pipeline.config.parse import parse
from pipeline.config.resolve import resolve
from pipeline.config.schema import SweepConfig
from pipeline.errors import ConfigError
from pipeline.report import verdicts
from pipeline.train.contract import Trial
from pipeline.train.driver import racing
from pipeline.train.driver.sweep import SweepOptions

# Per cell, replicate k's validation accuracy (the same seed k in every cell).
GOOD = [0.900, 0.902, 0.901, 0.903, 0.900, 0.902]
CLOSE = [0.899, 0.904, 0.897, 0.905, 0.898, 0.903]  # within noise of GOOD: stays open a while
BAD = [0.500, 0.510, 0.505, 0.502, 0.507, 0.503]


def _trials(cells: dict[str, list[float]], reps: int) -> list[Trial]:
    return [Trial(f"{c} #{r + 1}", RunConfig(), f"{c}-{r}", None, c, r)  # type: ignore[arg-type]
            for c in cells for r in range(reps)]


class Store:
    """What MLflow would hold: the scores of the replicates trained so far."""

    def __init__(self, truth: dict[str, list[float]], done: set[str] = frozenset()):
        self.truth, self.trained, self.launches = truth, set(done), []
        self.tags: dict[str, str] = {}

    def train(self, batch: list[Trial]) -> None:
        self.launches.append([t.config_hash for t in batch])
        self.trained |= {t.config_hash for t in batch}

    def scores(self, client, exp_id, trials, metric):
        out: dict[str, dict[int, float]] = {}
        for t in trials:
            done = t.config_hash in self.trained
            out.setdefault(t.cell_hash, {})[t.replicate] = (
                self.truth[t.cell_hash][t.replicate] if done else math.nan)
        return out

    def tag(self, client, exp_id, trials, reasons):
        self.tags.update(reasons)


def _race(monkeypatch, truth, cfg, done=frozenset(), min_effect=0.001):
    store = Store(truth, set(done))
    monkeypatch.setattr(racing, "scores", store.scores)
    monkeypatch.setattr(racing, "tag", store.tag)
    trials = _trials(truth, cfg.max_replicates)
    todo = [t for t in trials if t.config_hash not in done]
    said: list[str] = []
    race = racing.run_race(None, "0", trials, todo, cfg, min_effect, ("val_accuracy", True),
                           store.train, said.append)
    return race, store, said


def test_a_clearly_bad_cell_is_out_after_the_first_round_and_a_close_one_gets_more(monkeypatch):
    truth = {"good": GOOD, "close": CLOSE, "bad": BAD}
    race, store, said = _race(monkeypatch, truth, RacingConfig(True, 2, 6))
    assert store.launches[0] == ["good-0", "good-1", "close-0", "close-1", "bad-0", "bad-1"]
    assert race.reasons["bad"] == "out after 2 (worse)"
    assert not any(h.startswith("bad") for batch in store.launches[1:] for h in batch)
    trained = {c: sum(h.startswith(c) for h in store.trained) for c in truth}
    assert trained["close"] > 2 and sum(trained.values()) < 3 * 6
    assert said[0] == ("racing: round 1: 3 undecided cells get replicates 1-2; 0 out; "
                       "0 runs so far / 18 budget")
    assert said[1] == ("racing: round 2: 1 undecided cells and the best get replicate 3; "
                       "1 out; 6 runs so far / 18 budget")
    assert trained["good"] == trained["close"]  # the best trains each seed its rival does
    assert store.tags == race.reasons


def test_every_stop_reason_in_words():
    def v(verdict: str) -> verdicts.CellVerdict:
        return verdicts.CellVerdict("c", 3, 0, 0.9, 0.0, 0.0, 0.0, verdict, "")
    assert racing.stop_reason(v("best"), 3, 3, 0.001) == "best after 3"
    assert racing.stop_reason(v("tied"), 3, 3, 0.001) == "resolved tied within 0.001 after 3"
    assert racing.stop_reason(v("worse"), 2, 4, 0.001) == "out after 2 (worse)"
    assert racing.stop_reason(v("undecided"), 6, 0, 0.001) == "undecided at max replicates (6)"
    assert racing.stop_reason(v("undecided"), 4, 2, 0.001) == "budget reached at 4"


def test_only_undecided_cells_with_a_replicate_left_get_one_closest_to_the_best_first():
    judged = verdicts.judge({"a": {0: 0.9, 1: 0.91}, "b": {0: 0.905, 1: 0.899},
                             "c": {0: 0.904, 1: 0.90}, "d": {0: 0.1, 1: 0.11}},
                            min_effect=0.001, higher_is_better=True)
    open_cells = verdicts.undecided(judged)
    assert "d" not in open_cells and len(open_cells) == 2
    best = judged[0].cell
    assert judged[0].verdict == "best"
    left = dict.fromkeys("abcd", 1)
    assert racing.give(judged, left, 10) == [best, *open_cells]  # the best trains the new seed
    assert racing.give(judged, left, 2) == [best, open_cells[0]]
    assert racing.give(judged, {**left, best: 0}, 10) == open_cells
    assert racing.give(judged, {**left, open_cells[0]: 0}, 10) == [best, open_cells[1]]
    assert racing.give(judged, left, 0) == []
    # Room for the best alone: its new seed would pair with nothing, so the race stops there.
    assert racing.give(judged, left, 1) == []
    assert racing.give(judged, {**left, **dict.fromkeys(open_cells, 0)}, 10) == []


def test_the_budget_stops_the_race_and_says_so(monkeypatch):
    truth = {"good": GOOD, "close": CLOSE, "bad": BAD}
    race, store, said = _race(monkeypatch, truth, RacingConfig(True, 2, 6, budget_runs=8))
    assert len(store.trained) == 8
    assert any(r.startswith("budget reached at") for r in race.reasons.values()), race.reasons
    assert said[-1].startswith("racing: done after") and "8 runs / 8 budget" in said[-1]


def test_failed_replicates_count_against_their_cell(monkeypatch):
    truth = {"good": GOOD, "close": CLOSE, "broken": [math.nan] * 6}
    race, _, _ = _race(monkeypatch, truth, RacingConfig(True, 2, 6))
    assert race.reasons["broken"] == "out after 2 (worse)"


def test_a_resumed_race_skips_what_is_done_and_reaches_the_same_decisions(monkeypatch):
    truth = {"good": GOOD, "close": CLOSE, "bad": BAD}
    cfg = RacingConfig(True, 2, 6)
    whole, whole_store, _ = _race(monkeypatch, truth, cfg)
    # Killed after round 2: the first two launches are in the store, the rest is not.
    done = {h for batch in whole_store.launches[:2] for h in batch}
    resumed, store, said = _race(monkeypatch, truth, cfg, done=done)
    assert not done & {h for batch in store.launches for h in batch}  # nothing retrained
    assert store.trained == whole_store.trained
    assert resumed.reasons == whole.reasons
    assert not said[0].startswith("racing: round 1")  # its first round was done


def test_racing_settings_are_typed_and_checked():
    sweep = parse(SweepConfig, {"name": "s", "dataset": "d", "racing": {
        "enabled": True, "initial": 3, "max_replicates": 5, "budget_runs": 20}})
    assert sweep.racing == RacingConfig(True, 3, 5, 20)
    with pytest.raises(ConfigError, match="racing.initial"):
        RacingConfig(True, 4, 3)
    with pytest.raises(ConfigError, match="racing.budget_runs"):
        RacingConfig(True, 2, 3, 0)
    with pytest.raises(ConfigError, match="racing.bogus"):
        parse(SweepConfig, {"name": "s", "dataset": "d", "racing": {"bogus": 1}})


def test_racing_and_halving_at_once_are_refused_in_one_line(tmp_path):
    sweep = parse(SweepConfig, {"name": "s", "dataset": "d", "halving": {"enabled": True}})
    with pytest.raises(ConfigError, match="mutually exclusive"):
        resolve(sweep, SweepOptions(tmp_path, racing=True).overrides())
    merged = resolve(sweep, SweepOptions(tmp_path, racing=True, halving=False).overrides())
    assert (merged.sweep.halving.enabled, merged.sweep.racing.enabled) == (False, True)


def test_a_budget_below_the_first_round_is_refused_when_the_sweep_is_resolved():
    sweep = parse(SweepConfig, {"name": "s", "dataset": "d",
                                "grid": {"model.hidden_activation": ["relu", "tanh"]},
                                "racing": {"enabled": True, "budget_runs": 3}})
    with pytest.raises(ConfigError, match=r"3 is below the first round's 2 configurations x 2"):
        resolve(sweep)


def _board_runs(race: bool):
    import pandas as pd
    rows = []
    for act, acc, n, why in (("relu", 0.97, 3, "best after 3"),
                             ("sigmoid", 0.50, 2, "out after 2 (worse)")):
        for r in range(n):
            rows.append({"run_id": f"{act}{r}", "cell": act, "configuration": act,
                         "replicate": r, "status": "finished", "hidden_activation": act,
                         "final_val_accuracy": acc + 0.001 * r, "race": why if race else ""})
    return pd.DataFrame(rows)


def test_the_leaderboard_says_why_each_cell_has_its_replicates_only_when_racing():
    from pipeline.report import analysis, leaderboard
    for race in (True, False):
        board = leaderboard.cell_board(_board_runs(race), ["hidden_activation"],
                                       "final_val_accuracy")
        shown = analysis._compact(board, ["hidden_activation"], "final_val_accuracy", None)
        if race:
            assert list(shown["why these replicates"]) == ["best after 3", "out after 2 (worse)"]
        else:
            assert "why these replicates" not in shown
