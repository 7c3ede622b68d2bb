"""Replicate statistics: intervals, verdicts against the best, P(best), factor effects and
interactions."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from pipeline.report import answer, verdicts
from pipeline.report.effects import (
    BLOCK,
    MIXED,
    NOISE,
    factor_effects,
    influence_sentence,
    interaction_tables,
)
from pipeline.report.statistics import (
    FAILED_REPLICATE_POLICY,
    INTERVAL_METHOD,
    cell_summary,
    prob_best,
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


def lines(s: pd.DataFrame) -> list[str]:
    return answer.verdict_lines(s.reset_index(), FACTORS)


@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_interval_is_the_student_t_interval_of_the_finished_replicates(confidence):
    x = np.array([0.91, 0.93, 0.90, 0.95, 0.92, 0.94])
    runs = frame(rows("relu", "mse", x), rows("tanh", "mse", [0.80, 0.82, 0.81]))
    row = summary(runs, confidence=confidence).loc["relu|mse"]
    expected = stats.t.interval(confidence, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert row["ci_method"] == "t"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(expected, rel=1e-12)
    assert row["mean"] == pytest.approx(np.mean(x))
    assert row["std"] == pytest.approx(np.std(x, ddof=1))
    assert row["ci_low"] < row["mean"] < row["ci_high"]
    assert "scipy.stats.t.interval" in INTERVAL_METHOD


def test_at_three_replicates_the_interval_is_wider_than_their_range():
    # A bootstrap interval of 3 values can never leave their range; the t interval does, which
    # is what its 95% coverage at n = 3 takes.
    x = [0.970, 0.975, 0.972]
    row = summary(frame(rows("relu", "mse", x), rows("tanh", "mse", [0.5, 0.6]))).loc["relu|mse"]
    assert row["ci_low"] < min(x) - 0.003 and row["ci_high"] > max(x) + 0.003


def test_identical_replicates_give_a_zero_width_interval_and_exact_ties():
    runs = frame(rows("relu", "mse", [0.8] * 4), rows("tanh", "mse", [0.8] * 3),
                 rows("elu", "mse", [0.7] * 4))
    s = summary(runs)
    assert (s.loc["relu|mse", "ci_low"], s.loc["relu|mse", "ci_high"]) == (0.8, 0.8)
    assert s.loc["elu|mse", ["ci_low", "ci_high"]].tolist() == [0.7, 0.7]
    # Both constant at 0.8: one is best (means equal to the last bit or not), the other tied.
    assert set(s.loc[["relu|mse", "tanh|mse"], "verdict"]) == {"best", "tied"}
    assert s.loc[["relu|mse", "tanh|mse"], "diff"].tolist() == pytest.approx([0.0, 0.0])
    assert not s.loc["elu|mse", "tied_with_best"] and s.loc["elu|mse", "verdict"] == "worse"
    assert (s.loc["elu|mse", "diff_low"], s.loc["elu|mse", "diff_high"]) == pytest.approx(
        (-0.1, -0.1))
    # Every posterior draw ties the two constant cells at 0.8: each win is split in half.
    assert s.loc["relu|mse", "p_best"] == s.loc["tanh|mse", "p_best"] == 0.5


def test_identical_configurations_are_tied_and_split_p_best():
    values = [0.90, 0.92, 0.91, 0.93, 0.89]
    runs = frame(rows("relu", "mse", values), rows("gelu", "mse", values),
                 rows("tanh", "mse", [v - 0.3 for v in values]))
    s = summary(runs, draws=4000, seed=1)
    assert s["is_best"].sum() == 1
    assert set(s.loc[["relu|mse", "gelu|mse"], "verdict"]) == {"best", "tied"}
    assert s.loc["relu|mse", "p_best"] == pytest.approx(0.5, abs=0.05)
    assert s.loc["gelu|mse", "p_best"] == pytest.approx(0.5, abs=0.05)
    assert s["p_best"].sum() == pytest.approx(1.0)
    assert s.loc["tanh|mse", "verdict"] == "worse"
    text = lines(s)
    assert text[0].startswith("Best: ") and text[1].startswith("Tied with the best within ±0.001")
    assert "gelu + mse" in " ".join(text[:2]) and "relu + mse" in " ".join(text[:2])
    assert text[2].startswith("Worse than the best by more than 0.001: tanh + mse (-0.3000, ")


def test_a_clearly_worse_cell_is_not_tied_and_almost_never_best():
    rng = np.random.default_rng(3)
    runs = frame(rows("relu", "mse", 0.9 + rng.normal(0, 0.01, 5)),
                 rows("tanh", "mse", 0.5 + rng.normal(0, 0.01, 5)))
    s = summary(runs)
    assert s.loc["relu|mse", "is_best"] and s.loc["relu|mse", "rank"] == 1
    assert not s.loc["tanh|mse", "tied_with_best"] and s.loc["tanh|mse", "verdict"] == "worse"
    assert s.loc["tanh|mse", "diff_high"] < -0.3
    assert s.loc["tanh|mse", "p_best"] < 1e-3
    assert lines(s)[0].startswith("Best: relu + mse (")
    assert answer.decision(s.reset_index(), FACTORS).startswith("Decisive")


def test_verdicts_are_paired_t_intervals_of_the_difference_against_plus_minus_min_effect():
    # Replicate r of every cell shares its seed: a seed effect common to all cells, which the
    # paired differences cancel. Verdicts follow the intervals against +-min_effect.
    rng = np.random.default_rng(5)
    seed_effect = rng.normal(0, 0.01, 4)
    means = {"a": 0.90, "b": 0.8996, "c": 0.899, "d": 0.85}
    groups = {name: mu + seed_effect + rng.normal(0, 0.0003, 4) for name, mu in means.items()}
    runs = frame(*(rows(name, "mse", v) for name, v in groups.items()))
    s = summary(runs, min_effect=0.001)
    assert s.index[0] == "a|mse" and s.loc["a|mse", "verdict"] == "best"
    for cell in ("b", "c", "d"):
        d = groups[cell] - groups["a"]
        expected = stats.t.interval(0.95, 3, loc=d.mean(), scale=stats.sem(d))
        row = s.loc[f"{cell}|mse"]
        assert row["diff_method"] == "paired t"
        assert (row["diff_low"], row["diff_high"]) == pytest.approx(expected)
        inside = expected[0] >= -0.001 and expected[1] <= 0.001
        word = "tied" if inside else "worse" if expected[1] < -0.001 else "undecided"
        assert row["verdict"] == word
    assert set(s["verdict"]) == {"best", "tied", "undecided", "worse"}  # all four exercised
    # Unpaired, the seed effect would swamp every difference but d's.
    welch = verdicts.difference(dict(enumerate(groups["b"])), dict(enumerate(groups["a"])),
                                paired=False)
    assert welch.high - welch.low > 10 * (s.loc["b|mse", "diff_high"] - s.loc["b|mse", "diff_low"])


def test_seeds_pair_replicates_and_unshared_seeds_fall_back_to_welch():
    paired = frame(rows("a", "mse", [0.90, 0.92, 0.94]), rows("b", "mse", [0.89, 0.91, 0.93]))
    assert summary(paired).loc["b|mse", "diff_method"] == "paired t"
    assert summary(paired).attrs["paired"]
    # Seeds logged per run and different in every cell (a grid over training.seed): unpaired.
    unshared = paired.assign(**{"params.training.seed": [str(i) for i in range(6)]})
    s = summary(unshared)
    assert s.loc["b|mse", "diff_method"] == "Welch t" and not s.attrs["paired"]


def test_lower_is_better_flips_the_ranking():
    runs = frame(rows("a", "mse", [0.20, 0.21, 0.19]), rows("b", "mse", [0.30, 0.31, 0.29]),
                 rows("c", "mse", [0.25, 0.26, 0.24]))
    low = cell_summary(runs, FACTORS, "acc", higher_is_better=False)
    high = cell_summary(runs, FACTORS, "acc", higher_is_better=True)
    assert low["cell"].tolist() == ["a|mse", "c|mse", "b|mse"]
    assert high["cell"].tolist() == low["cell"].tolist()[::-1]
    assert low.set_index("cell").loc["a|mse", "p_best"] > 0.95
    assert high.set_index("cell").loc["b|mse", "p_best"] > 0.95
    assert low.set_index("cell").loc["b|mse", "diff"] == pytest.approx(-0.1)  # oriented


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
    # Diverged and failed replicates count against the cell; pruned ones do not.
    ci = stats.binomtest(2, 6).proportion_ci(0.95, method="exact")
    assert relu["fail_rate"] == pytest.approx(2 / 6)
    assert (relu["fail_low"], relu["fail_high"]) == pytest.approx((ci.low, ci.high))
    assert elu["fail_rate"] == pytest.approx(1 / 4)
    assert "2 of 6 replicates failed" in relu["reason"]
    assert relu["flagged"] and not elu["flagged"]
    assert relu["mean"] == pytest.approx(np.mean([0.90, 0.91, 0.92, 0.93]))
    assert (elu["n_finished"], elu["n_pruned"], elu["n_failed"]) == (3, 1, 1)
    assert elu["mean"] == pytest.approx(0.85)
    assert (tanh["n_finished"], tanh["n_failed"]) == (0, 3)
    assert tanh[["mean", "std", "ci_low", "ci_high", "p_best"]].isna().all()
    assert not tanh["tied_with_best"] and not tanh["is_best"] and pd.isna(tanh["rank"])
    assert tanh["verdict"] == "worse" and tanh["fail_rate"] == 1.0
    assert s.index[-1] == "tanh|mse"  # kept, last
    assert s["p_best"].sum() == pytest.approx(1.0)
    pd.testing.assert_series_equal(prob_best(runs, "acc", True).sort_index(),
                                   s["p_best"].sort_index(), check_names=False)
    assert "2 of 6 replicates failed or diverged (95% CI" in lines(s)[0]
    assert "count against" in FAILED_REPLICATE_POLICY


def test_a_cell_that_diverged_twice_with_one_lucky_replicate_is_never_best():
    # The survivorship case: 1 finished replicate at 0.980 and 2 diverged.
    runs = frame(rows("sigmoid", "mae", [0.980]), rows("sigmoid", "mae", [np.nan] * 2,
                                                        "diverged", first=1),
                 rows("relu", "ce", [0.975, 0.976, 0.974]))
    s = summary(runs)
    assert s.loc["relu|ce", "is_best"] and not s.loc["sigmoid|mae", "is_best"]
    assert s.loc["sigmoid|mae", "verdict"] == "undecided"
    assert np.isnan(s.loc["sigmoid|mae", "p_best"])
    assert s.loc["sigmoid|mae", "fail_rate"] == pytest.approx(2 / 3)


def test_one_replicate_per_cell_gives_no_intervals_and_main_effects_only():
    runs = frame(rows("relu", "mse", [0.90]), rows("relu", "ce", [0.80]),
                 rows("tanh", "mse", [0.86]), rows("tanh", "ce", [0.71]),
                 rows("elu", "mse", [0.88]), rows("elu", "ce", [0.77]))
    s = summary(runs)
    assert s[["ci_low", "ci_high"]].isna().all().all()
    assert set(s["ci_method"]) == {"none"}
    # No cell has 2 finished replicates: none is best (nor champion), all are undecided.
    assert not s["is_best"].any() and set(s["verdict"]) == {"undecided"}
    assert lines(s) == ["No cell has 2 finished replicates, so no cell is best and none is "
                        "champion."]
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
    # The seed (replicate) block is fitted, then the main effects.
    direct = anova_lm(smf.ols("acc ~ C(replicate) + C(act) + C(loss)", data=done).fit(), typ=2)
    np.testing.assert_allclose(effects.loc[[BLOCK, "act", "loss", "residual"], "sum_sq"],
                               direct["sum_sq"])
    assert not effects.attrs["balanced"] and effects.attrs["residual"] == MIXED


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
    # Balanced (every pair, 4 replicates, each seed in every cell): shares are a partition.
    table = effects.reset_index()
    assert table.attrs["balanced"] and table.attrs["residual"] == NOISE
    assert table["share"].sum() == pytest.approx(1.0)
    top = table.iloc[table["share"].iloc[1:-1].idxmax()]
    assert answer.top_term(table, FACTORS).startswith(
        f"{top['term']} explains {100 * top['share']:.0f}% of the variance (95% CI ")
    # One cell makes the whole pattern: the leave-one-cell-out check says so and names it.
    assert "one cell, act=tanh with loss=ce, makes" in influence_sentence(tables.means, "act",
                                                                          "loss")


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
    assert effects["term"].tolist() == [BLOCK, *names, "hidden activation:loss(fn)", "residual"]
    direct = anova_lm(smf.ols("acc ~ C(replicate) + C(act) * C(loss)", data=runs).fit(), typ=2)
    np.testing.assert_allclose(effects["sum_sq"], direct["sum_sq"])
    np.testing.assert_allclose(effects["df"], direct["df"])
    np.testing.assert_allclose(effects["p_value"], direct["PR(>F)"], equal_nan=True)
    total = ((runs["acc"] - runs["acc"].mean()) ** 2).sum()
    np.testing.assert_allclose(effects["share"], direct["sum_sq"] / total)
    sequential = anova_lm(smf.ols("acc ~ C(replicate) + C(act) * C(loss)", data=runs).fit(),
                          typ=1)
    assert not np.allclose(effects["sum_sq"], sequential["sum_sq"])
    assert not np.isclose(effects["share"].sum(), 1.0)
    assert (effects["share_ci_low"] <= effects["share_ci_high"]).all()
    assert effects.attrs["anova_type"] == 2
    # Unbalanced: the largest term is named by its F, never as a share that "explains" X%.
    assert not effects.attrs["balanced"] and effects.attrs["residual"] == NOISE
    sentence = answer.top_term(effects, names)
    top = effects.iloc[effects["F"].iloc[1:-1].idxmax()]
    assert f" is the largest term (F = {top['F']:.3g}" in sentence and "explains" not in sentence


def test_share_intervals_resample_whole_seeds():
    # Cells differ a lot, replicates hardly at all (a tiny shared seed effect): resampling whole
    # seeds barely moves the shares, whereas resampling replicates within cells would break the
    # seed blocks apart and let the block absorb part of the factors.
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
    pd.testing.assert_frame_equal(cell_summary(runs, FACTORS, "acc", True, draws=500),
                                  cell_summary(shuffled, FACTORS, "acc", True, draws=500))
    first = factor_effects(runs, FACTORS, "acc", seed=4, n_boot=30)
    pd.testing.assert_frame_equal(first, factor_effects(runs, FACTORS, "acc", seed=4, n_boot=30))
    other = factor_effects(runs, FACTORS, "acc", seed=5, n_boot=30)
    assert not np.allclose(first["share_ci_low"], other["share_ci_low"])


def test_an_interaction_spread_over_cells_is_not_blamed_on_one():
    runs = synthetic(None)
    # A crossing pattern: tanh gains on ce and loses on mse, elu the reverse.
    swing = {("tanh", "ce"): 0.02, ("tanh", "mse"): -0.02, ("elu", "ce"): -0.02,
             ("elu", "mse"): 0.02}
    runs["acc"] += [swing.get((a, b), 0.0) for a, b in zip(runs["act"], runs["loss"],
                                                           strict=True)]
    means = interaction_tables(runs, "act", "loss", "acc").means
    assert influence_sentence(means, "act", "loss").startswith(
        "Leave-one-cell-out: no single cell makes the interaction pattern")


def _three_way(replicates: int, seed_sd: float = 0.0) -> pd.DataFrame:
    """A 2 x 2 x 2 grid whose only effect is a pure three-way interaction (+-0.01)."""
    rng = np.random.default_rng(3)
    seeds = rng.normal(0, seed_sd, replicates)
    out = []
    for a, b, c in product((0, 1), repeat=3):
        sign = 1 if (a + b + c) % 2 else -1
        y = 0.9 + 0.01 * sign + seeds + rng.normal(0, 0.001, replicates)
        out += [{"cell": f"{a}{b}{c}", "a": f"a{a}", "b": f"b{b}", "c": f"c{c}",
                 "replicate": r, "status": "finished", "acc": v} for r, v in enumerate(y)]
    return pd.DataFrame(out)


def test_a_three_way_interaction_is_fitted_when_replicates_allow():
    effects = factor_effects(_three_way(3), ["a", "b", "c"], "acc", n_boot=0).set_index("term")
    assert effects.loc["a:b:c", "share"] > 0.9 and effects.loc["a:b:c", "p_value"] < 1e-6
    assert effects.loc["residual", "share"] < 0.05
    assert effects.attrs["residual"] == NOISE and effects.attrs["balanced"]


def test_without_replicates_the_residual_is_labelled_as_holding_interactions():
    effects = factor_effects(_three_way(1), ["a", "b", "c"], "acc", n_boot=0).set_index("term")
    assert np.isnan(effects.loc["a:b:c", "sum_sq"])
    assert effects.attrs["residual"] == MIXED
    assert effects.loc["residual", "note"].startswith("higher-order interactions + noise")


def test_the_seed_block_takes_the_shared_seed_effect_out_of_the_residual():
    runs = _three_way(4, seed_sd=0.01)
    blocked = factor_effects(runs, ["a", "b", "c"], "acc", n_boot=0).set_index("term")
    assert blocked.loc[BLOCK, "p_value"] < 1e-6
    direct = anova_lm(smf.ols("acc ~ C(replicate) + C(a) * C(b) * C(c)", data=runs).fit(), typ=2)
    assert blocked.loc["residual", "sum_sq"] == pytest.approx(direct.loc["Residual", "sum_sq"])
    # Without the block the seed effect would sit in the residual: far larger.
    unblocked = anova_lm(smf.ols("acc ~ C(a) * C(b) * C(c)", data=runs).fit(), typ=2)
    assert unblocked.loc["Residual", "sum_sq"] > 20 * blocked.loc["residual", "sum_sq"]
