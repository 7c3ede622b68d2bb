"""bench/halving_rungs.py counts each schedule's segments and the epochs they trained, and sets
each halving schedule against the full grid."""

from bench import halving_rungs
from pipeline.tracking.vocab import Status
from pipeline.train.contract import TrialOutcome


def _seg(cell: str, status: Status, reached: int, resumed: int, acc: float = 0.0):
    return TrialOutcome(f"{cell} #1", cell, status, epochs_run=reached,
                        resumed_from_epoch=resumed, metrics={"test_accuracy": acc})


def test_a_promoted_run_counts_one_segment_per_rung_and_only_the_epochs_it_trained():
    halved = [_seg("a", Status.PAUSED, 1, 0), _seg("a", Status.FINISHED, 5, 1, 0.97),
              _seg("b", Status.PRUNED, 1, 0)]
    full = [_seg("a", Status.FINISHED, 5, 0, 0.97), _seg("b", Status.FINISHED, 5, 0, 0.95)]
    out = {"full": halving_rungs.summary(100.0, full), "eta2": halving_rungs.summary(60.0, halved)}
    assert (out["eta2"]["segments"], out["eta2"]["run_epochs"]) == (3, 6)
    assert (out["full"]["segments"], out["full"]["run_epochs"]) == (2, 10)
    assert out["eta2"]["best_cell"] == out["full"]["best_cell"] == "a"
    assert halving_rungs.ratios(out) == {"eta2": {"wall": 0.6, "run_epochs": 0.6,
                                                  "same_best": True}}
