"""The report's figures and page sections, each with two sentences on how to read it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.report import effects as fx
from pipeline.report import explain, figures, halving, page, statistics, verdicts
from pipeline.report.analysis import Analysis
from pipeline.report.champion import Champion
from pipeline.report.page import Figure
from pipeline.tasks import task_spec

# Hidden-layer signal per cell: saturation for bounded units, dead fraction for ReLU-like.
HIDDEN = ("diag.h1.sat", "diag.h1.dead")


def write_figures(found: Analysis, folder: Path) -> list[str]:
    """Draw every figure the page shows; returns their file names."""
    made = [figures.heatmap(found.board, found.row, found.col, found.metric,
                            folder / "heatmap.png")]
    if found.effects is not None:
        made.append(figures.effects(found.effects, folder / "effects.png"))
    if found.interaction is not None:
        made.append(figures.interaction(found.interaction, found.row, found.col, found.metric,
                                        folder / "interaction.png"))
    if not found.curves.empty:
        label = f"validation {task_spec(found.sweep.task).epoch_metric}"
        made.append(figures.banded(found.curves.assign(step=found.curves["step"] + 1),
                                   found.row, found.col, "value", folder / "curves.png",
                                   label, title=label))
    made += _diagnostic_figures(found, folder)
    return [p.name for p in made]


def _diagnostic_figures(found: Analysis, folder: Path) -> list[Path]:
    d = found.diag
    if d.empty:
        return []
    hidden = d[d["diagnostic"].isin(HIDDEN)]
    plots = [(hidden, "diag_hidden.png", "saturated (sigmoid/tanh) or dead (ReLU) fraction",
              False),
             (d[d["diagnostic"] == "diag.h1.grad_norm"], "diag_grad.png",
              "first hidden layer's gradient norm", True),
             (d[d["diagnostic"] == "diag.out.grad_logits"], "diag_out.png",
              "output-gradient norm per example", True)]
    return [figures.banded(part, found.row, found.col, "value", folder / name, label, log=log,
                           title=label)
            for part, name, label, log in plots if not part.empty]


FIGURES = {
    "heatmap.png": Figure(
        "heatmap.png", "Mean ranking metric per configuration",
        "Each cell is the mean over its replicates of the metric cells are ranked by, with the "
        "half-width of its 95% Student-t interval; the star marks the best cell and pink frames "
        "the cells tied with it within min_effect. An unframed cell is worse or undecided: the "
        "leaderboard says which."),
    "effects.png": Figure(
        "effects.png", "Which factor matters most",
        "Each bar is a term's sum of squares over the total (eta squared) in the factorial "
        "ANOVA blocked on seed, with a bootstrap 95% interval; the bars partition the variance "
        "only in a balanced design. The grey residual bar is what the fitted terms leave: seed "
        "noise, plus any interactions the design could not fit (the Factor analysis says)."),
    "interaction.png": Figure(
        "interaction.png", "Which pairs work well together",
        "Each cell is the pair's mean minus what its two main effects add up to: blue pairs do "
        "better together than their factors do on average, red ones worse. Values near zero "
        "mean the two choices act independently."),
    "curves.png": Figure(
        "curves.png", "Validation metric per epoch",
        "One panel per row factor, one colour per column factor; the line is the mean over "
        "replicates and the band spans the lowest to the highest replicate. Bands that overlap "
        "at the last epoch are not separated by the training budget."),
    "diag_hidden.png": Figure(
        "diag_hidden.png", "Saturated or dead hidden units",
        "The fraction of the first hidden layer's units that are saturated (bounded "
        "activations: output within 5% of a bound) or dead (ReLU: zero for every probe "
        "example), measured on a fixed validation probe at initialization (epoch 0) and after "
        "each epoch. High values mean units that pass back little or no gradient."),
    "diag_grad.png": Figure(
        "diag_grad.png", "Gradient reaching the first hidden layer",
        "The norm of the loss gradient with respect to the first hidden layer's weights on the "
        "probe batch (log scale). Configurations whose line sits far below the others learn "
        "slowly in their early layers: the vanishing gradient, measured."),
    "diag_out.png": Figure(
        "diag_out.png", "Gradient at the output",
        "The mean per-example norm of the loss gradient with respect to the output layer's "
        "pre-activations (log scale). Cross-entropy's gradient is p - y; MSE and MAE through a "
        "softmax shrink it when the network is confidently wrong, which this panel shows."),
}


def page_for(found: Analysis, champion: Champion | None) -> str:
    sections = [("Leaderboard", _leaderboard(found)),
                ("Figures", "".join(page.figure(FIGURES[n]) for n in
                                    ("heatmap.png", "effects.png", "interaction.png",
                                     "curves.png") if n in _made(found)))]
    if found.effects is not None:
        sections.append(("Factor analysis", page.paragraphs(_effects_notes(found))
                         + page.table(_effects_table(found.effects))))
    rungs = halving.rung_table(found.sweep.runs, found.curves, found.factors, _val(found))
    if rungs is not None:
        sections.append(("Pruned by successive halving",
                         page.paragraphs([halving.summary(found.sweep.runs)])
                         + page.table(rungs)))
    sections.append(("Why: what the diagnostics measured", _why(found)))
    sections.append(("Method", page.paragraphs(_method(found), "method")))
    answer = list(found.answer)
    if champion:
        answer.append(f"Champion: {champion.configuration} ({champion.metric}="
                      f"{champion.value:.4f}), registered as {champion.uri} (version "
                      f"{champion.version}). {found.decision}")
    return page.render(f"Sweep {found.sweep.experiment}", answer, sections)


def _val(found: Analysis) -> str:
    return f"val_{task_spec(found.sweep.task).epoch_metric}"


def _made(found: Analysis) -> set[str]:
    names = {"heatmap.png"}
    if found.effects is not None:
        names.add("effects.png")
    if found.interaction is not None:
        names.add("interaction.png")
    if not found.curves.empty:
        names.add("curves.png")
    return names


def _leaderboard(found: Analysis) -> str:
    classes = [v if v in ("best", "tied") else "" for v in found.board["verdict"]]
    classes = [f"{c} flagged".strip() if f else c
               for c, f in zip(classes, found.board["flagged"], strict=True)]
    return (page.table(found.compact, classes)
            + '<p>Also as <a href="leaderboard.csv">CSV</a> (every statistic), '
              '<a href="leaderboard.md">Markdown</a> and <a href="runs.csv">one row per '
              "run</a>.</p>")


def _effects_notes(found: Analysis) -> list[str]:
    e = found.effects
    residual = e.attrs.get("residual", fx.NOISE)
    lines = [f"The residual holds {residual}."]
    if e.attrs.get("balanced"):
        lines.append("The design is balanced, so the shares partition the variance.")
    else:
        lines.append("The design is unbalanced (missing cells or unequal replicates): the "
                     "shares are type II sums of squares over the total and need not add up "
                     "to 100%; read F and p instead.")
    return [*lines, found.influence] if found.influence else lines


def _effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    out = effects[["term", "df", "F", "p_value", "share", "share_ci_low", "share_ci_high"]].copy()
    out["term"] = out["term"].str.replace(":", " × ")
    return out


def _why(found: Analysis) -> str:
    if found.diag.empty:
        return page.paragraphs(["This sweep logged no diagnostics (diagnostics_probe_rows: 0)."])
    parts = [page.bullets(found.explanations, "why")]
    parts += [page.figure(FIGURES[n]) for n in ("diag_hidden.png", "diag_grad.png",
                                                 "diag_out.png")
              if not found.diag[found.diag["diagnostic"].isin(_keys(n))].empty]
    if not found.correlations.empty:
        parts.append("<h3>Which early signals predicted the outcome</h3>")
        parts.append(page.paragraphs([
            "Spearman rank correlation, across finished runs, between each diagnostic at "
            "initialization (epoch 0) or after one epoch and the final " + found.metric
            + ". Strong correlations at epoch 0 or 1 are signals a sweep could prune on."]))
        parts.append(page.table(found.correlations.head(12)))
    parts.append("<h3>Why cards</h3>")
    parts.append('<div class="cards">' + "".join(_cards(found)) + "</div>")
    return "".join(parts)


def _keys(name: str) -> tuple[str, ...]:
    return {"diag_hidden.png": HIDDEN, "diag_grad.png": ("diag.h1.grad_norm",),
            "diag_out.png": ("diag.out.grad_logits",)}[name]


def _cards(found: Analysis) -> list[str]:
    """Per cell: each signal's mean over replicates at epoch 0, 1 and the last epoch."""
    out = []
    done = found.diag[found.diag["status"] == statistics.FINISHED]
    for _, cell in found.board.iterrows():
        mine = done[done["cell"] == cell["cell"]]
        if mine.empty:
            continue
        last = int(mine["step"].max())
        table = (mine[mine["step"].isin([0, 1, last])]
                 .pivot_table(index="diagnostic", columns="step", values="value", aggfunc="mean")
                 .reindex([k for k in explain.SIGNALS if k in set(mine["diagnostic"])]))
        table = table.map(lambda v: f"{v:.3g}" if pd.notna(v) else "")
        table.columns = [f"epoch {c}" for c in table.columns]
        table.insert(0, "signal", [k.removeprefix("diag.") for k in table.index])
        title = " + ".join(str(cell[f]) for f in found.factors)
        out.append(page.card(f"{title}: {cell['mean']:.4f}", table.reset_index(drop=True)))
    return out


