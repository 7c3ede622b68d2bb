"""Which factors matter: a factorial ANOVA over replicates, and two-way interaction tables.

``factor_effects`` fits ``metric ~ C(a) + C(b) + ... + C(a):C(b) + ...`` by OLS (statsmodels
formula API) on finished replicates and reports each term's share of the variance (eta squared)
with a bootstrap interval. ``interaction_table`` shows where a pair of factors departs from the
sum of its main effects. Pure functions over pandas frames; importing the module does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
import patsy
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from pipeline.report.statistics import finished_runs

RESIDUAL = "residual"
COLUMNS = ["term", "df", "sum_sq", "F", "p_value", "share", "share_ci_low", "share_ci_high",
           "note"]


@dataclass(frozen=True)
class Term:
    """A model term: ``label`` uses the real factor names ("loss", "activation:loss"),
    ``formula`` the internal safe ones ("C(f1)", "C(f0):C(f1)")."""

    label: str
    formula: str


@dataclass
class Design:
    """Finished replicates under safe names, the terms to fit and the terms left out (and why)."""

    data: pd.DataFrame
    terms: list[Term] = field(default_factory=list)
    dropped: list[tuple[Term, str]] = field(default_factory=list)

    @property
    def formula(self) -> str:
        return "y ~ " + (" + ".join(t.formula for t in self.terms) or "1")


@dataclass(frozen=True)
class InteractionTables:
    """Pivots over two factors: the cell means and their interaction residuals."""

    means: pd.DataFrame
    residual: pd.DataFrame


def _safe_data(runs: pd.DataFrame, factors: Sequence[str], metric: str) -> pd.DataFrame:
    """Finished replicates with factors renamed f0, f1, ... and their levels l0, l1, ...

    Factor names and values come from sweep configs and may hold '(', '+' or spaces, which a
    formula would parse as syntax; internal names sidestep quoting altogether.
    """
    done = finished_runs(runs, metric)
    data = pd.DataFrame({"y": done[metric].to_numpy(float), "cell": done["cell"].to_numpy()})
    for i, name in enumerate(factors):
        codes, _ = pd.factorize(done[name].astype(str), sort=True)
        data[f"f{i}"] = [f"l{c}" for c in codes]
    return data


def _rank(data: pd.DataFrame, terms: list[Term]) -> tuple[int, int]:
    """Rank and column count of the treatment-coded design of ``terms``."""
    x = np.asarray(patsy.dmatrix(" + ".join(t.formula for t in terms) or "1", data))
    return int(np.linalg.matrix_rank(x)), x.shape[1]


def _design(data: pd.DataFrame, factors: Sequence[str]) -> Design:
    """Main effects of varying factors, then each pairwise interaction the data can estimate.

    A term is kept only if the design stays full rank: a partly estimable term (aliased factors,
    level pairs with no finished replicate) has no unambiguous sum of squares, and statsmodels
    would report its degrees of freedom wrongly. An interaction must also leave residual degrees
    of freedom: with one replicate per cell the two-way model fits the data exactly, leaving
    nothing to test the terms against.
    """
    design = Design(data)
    rank = 1
    for i, name in enumerate(factors):
        term = Term(name, f"C(f{i})")
        if data[f"f{i}"].nunique() < 2:
            design.dropped.append((term, "fewer than 2 levels among finished replicates"))
        else:
            rank = _add(design, term, rank, interaction=False)
    kept = [i for i, _ in enumerate(factors) if Term(factors[i], f"C(f{i})") in design.terms]
    for i, j in combinations(kept, 2):
        term = Term(f"{factors[i]}:{factors[j]}", f"C(f{i}):C(f{j})")
        rank = _add(design, term, rank, interaction=True)
    return design


def _add(design: Design, term: Term, rank: int, interaction: bool) -> int:
    """Append ``term`` if estimable (else record why not); return the design's rank."""
    new, columns = _rank(design.data, [*design.terms, term])
    if new == rank:
        why = "not estimable: confounded with the terms before it"
    elif new < columns:
        why = ("not estimable: some level combinations have no finished replicate" if interaction
               else "not estimable: partly confounded with the terms before it")
    elif interaction and new >= len(design.data):
        why = "not estimable: it would leave no residual degrees of freedom"
    else:
        design.terms.append(term)
        return new
    design.dropped.append((term, why))
    return rank


def _anova(data: pd.DataFrame, design: Design, typ: int) -> pd.DataFrame:
    # A saturated model (no residual df) divides by zero for F: NaN there is the honest answer.
    with np.errstate(divide="ignore", invalid="ignore"):
        return anova_lm(smf.ols(design.formula, data=data).fit(), typ=typ)


def _fit(design: Design) -> tuple[pd.DataFrame, int]:
    """Type II sums of squares (each term adjusted for those not containing it) suit unbalanced
    sweeps where some replicates failed; should they fail on a singular design, fall back to
    sequential type I."""
    try:
        table = _anova(design.data, design, 2)
        terms = table.drop(index="Residual")["sum_sq"]
        if np.all(np.isfinite(terms)) and np.all(terms >= 0):
            return table, 2
    except (ValueError, np.linalg.LinAlgError):
        pass
    return _anova(design.data, design, 1), 1


