"""Every hidden layer's diagnostics in networks of more than one: the gradient norm and the
dead or saturated fraction per layer, at initialization and after the last epoch.

A gradient that shrinks from the last hidden layer down to the first is the vanishing
gradient; the ratio of the first layer's norm to the last's says by how much, per cell.
"""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd

from pipeline.report.frame import SweepRuns

HIDDEN_LAYERS = "model.hidden_layers"
STATS = {"grad_norm": "gradient norm", "dead": "dead fraction", "sat": "saturated fraction"}
WHEN = ("at initialization", "after the last epoch")


def depth(sweep: SweepRuns) -> int:
    """The most hidden Dense layers any run of the sweep has (0 when none says)."""
    short = {key: col for col, key in sweep.params.items()}
    column = short.get(HIDDEN_LAYERS, f"params.{HIDDEN_LAYERS}")
    if column not in sweep.runs:
        return 0
    return max((_count(v) for v in sweep.runs[column]), default=0)


def _count(logged: object) -> int:
    try:
        value = ast.literal_eval(str(logged))
    except (ValueError, SyntaxError):
        return 0
    return len(value) if isinstance(value, list | tuple) else 0


def keys(layers: int) -> list[str]:
    """The metric keys to read back: none for a network of one hidden layer (the first
    layer's are the report's other diagnostics)."""
    if layers < 2:
        return []
    return [f"diag.h{k}.{stat}" for k in range(1, layers + 1) for stat in STATS]


def by_layer(diag: pd.DataFrame, stat: str) -> pd.DataFrame:
    """Rows (run, ``when``, ``step`` = layer number, ``value``) of finished runs for ``stat``,
    at initialization and after each run's last epoch, with the runs' other columns."""
    part = diag[diag["diagnostic"].str.endswith(f".{stat}") & (diag["status"] == "finished")]
    if part.empty:
        return part.assign(when=[])
    part = part.assign(layer=part["diagnostic"].str.extract(r"^diag\.h(\d+)\.")[0].astype(int))
    last = part.groupby("run_id")["step"].transform("max")
    init = part[part["step"] == 0].assign(when=WHEN[0])
    end = part[(part["step"] == last) & (last > 0)].assign(when=WHEN[1])
    both = pd.concat([init, end], ignore_index=True)
    both["when"] = pd.Categorical(both["when"], categories=WHEN)  # drawn in this order
    return both.drop(columns="step").rename(columns={"layer": "step"})


def gradient_ratios(diag: pd.DataFrame, label: str) -> pd.DataFrame:
    """Per cell (``label`` names it): the first hidden layer's gradient norm over the last
    one's, at initialization and after the last epoch, as geometric means over replicates.
    Below 1: the gradient shrinks on its way down."""
    rows = by_layer(diag, "grad_norm")
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(when=rows["when"].astype(str))
    per_run = rows.pivot_table(index=["run_id", label, "when"], columns="step", values="value")
    deepest = per_run.notna().sum(axis=1)
    ratio = [r[1] / r[n] if n >= 2 and r[n] > 0 else np.nan
             for (_, r), n in zip(per_run.iterrows(), deepest, strict=True)]
    out = per_run.assign(ratio=ratio, layers=deepest).reset_index()
    out = out[out["layers"] >= 2]
    table = (out.groupby([label, "when"])
             .agg(layers=("layers", "max"),
                  ratio=("ratio", lambda v: float(np.exp(np.log(v).mean()))))
             .reset_index()
             .pivot(index=[label, "layers"], columns="when", values="ratio")
             .reset_index())
    table.columns.name = None
    table = table[[label, "layers", *(w for w in WHEN if w in table.columns)]]
    return table.rename(columns={c: f"first / last layer, {c}" for c in table.columns
                                 if c not in (label, "layers")})
