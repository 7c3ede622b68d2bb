"""The report's figures and page sections, each with two sentences on how to read it."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from pipeline.report import answer as words
from pipeline.report import effects as fx
from pipeline.report import (
    explain,
    figures,
    layers,
    page,
    published,
    rungs,
    statistics,
    verdicts,
)
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
        made.append(figures.interaction(found.interaction, found.board, found.row, found.col,
                                        found.metric, folder / "interaction.png"))
    if not found.curves.empty:
        label = f"validation {task_spec(found.sweep.task).epoch_metric}"
        made.append(figures.banded(found.curves.assign(step=found.curves["step"] + 1),
                                   found.row, found.col, "value", folder / "curves.png",
                                   label, title=label))
    made += _diagnostic_figures(found, folder)
    made += _layer_figures(found, folder)
    return [p.name for p in made]


# Per-layer figures of deeper networks: file -> the diagnostics drawn, axis label, log scale.
LAYER_FIGURES = {
    "layers_grad.png": (("grad_norm",), "gradient norm", True),
    "layers_units.png": (("dead", "sat"), "dead (ReLU) or saturated fraction", False),
}
LAYER_AXIS = "hidden layer (1 = nearest the input)"


def _layer_rows(found: Analysis, name: str) -> pd.DataFrame:
    if found.per_layer.empty:
        return pd.DataFrame()
    parts = [layers.by_layer(found.per_layer, stat) for stat in LAYER_FIGURES[name][0]]
    return pd.concat([p for p in parts if not p.empty] or [pd.DataFrame()], ignore_index=True)


def _layer_figures(found: Analysis, folder: Path) -> list[Path]:
    made = []
    for name, (_, label, log) in LAYER_FIGURES.items():
        rows = _layer_rows(found, name)
        if not rows.empty:
            made.append(figures.banded(rows, "when", "configuration", "value", folder / name,
                                       label, log=log, title=label, xlabel=LAYER_AXIS))
    return made


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
        "leaderboard says which. The colours span the cells inside Tukey's fences (1.5 "
        "interquartile ranges beyond the quartiles), so one far-off cell does not make the rest "
        "look alike; a cell beyond them is grey and marked off scale."),
    "effects.png": Figure(
        "effects.png", "Which factor matters most",
        "Each bar is a term's sum of squares over the total (eta squared) in the factorial "
        "ANOVA blocked on seed, with a bootstrap 95% interval; the bars partition the variance "
        "only in a balanced design. The grey residual bar is what the fitted terms leave: seed "
        "noise, plus any interactions the design could not fit (the Factor analysis says)."),
    "interaction.png": Figure(
        "interaction.png", "Which pairs are best, and which work better together than apart",
        "Left: each pair's rank by mean (#1 = best), the answer to which pairs to use. Right: "
        "the deviation from additivity, each pair's mean minus what its two main effects add "
        "up to: blue pairs do better together than their factors do on average, red ones "
        "worse, values near zero mean the two choices act independently. A blue pair can still "
        "rank low (a weak pair rescued a little by the combination): read the left panel for "
        "the ranking."),
    "curves.png": Figure(
        "curves.png", "Validation metric per epoch",
        "One panel per row factor, one colour and line style per column factor; the line is "
        "the mean over replicates and the band spans the lowest to the highest replicate. "
        "Bands that overlap at the last epoch are not separated by the training budget."),
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
    "layers_grad.png": Figure(
        "layers_grad.png", "Gradient norm, layer by layer",
        "Each hidden layer's gradient norm on the probe batch (log scale), layer 1 nearest the "
        "input, at initialization and after the last epoch; one line per configuration, the "
        "mean over replicates with their range as a band. A line falling towards layer 1 is "
        "the vanishing gradient: the lower layers receive less signal than the upper ones. "
        "The table below gives the ratio of layer 1's norm to the last layer's."),
    "layers_units.png": Figure(
        "layers_units.png", "Dead or saturated units, layer by layer",
        "Per hidden layer, the fraction of dead units (ReLU: zero on every probe example) or "
        "of saturated ones (bounded activations: within 5% of a bound), at initialization and "
        "after the last epoch. Dead units pass back no gradient and never recover."),
    "diag_out.png": Figure(
        "diag_out.png", "Gradient at the output",
        "The mean per-example norm of the loss gradient with respect to the output layer's "
        "pre-activations (log scale). Cross-entropy's gradient is p - y; MSE and MAE through a "
        "softmax shrink it when the network is confidently wrong, which this panel shows."),
}


LEADERBOARD, FACTORS, WHY, METHOD = ("Leaderboard", "Factor analysis",
                                     "Why: what the diagnostics measured", "Method")


def page_for(found: Analysis, champion: Champion | None, ui: str = "",
             compared: published.Comparison | None = None) -> str:
    """``ui``: the MLflow UI's address, for links to each replicate's run ('' for none).
    ``compared``: a study's published figures beside the measured ones, shown first."""
    sections = [(LEADERBOARD, _leaderboard(found, ui)),
                ("Figures", "".join(page.figure(FIGURES[n]) for n in
                                    ("heatmap.png", "effects.png", "interaction.png",
                                     "curves.png") if n in _made(found)))]
    if found.effects is not None:
        sections.append((FACTORS, page.paragraphs(_effects_notes(found))
                         + page.table(_effects_table(found.effects))))
    pruned = rungs.rung_table(found.sweep.runs, found.curves, found.factors, _val(found))
    if pruned is not None:
        sections.append(("Pruned by successive halving",
                         page.paragraphs([rungs.summary(found.sweep.runs)])
                         + page.table(pruned)))
    sections.append((WHY, _why(found)))
    sections.append((METHOD, page.paragraphs(_method(found), "method")))
    lead = _lead(found, champion)
    if compared is not None:
        sections.insert(0, (published.SECTION, _published(compared)))
        lead = [(line, published.SECTION) for line in compared.lines] + lead
    return page.render(f"Sweep {found.sweep.experiment}", lead, sections)


