"""A study: a sweep, the published figures it reproduces, and how agreement is judged.

``conf/study/<name>.yaml`` names its sweep file (relative to the study file), the source and
the table the figures come from, the run metric they are compared with and the units the
source states them in, one entry per published cell (the configuration keys that pick the
cell out of the sweep's grid, and the value), and a ``quick`` block of overrides of the sweep
file for the study (``overrides``) and for its short form (``quick``, ``make study QUICK=1``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.config.grid import expand_grid, flatten, to_dict
from pipeline.config.known import check_names
from pipeline.config.parse import parse, read_yaml
from pipeline.config.schema import SweepConfig
from pipeline.errors import ConfigError

# How a source states its figures, and how each becomes a value of the compared run metric.
UNITS = {
    "error_percent": lambda v: 1.0 - v / 100.0,   # "1.64" (% test error) -> accuracy 0.9836
    "accuracy_percent": lambda v: v / 100.0,
    "accuracy": lambda v: v,
    "value": lambda v: v,                          # already in the metric's own terms
}


@dataclass(frozen=True)
class PublishedCell:
    """One published figure: the configuration keys that pick its cell out of the sweep's
    grid (``model.hidden_activation: tanh``), and the value as the source states it."""

    where: dict[str, Any]
    value: float
    label: str = ""  # the source's own name for the row ("Tanh N")


@dataclass(frozen=True)
class StudyConfig:
    name: str
    title: str
    sweep: str  # the sweep file, relative to the study file
    claim: str = ""  # what the source says, in a sentence
    source: str = ""  # the citation
    table: str = ""  # which table or figure the values come from
    metric: str = "test_accuracy"  # the run metric the values are compared with
    published_as: Literal["error_percent", "accuracy_percent", "accuracy", "value"] = "accuracy"
    # interval: the published value inside the cell's 95% Student-t interval;
    # ranking: the cells in the published order (Kendall's tau over the cells both have).
    agreement: Literal["interval", "ranking"] = "interval"
    published: tuple[PublishedCell, ...] = ()
    differences: tuple[str, ...] = ()  # where the sweep departs from the source's setup
    note: str = ""  # e.g. why the study has no published figures
    # Dotted keys of the sweep file set for the study (``repeats: 3``), and for its quick form.
    overrides: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)

    def expected(self, cell: PublishedCell) -> float:
        """The published value on the run metric's scale."""
        return UNITS[self.published_as](cell.value)


@dataclass(frozen=True)
class Study:
    config: StudyConfig
    path: Path
    sweep_data: dict[str, Any]  # the sweep file as read, the quick overrides applied
    sweep: SweepConfig
    quick: bool


def load_study(path: str | Path, quick: bool = False) -> Study:
    """The study file and its sweep (in its quick form when ``quick``), both checked: every
    name in the sweep, and every published cell against the sweep's grid."""
    path = Path(path)
    cfg = parse(StudyConfig, read_yaml(path), "")
    sweep_path = (path.parent / cfg.sweep).resolve()
    data = with_overrides(read_yaml(sweep_path), cfg.overrides, f"{path}: overrides")
    if quick:
        data = with_overrides(data, cfg.quick, f"{path}: quick")
    check_names(data, sweep_path)
    sweep = parse(SweepConfig, data, "")
    _check_cells(cfg, sweep, path)
    return Study(cfg, path, data, sweep, quick)


def with_overrides(data: dict[str, Any], overrides: dict[str, Any],
                   where: str) -> dict[str, Any]:
    """``data`` with each dotted key of ``overrides`` set (``base.training.epochs: 1``). Under
    ``grid.`` the rest of the key is one axis, whose name has dots of its own
    (``grid.model.hidden_layers``)."""
    out = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node = out
        first, _, rest = dotted.partition(".")
        *parents, leaf = [first, rest] if first == "grid" and rest else dotted.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{where}.{dotted}: {part!r} is not a mapping in the sweep")
            node = child
        node[leaf] = copy.deepcopy(value)
    return out


def _check_cells(cfg: StudyConfig, sweep: SweepConfig, path: Path) -> None:
    points = [flatten(to_dict(p.config)) for p in expand_grid(sweep)]
    for i, cell in enumerate(cfg.published):
        if not any(all(p.get(k) == v for k, v in cell.where.items()) for p in points):
            raise ConfigError(f"{path}: published[{i}].where {cell.where} matches no "
                              f"configuration of the sweep {cfg.sweep}")
