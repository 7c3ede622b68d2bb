"""Which factors matter: a factorial ANOVA over replicates, and two-way interaction tables.

``factor_effects`` fits ``metric ~ C(seed) + C(a) + C(b) + ... + C(a):C(b) + ... + C(a):C(b):C(c)``
by OLS (statsmodels formula API) on finished replicates: the seed as a block (replicate k of
every cell shares its seed), every main effect, and every interaction up to the full factorial
that the replicates can estimate. Whatever is left out lands in the residual, which is then
labelled "higher-order interactions + noise". Each term's share of the variance (eta squared)
partitions the total only when the design is balanced (every level combination, the same
replicates each); ``attrs["balanced"]`` says which. ``interaction_table`` shows where a pair of
factors departs from the sum of its main effects, and ``influence`` whether one cell alone
makes that pattern. Pure functions over pandas frames; importing the module does nothing.
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

from pipeline.report.statistics import SEED_COLUMN, finished_runs

RESIDUAL = "residual"
BLOCK = "seed (block)"
NOISE = "seed-to-seed noise"
MIXED = "higher-order interactions + noise"
# One cell "makes" the interaction pattern when leaving it out removes this share of it.
ONE_CELL_SHARE = 0.75
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
    """Finished replicates with factors renamed f0, f1, ... and their levels l0, l1, ...; the
    seed (or, without it, the replicate index) as ``blk``.

    Factor names and values come from sweep configs and may hold '(', '+' or spaces, which a
    formula would parse as syntax; internal names sidestep quoting altogether.
    """
    done = finished_runs(runs, metric)
    data = pd.DataFrame({"y": done[metric].to_numpy(float), "cell": done["cell"].to_numpy()})
    for i, name in enumerate(factors):
        codes, _ = pd.factorize(done[name].astype(str), sort=True)
        data[f"f{i}"] = [f"l{c}" for c in codes]
    seed = SEED_COLUMN if SEED_COLUMN in done else "replicate" if "replicate" in done else None
    data["blk"] = [f"s{v}" for v in done[seed]] if seed else "s0"
    return data


def _rank(data: pd.DataFrame, terms: list[Term]) -> tuple[int, int]:
    """Rank and column count of the treatment-coded design of ``terms``."""
    x = np.asarray(patsy.dmatrix(" + ".join(t.formula for t in terms) or "1", data))
    return int(np.linalg.matrix_rank(x)), x.shape[1]


def _design(data: pd.DataFrame, factors: Sequence[str]) -> Design:
    """The seed block, main effects of varying factors, then every interaction (pairs, then
    triples, ... up to the full factorial) the data can estimate.

    A term is kept only if the design stays full rank: a partly estimable term (aliased factors,
    level combinations with no finished replicate) has no unambiguous sum of squares, and
    statsmodels would report its degrees of freedom wrongly. An interaction must also leave
    residual degrees of freedom: with one replicate per cell the full model fits the data
    exactly, leaving nothing to test the terms against. The block is fitted only where seeds
    are crossed with cells (each seed in several cells); otherwise it would stand for cells.
    """
    design = Design(data)
    rank = 1
    if data["blk"].nunique() >= 2 and data.groupby("blk")["cell"].nunique().min() >= 2:
        rank = _add(design, Term(BLOCK, "C(blk)"), rank, interaction=True)
    for i, name in enumerate(factors):
        term = Term(name, f"C(f{i})")
        if data[f"f{i}"].nunique() < 2:
            design.dropped.append((term, "fewer than 2 levels among finished replicates"))
        else:
            rank = _add(design, term, rank, interaction=False)
    kept = [i for i, _ in enumerate(factors) if Term(factors[i], f"C(f{i})") in design.terms]
    for order in range(2, len(kept) + 1):
        for combo in combinations(kept, order):
            term = Term(":".join(factors[i] for i in combo),
                        ":".join(f"C(f{i})" for i in combo))
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


def balanced(data: pd.DataFrame, factors: Sequence[str]) -> bool:
    """Every level combination present with the same number of finished replicates, each
    seed in every cell: then the terms' sums of squares add up to the total."""
    if data.empty:
        return False
    columns = [f"f{i}" for i, _ in enumerate(factors)]
    combos = int(np.prod([data[c].nunique() for c in columns])) if columns else 1
    per_cell = data.groupby("cell").size()
    seeds = pd.crosstab(data["cell"], data["blk"])
    return (data["cell"].nunique() == combos and per_cell.nunique() == 1
            and bool((seeds == 1).all().all() or data["blk"].nunique() == 1))


def residual_label(design: Design) -> str:
    """What the residual holds: seed noise alone, or interactions the design could not fit."""
    left_out = [t for t, _ in design.dropped if ":" in t.formula]
    return MIXED if left_out else NOISE


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