def _published(compared: published.Comparison) -> str:
    body = page.paragraphs(compared.lines)
    if not compared.table.empty:
        body += page.table(compared.table)
    return body + page.bullets(compared.method, "method")


def _lead(found: Analysis, champion: Champion | None) -> list[page.Line]:
    """The first screen: the verdict and how sure (with the intervals), the strongest factor,
    why in one sentence, each linked to the section behind it."""
    board, factors = found.board, found.factors
    verdict = [*words.verdict_lines(board, factors),
               words.test_line(board, factors, found.test_metric)]
    lines: list[page.Line] = [(line, LEADERBOARD) for line in verdict if line]
    lines.append((f"How sure: {_how_sure(found)}", METHOD))
    top = words.top_term(found.effects, factors)
    if top:
        lines.append((top, FACTORS))
    if len(found.explanations) > 1:  # the best cell against the median one
        lines.append((f"Why: {found.explanations[1]}", WHY))
    lines += [line for line in found.answer if line not in verdict and line != top]
    if champion:
        lines.append(f"Champion: {champion.configuration} ({champion.metric}="
                     f"{champion.value:.4f}), registered as {champion.uri} (version "
                     f"{champion.version}). {found.decision}")
    return lines


def _how_sure(found: Analysis) -> str:
    board = found.board
    low, high = int(board["n_finished"].min()), int(board["n_finished"].max())
    pairing = "paired by seed" if board.attrs.get("paired") else "unpaired"
    count = f"{low}" if low == high else f"{low} to {high}"
    return (f"{count} finished replicates per cell; 95% Student-t "
            f"intervals of the difference to the best ({pairing}), ties judged within "
            f"±{board.attrs.get('min_effect', statistics.DEFAULT_MIN_EFFECT):g}.")


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


