"""Readable MLflow names for a sweep's runs: ``relu | ce(softmax) | s2``.

A run name is what MLflow's runs table shows first, truncated to a few dozen characters, so
it leads with what a sweep compares (hidden activation | loss(output activation)), then any
other factor the grid varies (``lr=0.01``), then the replicate (``s`` + the ``replicate`` tag:
its seed is training.seed + that). The configuration without the replicate is the cell's
label, tagged on every replicate so the runs view can group by it.

The other factors come from the grid point's name (``hidden_activation=relu,lr=0.1``, see
pipeline.config.grid), which names exactly the keys the sweep file varies.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import RunConfig
    from pipeline.train.contract import Trial

# Short forms, so that a name fits the runs table's column.
LOSS_SHORT = {
    "categorical_crossentropy": "ce",
    "sparse_categorical_crossentropy": "sce",
    "binary_crossentropy": "bce",
    "kl_divergence": "kl",
    "categorical_hinge": "chinge",
    "squared_hinge": "sqhinge",
}
FACTOR_SHORT = {
    "learning_rate": "lr",
    "batch_size": "bs",
    "kernel_initializer": "init",
    "bias_initializer": "bias",
    "hidden_layers": "layers",
    "architecture": "arch",
    "dropout": "drop",
    "name": "opt",  # optimizer.name, the only key of that leaf
}
# Shown in the head of every name, whether the grid varies them or not; the seed is the
# replicate's suffix.
_IN_HEAD = {"hidden_activation", "output_activation", "loss", "seed"}
_REPLICATE_SUFFIX = re.compile(r" #\d+$")
_NEXT_PAIR = re.compile(r",(?=[A-Za-z_]\w*=)")  # a comma that starts another key=value


def short_name(name: str) -> str:
    """A registered name, or the attribute of a ``module:attr`` one (a user's own loss)."""
    name = name.rsplit(":", 1)[-1]
    return LOSS_SHORT.get(name, name)


def cell_label(trial: Trial) -> str:
    """``relu | ce(softmax)``, then the other swept factors: the cell, every replicate alike."""
    head = _head(trial.config)
    extra = " ".join(f"{FACTOR_SHORT.get(k, k)}={v}" for k, v in swept(trial.name)
                     if k not in _IN_HEAD)
    return f"{head} | {extra}" if extra else head


def run_name(trial: Trial) -> str:
    """The cell's label and the replicate: ``relu | ce(softmax) | s2``."""
    return f"{cell_label(trial)} | s{trial.replicate}"


def swept(point_name: str) -> list[tuple[str, str]]:
    """The (key, value) pairs of a grid point's name; none for a grid without axes."""
    name = _REPLICATE_SUFFIX.sub("", point_name)
    pairs = [p.split("=", 1) for p in _NEXT_PAIR.split(name) if "=" in p]
    return [(k.strip(), v.strip()) for k, v in pairs]


def _head(cfg: RunConfig) -> str:
    m = cfg.model
    loss = f"{short_name(cfg.loss)}({short_name(m.output_activation)})"
    return f"{short_name(m.hidden_activation)} | {loss}"