def _resample(data: pd.DataFrame, blocked: bool, rng: np.random.Generator) -> pd.DataFrame:
    """One bootstrap table. Blocked: whole seeds are drawn with replacement (a seed drawn twice
    becomes two blocks), which keeps each seed's shared effect together; resampling replicates
    within cells would break the block apart and let it absorb the factors. Unblocked:
    replicates are drawn within each cell."""
    if not blocked:
        groups = data.groupby("cell").indices.values()
        return data.iloc[np.concatenate([rng.choice(g, g.size) for g in groups])]
    seeds = list(data.groupby("blk").indices.values())
    picks = rng.integers(0, len(seeds), len(seeds))
    return pd.concat([data.iloc[seeds[p]].assign(blk=f"b{j}") for j, p in enumerate(picks)])


def _boot_shares(design: Design, typ: int, n_boot: int, seed: int) -> pd.DataFrame:
    """Shares refitted on bootstrap tables (the model stays fixed): the spread is the
    seed-to-seed uncertainty. A blocked table that lost a cell is skipped: the kept terms
    would no longer be estimable."""
    rng = np.random.default_rng(seed)
    blocked = any(t.label == BLOCK for t in design.terms)
    cells = design.data["cell"].nunique()
    draws = []
    for _ in range(n_boot):
        sample = _resample(design.data, blocked, rng)
        if sample["cell"].nunique() == cells:
            draws.append(_shares(_anova(sample, design, typ), sample["y"].to_numpy()))
    return pd.DataFrame(draws)


def factor_effects(runs: pd.DataFrame, factors: Sequence[str], metric: str, seed: int = 0,
                   n_boot: int = 1000, confidence: float = 0.95) -> pd.DataFrame:
    """ANOVA table of the factorial model over finished replicates, one row per term.

    Columns: ``COLUMNS``. Terms that could not be estimated appear with NaN statistics and the
    reason in ``note``, never silently missing; ``attrs["note"]`` sums this up,
    ``attrs["anova_type"]`` says which sums of squares were used, ``attrs["residual"]`` what
    the residual holds (``NOISE`` or ``MIXED``) and ``attrs["balanced"]`` whether the shares
    partition the variance.
    """
    design = _design(_safe_data(runs, factors, metric), list(factors))
    info = {"residual": residual_label(design), "balanced": balanced(design.data, factors)}
    dropped = [{"term": t.label, "note": why} for t, why in design.dropped]
    notes = [f"{t.label}: {why}" for t, why in design.dropped]
    if len(design.data) < 2 or not design.terms:
        out = pd.DataFrame([*dropped, {"term": RESIDUAL, "note": "nothing to fit"}],
                           columns=COLUMNS)
        out.attrs.update(note="; ".join([*notes, "nothing to fit"]), anova_type=None, **info)
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
    if not info["balanced"]:
        notes.append("unbalanced design: the shares need not add up to 100%")
    fitted.loc["Residual", "note"] = "; ".join([info["residual"], *notes[len(dropped):]])
    records = fitted.to_dict("records")
    out = pd.DataFrame([*records[:-1], *dropped, records[-1]], columns=COLUMNS)
    out.attrs.update(note="; ".join(notes), anova_type=typ, **info)
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


def _additive_ss(means: pd.DataFrame) -> float:
    """Residual sum of squares of the additive (row + column) fit to the cells present, by
    least squares, so that a missing cell does not bias the others' residuals."""
    cells = means.stack().dropna()
    if cells.empty:
        return 0.0
    rows = pd.get_dummies(cells.index.get_level_values(0)).to_numpy(float)
    cols = pd.get_dummies(cells.index.get_level_values(1)).to_numpy(float)
    x = np.column_stack([rows, cols[:, 1:]])
    y = cells.to_numpy(float)
    fit, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(np.sum((y - x @ fit) ** 2))


def influence(means: pd.DataFrame) -> pd.Series:
    """Leave-one-cell-out: the share of the interaction pattern (the additive fit's residual
    sum of squares over the cell means) that disappears when each cell is left out. A share
    near 1 means that one cell alone makes the pattern. Indexed by (row level, column level)."""
    total = _additive_ss(means)
    out = {}
    for key in means.stack().dropna().index:
        without = means.copy()
        without.loc[key[0], key[1]] = np.nan
        out[key] = 1.0 - _additive_ss(without) / total if total > 0 else 0.0
    return pd.Series(out, name="influence", dtype=float)


def influence_sentence(means: pd.DataFrame, row: str, col: str) -> str:
    """One sentence on the leave-one-cell-out check of the interaction table."""
    present = int(means.notna().sum().sum())
    # Leaving a cell out must leave the additive fit something to miss (a 2 x 2 table has not).
    if present - 1 <= means.shape[0] + means.shape[1] - 1:
        return ""
    shares = influence(means)
    (r, c), top = shares.idxmax(), float(shares.max())
    cell = f"{row}={r} with {col}={c}"
    if top >= ONE_CELL_SHARE:
        return (f"Leave-one-cell-out: one cell, {cell}, makes {100 * top:.0f}% of the "
                f"interaction pattern; without it the other cells are close to additive, so "
                f"the interaction table describes that cell rather than the two factors.")
    return (f"Leave-one-cell-out: no single cell makes the interaction pattern (the most "
            f"influential, {cell}, makes {100 * top:.0f}% of it).")
