"""Replicate statistics: intervals, P(best), the tie rule, factor effects and interactions."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from pipeline.report.effects import factor_effects, interaction_tables
from pipeline.report.statistics import (
    FAILED_REPLICATE_POLICY,
    TIE_RULE,
    cell_summary,
    prob_best,
    summary_sentence,
    tie_set,
)

FACTORS = ["act", "loss"]


def rows(act: str, loss: str, values: Sequence[float], status: str = "finished",
         first: int = 0) -> list[dict]:
    return [{"cell": f"{act}|{loss}", "act": act, "loss": loss, "replicate": first + i,
             "status": status, "acc": float(v)} for i, v in enumerate(values)]


def frame(*groups: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def summary(runs: pd.DataFrame, higher_is_better: bool = True, **kwargs) -> pd.DataFrame:
    return cell_summary(runs, FACTORS, "acc", higher_is_better, **kwargs).set_index("cell")


@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_interval_is_scipy_bca_bootstrap_of_the_finished_replicates(confidence):
    x = np.array([0.91, 0.93, 0.90, 0.95, 0.92, 0.94])
    runs = frame(rows("relu", "mse", x), rows("tanh", "mse", [0.80, 0.82, 0.81]))
    row = summary(runs, n_resamples=2000, seed=7, confidence=confidence).loc["relu|mse"]
    expected = stats.bootstrap((x,), np.mean, n_resamples=2000, confidence_level=confidence,
                               method="BCa", rng=np.random.default_rng(7)).confidence_interval
    assert row["ci_method"] == "BCa"
    assert row["ci_low"] == pytest.approx(expected.low, rel=1e-12)
    assert row["ci_high"] == pytest.approx(expected.high, rel=1e-12)
    assert row["mean"] == pytest.approx(np.mean(x))
    assert row["std"] == pytest.approx(np.std(x, ddof=1))
    assert row["ci_low"] < row["mean"] < row["ci_high"]


def test_when_bca_fails_the_interval_is_the_percentile_bootstrap(monkeypatch):
    x = np.array([0.91, 0.93, 0.90, 0.95, 0.92])
    real = stats.bootstrap

    def no_bca(*args, method: str, **kwargs):
        if method == "BCa":
            raise ValueError("BCa unavailable")
        return real(*args, method=method, **kwargs)

    monkeypatch.setattr(stats, "bootstrap", no_bca)
    row = summary(frame(rows("relu", "mse", x)), n_resamples=1000, seed=3).loc["relu|mse"]
    expected = real((x,), np.mean, n_resamples=1000, method="percentile",
                    rng=np.random.default_rng(3)).confidence_interval
    assert row["ci_method"] == "percentile"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((expected.low, expected.high))


def test_identical_replicates_give_a_zero_width_interval_and_exact_ties():
    runs = frame(rows("relu", "mse", [0.8] * 4), rows("tanh", "mse", [0.8] * 3),
                 rows("elu", "mse", [0.7] * 4))
    s = summary(runs)
    assert (s.loc["relu|mse", "ci_low"], s.loc["relu|mse", "ci_high"]) == (0.8, 0.8)
    assert s.loc["elu|mse", ["ci_low", "ci_high"]].tolist() == [0.7, 0.7]
    assert s.loc["tanh|mse", "tied_with_best"]
    assert not s.loc["elu|mse", "tied_with_best"]
    # Every resample ties the two constant cells at 0.8: each win is split in half.
    assert s.loc["relu|mse", "p_best"] == s.loc["tanh|mse", "p_best"] == 0.5


def test_identical_configurations_are_tied_and_split_p_best():
    values = [0.90, 0.92, 0.91, 0.93, 0.89]
    runs = frame(rows("relu", "mse", values), rows("gelu", "mse", values),
                 rows("tanh", "mse", [v - 0.3 for v in values]))
    s = summary(runs, n_resamples=4000, seed=1)
    assert s.loc["relu|mse", "tied_with_best"] and s.loc["gelu|mse", "tied_with_best"]
    assert s.loc["relu|mse", "p_best"] == pytest.approx(0.5, abs=0.05)
    assert s.loc["gelu|mse", "p_best"] == pytest.approx(0.5, abs=0.05)
    assert s["p_best"].sum() == pytest.approx(1.0)
    assert not s.loc["tanh|mse", "tied_with_best"]
    sentence = summary_sentence(s.reset_index(), FACTORS)
    assert "tied with 1 other cell: " in sentence
    assert "gelu + mse" in sentence and "relu + mse" in sentence


def test_a_clearly_worse_cell_is_not_tied_and_almost_never_best():
    rng = np.random.default_rng(3)
    runs = frame(rows("relu", "mse", 0.9 + rng.normal(0, 0.01, 5)),
                 rows("tanh", "mse", 0.5 + rng.normal(0, 0.01, 5)))
    s = summary(runs)
    assert s.loc["relu|mse", "is_best"] and s.loc["relu|mse", "rank"] == 1
    assert not s.loc["tanh|mse", "tied_with_best"]
    assert s.loc["tanh|mse", "p_tie"] < 0.05
    assert s.loc["tanh|mse", "p_best"] < 1e-3
    sentence = summary_sentence(s.reset_index(), FACTORS)
    assert sentence.startswith("Best: relu + mse (") and "decisively" in sentence


def test_tie_rule_is_welch_against_the_best_with_holm_correction():
    rng = np.random.default_rng(5)
    means = {"a": 0.90, "b": 0.895, "c": 0.88, "d": 0.86, "e": 0.80}
    groups = {name: mu + rng.normal(0, 0.01, 4) for name, mu in means.items()}
    runs = frame(*(rows(name, "mse", v) for name, v in groups.items()))
    s = summary(runs)
    best = s.index[s["is_best"]].item().split("|")[0]
    others = [c for c in groups if c != best]
    raw = [stats.ttest_ind(groups[c], groups[best], equal_var=False).pvalue for c in others]
    reject, corrected, *_ = multipletests(raw, alpha=0.05, method="holm")
    assert not np.allclose(corrected, raw)  # the correction is not a no-op here
    assert reject.any() and not reject.all()  # both outcomes are exercised
    for cell, p, rejected in zip(others, corrected, reject, strict=True):
        assert s.loc[f"{cell}|mse", "p_tie"] == pytest.approx(p)
        assert s.loc[f"{cell}|mse", "tied_with_best"] == (not rejected)
    ties = tie_set(runs, "acc", True)
    assert ties.tied == frozenset(s.index[s["tied_with_best"]])
    assert "Welch" in TIE_RULE and "Holm" in TIE_RULE


def test_lower_is_better_flips_the_ranking():
    runs = frame(rows("a", "mse", [0.20, 0.21, 0.19]), rows("b", "mse", [0.30, 0.31, 0.29]),
                 rows("c", "mse", [0.25, 0.26, 0.24]))
    low = cell_summary(runs, FACTORS, "acc", higher_is_better=False)
    high = cell_summary(runs, FACTORS, "acc", higher_is_better=True)
    assert low["cell"].tolist() == ["a|mse", "c|mse", "b|mse"]
    assert high["cell"].tolist() == low["cell"].tolist()[::-1]
    assert low.set_index("cell").loc["a|mse", "p_best"] > 0.99
    assert high.set_index("cell").loc["b|mse", "p_best"] > 0.99


def test_non_finished_replicates_are_counted_not_averaged():
    runs = frame(rows("relu", "mse", [0.90, 0.91, 0.92, 0.93]),
                 rows("relu", "mse", [0.10], "diverged", first=4),  # last value before NaN loss
                 rows("relu", "mse", [np.nan], "failed", first=5),
                 rows("tanh", "mse", [np.nan] * 3, "failed"),
                 rows("elu", "mse", [0.85, 0.86, 0.84]),
                 rows("elu", "mse", [0.20], "pruned", first=3),
                 rows("elu", "mse", [np.nan], "finished", first=4))
    s = summary(runs)
    relu, tanh, elu = s.loc["relu|mse"], s.loc["tanh|mse"], s.loc["elu|mse"]
    assert (relu["n_finished"], relu["n_diverged"], relu["n_failed"]) == (4, 1, 1)
    assert relu["flagged"] and not elu["flagged"]
    assert relu["mean"] == pytest.approx(np.mean([0.90, 0.91, 0.92, 0.93]))
    assert (elu["n_finished"], elu["n_pruned"], elu["n_failed"]) == (3, 1, 1)
    assert elu["mean"] == pytest.approx(0.85)
    assert (tanh["n_finished"], tanh["n_failed"]) == (0, 3)
    assert tanh[["mean", "std", "ci_low", "ci_high", "p_best"]].isna().all()
    assert not tanh["tied_with_best"] and not tanh["is_best"] and pd.isna(tanh["rank"])
    assert s.index[-1] == "tanh|mse"  # kept, last
    assert s["p_best"].sum() == pytest.approx(1.0)
    pd.testing.assert_series_equal(prob_best(runs, "acc", True).sort_index(),
                                   s["p_best"].sort_index(), check_names=False)
    assert "1 of 6 replicates diverged" in summary_sentence(s.reset_index(), FACTORS)
    assert "finished replicates only" in FAILED_REPLICATE_POLICY


def test_one_replicate_per_cell_gives_no_intervals_and_main_effects_only():
    runs = frame(rows("relu", "mse", [0.90]), rows("relu", "ce", [0.80]),
                 rows("tanh", "mse", [0.86]), rows("tanh", "ce", [0.71]),
                 rows("elu", "mse", [0.88]), rows("elu", "ce", [0.77]))
    s = summary(runs)
    assert s[["ci_low", "ci_high"]].isna().all().all()
    assert set(s["ci_method"]) == {"none"}
    assert s.index[s["tied_with_best"]].tolist() == ["relu|mse"]
    effects = factor_effects(runs, FACTORS, "acc", n_boot=20).set_index("term")
    assert np.isnan(effects.loc["act:loss", "sum_sq"])
    assert "not estimable" in effects.loc["act:loss", "note"]
    direct = anova_lm(smf.ols("acc ~ C(act) + C(loss)", data=runs).fit(), typ=2)
    assert effects.loc["act", "sum_sq"] == pytest.approx(direct.loc["C(act)", "sum_sq"])
    assert effects.loc["loss", "F"] == pytest.approx(direct.loc["C(loss)", "F"])


def test_a_level_pair_with_no_finished_replicate_drops_only_the_interaction():
    rng = np.random.default_rng(8)
    runs = frame(*(rows(a, b, 0.9 + ea + eb + rng.normal(0, 0.005, 3),
                        status="diverged" if (a, b) == ("elu", "hinge") else "finished")
                   for (a, ea), (b, eb) in product(ACTS.items(), LOSSES.items())))
    assert summary(runs).loc["elu|hinge", "n_diverged"] == 3
    effects = factor_effects(runs, FACTORS, "acc", n_boot=20).set_index("term")
    assert "no finished replicate" in effects.loc["act:loss", "note"]
    done = runs[runs["status"] == "finished"]
    direct = anova_lm(smf.ols("acc ~ C(act) + C(loss)", data=done).fit(), typ=2)
    np.testing.assert_allclose(effects.loc[["act", "loss", "residual"], "sum_sq"], direct["sum_sq"])


ACTS = {"relu": 0.0, "tanh": -0.01, "elu": 0.01}
LOSSES = {"mse": 0.0, "ce": 0.015, "hinge": 0.0}


def synthetic(bump: tuple[str, str] | None, size: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """y = 0.9 + act effect + loss effect (+ size for one pair) + small noise, 4 replicates."""
    rng = np.random.default_rng(seed)
    return frame(*(rows(a, b, 0.9 + ea + eb + size * ((a, b) == bump) + rng.normal(0, 0.002, 4))
                   for (a, ea), (b, eb) in product(ACTS.items(), LOSSES.items())))


def test_a_known_interaction_is_recovered():
    bump, size = ("tanh", "ce"), 0.05
    runs = synthetic(bump, size)
    tables = interaction_tables(runs, "act", "loss", "acc")
    acts, losses = list(tables.residual.index), list(tables.residual.columns)
    assert sorted(acts) == sorted(ACTS) and sorted(losses) == sorted(LOSSES)
    # A bump d at one of I x J cells leaves d (1[i = i*] - 1/I)(1[j = j*] - 1/J) once the grand
    # mean and both main effects are removed; the additive effects leave nothing.
    n_a, n_b = len(acts), len(losses)
    expected = np.array([[size * ((a == bump[0]) - 1 / n_a) * ((b == bump[1]) - 1 / n_b)
                          for b in losses] for a in acts])
    np.testing.assert_allclose(tables.residual.to_numpy(), expected, atol=3e-3)
    assert tables.residual.loc["tanh", "ce"] == pytest.approx(size * 4 / 9, abs=3e-3)
    direct = runs.groupby(["act", "loss"])["acc"].mean().unstack()
    np.testing.assert_allclose(tables.means.loc[direct.index, direct.columns], direct)

    effects = factor_effects(runs, FACTORS, "acc", n_boot=100).set_index("term")
    # Balanced design: eta squared of the interaction = sum of squared interaction residuals
    # over the sum of squared deviations of the (noise-free) cell means.
    true_means = np.array([[0.9 + ACTS[a] + LOSSES[b] + size * ((a, b) == bump) for b in losses]
                           for a in acts])
    expected_share = (expected**2).sum() / ((true_means - true_means.mean()) ** 2).sum()
    interaction = effects.loc["act:loss"]
    assert interaction["share"] == pytest.approx(expected_share, abs=0.02)
    assert interaction["share"] > 0.2 and interaction["p_value"] < 1e-6
    assert interaction["share_ci_low"] <= expected_share + 0.02
    assert interaction["share_ci_high"] >= expected_share - 0.02


def test_without_an_interaction_its_share_is_small_and_rarely_significant():
    # One seeded table is one draw of a p-value that is uniform under no interaction, so check
    # the false-positive rate over many additive tables: about 5% at alpha 0.05.
    tables = [factor_effects(synthetic(None, seed=s), FACTORS, "acc", n_boot=0).set_index("term")
              for s in range(40)]
    assert max(t.loc["act:loss", "share"] for t in tables) < 0.05  # main effects: ~0.95
    assert sum(t.loc["act:loss", "p_value"] < 0.05 for t in tables) <= 6  # P(> 6) ~ 0.003
    assert all(t.loc["loss", "p_value"] < 1e-6 for t in tables)


def test_factor_effects_match_statsmodels_with_awkward_names_and_values():
    rng = np.random.default_rng(11)
    levels = {"relu (v2)": 0.0, "a+b": 0.02, "x y": -0.01}, {"C(mse)": 0.0, "ce:1": 0.01}
    # Unbalanced (2 to 4 replicates): type II sums of squares then differ from type I and no
    # longer add up to the total, so both choices below are really tested.
    runs = frame(*(rows(a, b, 0.9 + ea + eb + 0.02 * (k == 0) + rng.normal(0, 0.01, 2 + k % 3))
                   for k, ((a, ea), (b, eb)) in enumerate(product(*(d.items() for d in levels)))))
    names = ["hidden activation", "loss(fn)"]
    effects = factor_effects(runs.rename(columns=dict(zip(FACTORS, names, strict=True))),
                             names, "acc", n_boot=50)
    assert effects["term"].tolist() == [*names, "hidden activation:loss(fn)", "residual"]
    direct = anova_lm(smf.ols("acc ~ C(act) * C(loss)", data=runs).fit(), typ=2)
    np.testing.assert_allclose(effects["sum_sq"], direct["sum_sq"])
    np.testing.assert_allclose(effects["df"], direct["df"])
    np.testing.assert_allclose(effects["p_value"], direct["PR(>F)"], equal_nan=True)
    total = ((runs["acc"] - runs["acc"].mean()) ** 2).sum()
    np.testing.assert_allclose(effects["share"], direct["sum_sq"] / total)
    sequential = anova_lm(smf.ols("acc ~ C(act) * C(loss)", data=runs).fit(), typ=1)
    assert not np.allclose(effects["sum_sq"], sequential["sum_sq"])
    assert not np.isclose(effects["share"].sum(), 1.0)
    assert (effects["share_ci_low"] <= effects["share_ci_high"]).all()
    assert effects.attrs["anova_type"] == 2
    named = runs.rename(columns=dict(zip(FACTORS, names, strict=True)))
    sentence = summary_sentence(cell_summary(named, names, "acc", True), names, effects)
    top = effects.iloc[effects["share"].iloc[:-1].idxmax()]
    assert f"{top['term']} explains {100 * top['share']:.0f}% of the variance (95% CI " in sentence


def test_share_intervals_resample_replicates_within_cells():
    # Cells differ a lot, replicates hardly at all: resampling within cells barely moves the
    # shares, whereas resampling the whole table would change the design and the shares.
    runs = synthetic(("tanh", "ce"))
    runs["acc"] = runs.groupby("cell")["acc"].transform("mean") + runs["replicate"] * 1e-7
    effects = factor_effects(runs, FACTORS, "acc", n_boot=50).set_index("term")
    for term in ["act", "loss", "act:loss"]:
        low, share, high = effects.loc[term, ["share_ci_low", "share", "share_ci_high"]]
        assert low <= share + 1e-9 and high >= share - 1e-9
        assert high - low < 1e-4


def test_results_are_seeded_and_independent_of_row_order():
    runs = synthetic(("tanh", "ce"), seed=2)
    shuffled = runs.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(cell_summary(runs, FACTORS, "acc", True, n_resamples=500),
                                  cell_summary(shuffled, FACTORS, "acc", True, n_resamples=500))
    first = factor_effects(runs, FACTORS, "acc", seed=4, n_boot=30)
    pd.testing.assert_frame_equal(first, factor_effects(runs, FACTORS, "acc", seed=4, n_boot=30))
    other = factor_effects(runs, FACTORS, "acc", seed=5, n_boot=30)
    assert not np.allclose(first["share_ci_low"], other["share_ci_low"])
