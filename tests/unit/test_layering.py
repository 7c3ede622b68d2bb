"""The rooms of the code keep to what they may import: MLflow belongs to pipeline.tracking
(training gets recorders, claims and client handles from there, so every MLflow call goes
through its retry and spool), and the driver's rooms never import TensorFlow (its memory and
start-up would be every sweep's). Read from the source, so an import under TYPE_CHECKING or
inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PIPELINE = ROOT / "pipeline"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def offenders(room: Path, banned: str) -> list[str]:
    return sorted(f"{path.relative_to(room)}: {module}"
                  for path in room.rglob("*.py")
                  for module in imported_modules(path)
                  if module == banned or module.startswith(banned + "."))


def test_no_module_under_pipeline_train_imports_mlflow():
    assert offenders(PIPELINE / "train", "mlflow") == []


@pytest.mark.parametrize("room", ["train/driver", "report", "config"])
def test_the_drivers_rooms_never_import_tensorflow(room):
    assert offenders(PIPELINE / room, "tensorflow") == []


def test_the_check_sees_an_import_hidden_under_type_checking(tmp_path):
    (tmp_path / "m.py").write_text("from typing import TYPE_CHECKING\n"
                                   "if TYPE_CHECKING:\n    from mlflow.entities import Run\n"
                                   "def f():\n    import mlflow.tracking\n")
    assert len(offenders(tmp_path, "mlflow")) == 2
