"""Reproducible regression tables (source.generate): Friedman #1 with outlier targets.

The generator's settings are stored in each Parquet file's metadata; a file whose settings
match is kept, any other is written again, so editing the data config's outlier fraction
cannot leave a stale table behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from pipeline.config import SourceConfig, to_dict
from pipeline.data.arrow import pa, pq

METADATA_KEY = b"pipeline.generate"


def friedman1(rows: int, features: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x uniform on [0, 1]^features; y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2 + 10 x4 + 5 x5
    + N(0, noise^2), by scikit-learn's maintained implementation."""
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=rows, n_features=features, noise=noise, random_state=seed)


def add_outliers(y: np.ndarray, fraction: float, scale: float, seed: int) -> np.ndarray:
    """A copy of ``y`` with round(fraction x rows) targets, chosen at random, raised by
    ``scale`` x sd(y) x u, u uniform on [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    out = y.copy()
    hit = rng.choice(len(y), size=round(fraction * len(y)), replace=False)
    out[hit] += scale * y.std() * rng.uniform(0.5, 1.5, size=len(hit))
    return out


def write_tables(src: SourceConfig) -> list[str]:
    """Write the train table (with outliers) and the clean test table unless they are
    already there with the same settings; returns a line per table written."""
    g = src.generate
    assert g is not None
    written = []
    tables = [(Path(src.path), g.rows, g.seed, g.outlier_fraction)]
    if src.test_path and g.test_rows:
        # Another seed: test rows are new draws of the same function, without outliers.
        tables.append((Path(src.test_path), g.test_rows, g.seed + 1, 0.0))
    for path, rows, seed, fraction in tables:
        settings = json.dumps({**to_dict(g), "rows": rows, "seed": seed,
                               "outlier_fraction": fraction}, sort_keys=True).encode()
        if _settings(path) == settings:
            continue
        x, y = friedman1(rows, g.features, g.noise, seed)
        if fraction:
            y = add_outliers(y, fraction, g.outlier_scale, seed)
        _write(path, x, y, settings)
        written.append(f"{path}: Friedman #1, {rows} rows x {g.features} features, noise sd "
                       f"{g.noise}, {fraction:.0%} outlier targets")
    return written


def _settings(path: Path) -> bytes | None:
    if not path.is_file():
        return None
    try:
        return (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    except (OSError, pa.ArrowInvalid):
        return None  # unreadable: write it again


def _write(path: Path, x: np.ndarray, y: np.ndarray, settings: bytes) -> None:
    columns = {f"x{i + 1}": x[:, i] for i in range(x.shape[1])}
    table = pa.table({**columns, "y": y})
    table = table.replace_schema_metadata({METADATA_KEY: settings})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # never a half-written table under the configured name