def _leaderboard(found: Analysis, ui: str) -> str:
    classes = [v if v in ("best", "tied") else "" for v in found.board["verdict"]]
    classes = [f"{c} flagged".strip() if f else c
               for c, f in zip(classes, found.board["flagged"], strict=True)]
    shown = found.compact
    note = ""
    if ui:  # the replicates column links each replicate's run
        shown = shown.assign(replicates=[
            (f"{text}:", *_run_links(found, cell, ui))
            for text, cell in zip(shown["replicates"], found.board["cell"], strict=True)])
        note = (f" In the replicates column, r0, r1, ... open each replicate's run in the "
                f"MLflow UI at {ui} (make ui serves it); ✗ marks one that did not finish.")
    return (page.table(shown, classes)
            + '<p>Also as <a href="leaderboard.csv">CSV</a> (every statistic), '
              '<a href="leaderboard.md">Markdown</a> and <a href="runs.csv">one row per '
              f"run</a>.{html.escape(note)}</p>")


def _run_links(found: Analysis, cell: str, ui: str) -> tuple[page.Link, ...]:
    """Links to the cell's replicate runs, by replicate; one that did not finish is marked ✗
    (the replicates column says how each ended)."""
    runs = found.sweep.runs
    mine = runs[runs["cell"] == cell].sort_values("replicate")
    return tuple(page.Link(f"r{int(r['replicate'])}" + ("" if r["status"] == statistics.FINISHED
                                                       else "✗"),
                           run_link(ui, found.sweep.experiment_id, r["run_id"]))
                 for _, r in mine.iterrows())


def run_link(ui: str, experiment_id: str, run_id: str) -> str:
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


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
    parts += _layers_part(found)
    if not found.correlations.empty or found.proxies:
        parts.append("<h3>Which early signals predicted the outcome</h3>")
        parts.append(page.paragraphs([_predictors_text(found), *_proxy_lines(found)]))
        if not found.correlations.empty:
            parts.append(page.table(found.correlations.head(12)))
    parts.append("<h3>Why cards</h3>")
    parts.append('<div class="cards">' + "".join(_cards(found)) + "</div>")
    return "".join(parts)


def _layers_part(found: Analysis) -> list[str]:
    shown = [n for n in LAYER_FIGURES if not _layer_rows(found, n).empty]
    if not shown:
        return []
    parts = ["<h3>Layer by layer</h3>", *(page.figure(FIGURES[n]) for n in shown)]
    ratios = layers.gradient_ratios(found.per_layer, "configuration")
    if not ratios.empty:
        parts.append(page.paragraphs([
            "First hidden layer's gradient norm over the last one's (geometric mean over "
            "replicates): below 1 the gradient shrinks on its way down to the input."]))
        parts.append(page.table(ratios))
    return parts


def _predictors_text(found: Analysis) -> str:
    return ("Spearman rank correlation between each diagnostic at initialization (epoch 0) or "
            f"after one epoch and the final {found.metric}: across finished runs (rho), and "
            "within factor levels (rho_within: both ranked, each factor's levels partialled "
            "out by least squares with statsmodels, p_within from the partial correlation's t "
            "test). Only rho_within says something the configuration does not already say; "
            "the table is sorted by it. A strong rho_within at epoch 0 or 1 is a signal a sweep "
            "could prune on.")


def _proxy_lines(found: Analysis) -> list[str]:
    """Diagnostics the configuration fixes, named so that nobody reads them as signals."""
    by_factor: dict[str, list[str]] = {}
    for key, epoch, factor in found.proxies:
        by_factor.setdefault(factor, []).append(f"{key.removeprefix('diag.')} (epoch {epoch})")
    return [f"Not signals: {', '.join(keys)} are fixed by {factor} (its levels explain at "
            f"least {100 * explain.PROXY_SHARE:.0f}% of their spread). They restate the "
            "factor, known before training, and are left out of the table."
            for factor, keys in by_factor.items()]


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
