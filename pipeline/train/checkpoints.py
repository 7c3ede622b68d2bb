"""Per-epoch checkpoint folders on disk: the layout the driver and the ranks share.

Layout: ``<checkpoint_dir>/<config_hash>/epoch-NNNN.{index,data-*}`` plus ``latest.json``.
A checkpoint is complete exactly when ``latest.json`` names it (rank 0 writes it last, by
atomic rename). No TensorFlow here: the driver reads states too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

STATE = "latest.json"


def trial_dir(root: str | Path, config_hash: str) -> Path:
    return Path(root) / config_hash


def read_state(folder: Path) -> dict | None:
    """``{"epoch": epochs done, "prefix": checkpoint path, "run_id": MLflow run}`` or None."""
    path = folder / STATE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except ValueError:
        return None  # unreadable: start over rather than resume from something unknown
    if not Path(f"{state.get('prefix', '')}.index").is_file():
        return None
    return state


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
