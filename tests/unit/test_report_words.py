"""The report's first lines, its decision and its Method text, from a small table of runs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from pipeline.report import answer, leaderboard, sections

FACTORS = ["hidden_activation"]


def _runs() -> pd.DataFrame:
    """Replicate r of every cell shares seed r: a seed effect common to all cells."""
    rng = np.random.default_rng(2)
    seed = rng.normal(0, 0.003, 3)
    cells = {"relu": 0.980, "gelu": 0.9798, "elu": 0.9785, "sigmoid": 0.950}
    rows = [{"cell": c, "configuration": c, "hidden_activation": c, "replicate": r,
             "status": "finished", "final_val_accuracy": mu + seed[r] + rng.normal(0, 1e-4),
             "test_accuracy": mu - 0.001}
            for c, mu in cells.items() for r in range(3)]
    rows.append({"cell": "tanh", "configuration": "tanh", "hidden_activation": "tanh",
                 "replicate": 0, "status": "diverged", "final_val_accuracy": np.nan,
                 "test_accuracy": np.nan})
    return pd.DataFrame(rows)


def test_the_first_lines_name_every_verdict_with_its_difference_interval():
    board = leaderboard.cell_board(_runs(), FACTORS, "final_val_accuracy")
    lines = answer.verdict_lines(board, FACTORS)
    verdict = board.set_index("cell")["verdict"]
    assert verdict["relu"] == "best" and verdict["sigmoid"] == "worse"
    best = board.set_index("cell").loc["relu"]
    assert lines[0].startswith(f"Best: relu (final_val_accuracy {best['mean']:.4f}, 95% CI "
                               f"{best['ci_low']:.4f}–{best['ci_high']:.4f}, 3 finished")
    heads = {"tied": "Tied with the best within ±0.001", "undecided": "Undecided",
             "worse": "Worse than the best by more than 0.001"}
    for cell, word in verdict.drop("relu").items():
        line = next(text for text in lines if text.startswith(heads[word]))
        row = board.set_index("cell").loc[cell]
        if np.isfinite(row["diff_low"]):
            assert f"{cell} ({row['diff']:+.4f}, {row['diff_low']:+.4f} to " in line
        else:
            assert f"{cell} (no finished replicate, 1 of 1 replicates failed" in line
    decision = answer.decision(board, FACTORS)
    assert decision.startswith(("Tied", "Undecided", "Decisive"))
    chosen = board[board["is_best"] | board["tied_with_best"]]["cell"]
    test = answer.test_line(board, FACTORS, "test_accuracy")
    assert all(c in test for c in chosen) and "sigmoid" not in test


def test_the_method_section_names_the_methods_and_the_settings():
    board = leaderboard.cell_board(_runs(), FACTORS, "final_val_accuracy", min_effect=0.002)
    found = SimpleNamespace(board=board, metric="final_val_accuracy",
                            test_metric="test_accuracy")
    text = " ".join(sections._method(found))
    for phrase in ("scipy.stats.t.interval", "paired by seed", "min_effect = 0.002",
                   "Clopper-Pearson", "ranked on final_val_accuracy", "held-out test_accuracy",
                   "seed as a block",
                   "Student-t posterior"):
        assert phrase in text, phrase