def _method(found: Analysis) -> list[str]:
    board = found.board
    m = board.attrs.get("min_effect", statistics.DEFAULT_MIN_EFFECT)
    paired = ("Replicate k of every cell trains with the same seed (initial weights and data "
              "order: common random numbers), so differences are paired by seed."
              if board.attrs.get("paired") else
              "Seeds are not shared across cells here, so differences are unpaired (Welch).")
    ranking = (f"Cells are ranked on {found.metric}; the held-out {found.test_metric} is "
               f"quoted once, for the chosen cells, and plays no part in the choice."
               if found.test_metric else f"Cells are ranked on {found.metric}.")
    return [
        ranking, statistics.INTERVAL_METHOD, paired,
        verdicts.METHOD + f" Here min_effect = {m:g} (the sweep's report.min_effect).",
        statistics.P_BEST_METHOD, statistics.FAILED_REPLICATE_POLICY,
        "The factor analysis is an ordinary least squares model (statsmodels formula API, "
        "type II ANOVA) with the seed as a block where seeds are shared across cells, every "
        "factor's main effect and every interaction up to the full factorial that the "
        "replicates can estimate; what is left out is named in the residual. A term's share "
        "is its sum of squares over the total, with a percentile bootstrap interval from "
        "resampling whole seeds (replicates within cells where there is no block); shares "
        "are a partition only in a balanced "
        "design. The interaction table is checked by leaving out one cell at a time.",
        "Diagnostics are measured on every rank on the same fixed probe batch of validation "
        "rows (pipeline.train.rank.diagnostics); the explanations quote them after one epoch "
        "and name only differences larger than a quarter of the larger value.",
    ]