def _shares(table: pd.DataFrame, y: np.ndarray) -> pd.Series:
    """Eta squared: each row's sum of squares over the total (corrected) sum of squares."""
    total = float(np.sum((y - y.mean()) ** 2))
    return table["sum_sq"] / total if total > 0 else table["sum_sq"] * np.nan


def _boot_shares(design: Design, typ: int, n_boot: int, seed: int) -> pd.DataFrame:
    """Shares refitted on resamples of replicates within each cell (the design stays fixed, so
    every kept term stays estimable): the spread is the seed-to-seed uncertainty."""
    rng = np.random.default_rng(seed)
    groups = list(design.data.groupby("cell").indices.values())
    draws = []
    for _ in range(n_boot):
        sample = design.data.iloc[np.concatenate([rng.choice(g, g.size) for g in groups])]
        draws.append(_shares(_anova(sample, design, typ), sample["y"].to_numpy()))
    return pd.DataFrame(draws)


def factor_effects(runs: pd.DataFrame, factors: Sequence[str], metric: str, seed: int = 0,
                   n_boot: int = 1000, confidence: float = 0.95) -> pd.DataFrame:
    """ANOVA table of the factorial model over finished replicates, one row per term.

    Columns: ``COLUMNS``. Terms that could not be estimated appear with NaN statistics and the
    reason in ``note``, never silently missing; ``attrs["note"]`` sums this up and
    ``attrs["anova_type"]`` says which sums of squares were used.
    """
    design = _design(_safe_data(runs, factors, metric), list(factors))
    dropped = [{"term": t.label, "note": why} for t, why in design.dropped]
    notes = [f"{t.label}: {why}" for t, why in design.dropped]
    if len(design.data) < 2 or not design.terms:
        out = pd.DataFrame([*dropped, {"term": RESIDUAL, "note": "nothing to fit"}],
                           columns=COLUMNS)
        out.attrs.update(note="; ".join([*notes, "nothing to fit"]), anova_type=None)
        return out
    table, typ = _fit(design)
    labels = {t.formula: t.label for t in design.terms} | {"Residual": RESIDUAL}
    # With one replicate in every cell, within-cell resampling returns the data unchanged.
    if n_boot > 0 and design.data.groupby("cell").size().max() >= 2:
        boot = _boot_shares(design, typ, n_boot, seed)
    else:
        boot = pd.DataFrame(np.nan, index=[0], columns=table.index)
        notes.append("no bootstrap interval: fewer than 2 replicates in every cell")
    if typ == 1:
        notes.append("type II failed: sequential (type I) sums of squares")
    if table.at["Residual", "df"] < 1:
        notes.append("no residual degrees of freedom: F and p are undefined")
    q = (1 - confidence) / 2
    fitted = pd.DataFrame({
        "term": [labels[i] for i in table.index], "df": table["df"], "sum_sq": table["sum_sq"],
        "F": table["F"], "p_value": table["PR(>F)"],
        "share": _shares(table, design.data["y"].to_numpy()),
        "share_ci_low": boot.quantile(q), "share_ci_high": boot.quantile(1 - q), "note": ""})
    fitted.loc["Residual", "note"] = "; ".join(notes[len(dropped):])
    records = fitted.to_dict("records")
    out = pd.DataFrame([*records[:-1], *dropped, records[-1]], columns=COLUMNS)
    out.attrs.update(note="; ".join(notes), anova_type=typ)
    return out


def interaction_tables(runs: pd.DataFrame, row: str, col: str, metric: str) -> InteractionTables:
    """Cell means over two factors and the two-way decomposition of them.

    residual = cell mean − (grand mean + row main effect + column main effect), computed from
    cell means (each configuration counts once however many replicates finished) averaged over
    any other factors. Positive means the pair scores higher than its main effects predict
    (better, for higher-is-better metrics). With missing combinations the effects are taken over
    the cells present, so the decomposition is then approximate.
    """
    if row == col:
        raise ValueError(f"row and col must be different factors, got {row!r} twice")
    done = finished_runs(runs, metric)
    cells = done.groupby("cell").agg(r=(row, "first"), c=(col, "first"), m=(metric, "mean"))
    means = cells.pivot_table(index="r", columns="c", values="m", aggfunc="mean")
    means = means.rename_axis(index=row, columns=col)
    grand = float(np.nanmean(means.to_numpy())) if means.size else np.nan
    residual = means.sub(means.mean(axis=1), axis=0).sub(means.mean(axis=0), axis=1) + grand
    return InteractionTables(means, residual)


def interaction_table(runs: pd.DataFrame, row: str, col: str, metric: str) -> pd.DataFrame:
    """Pivot of interaction residuals (rows: levels of ``row``, columns: levels of ``col``)."""
    return interaction_tables(runs, row, col, metric).residual
