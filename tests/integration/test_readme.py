"""The README's "From Python" example, run as written on a tiny dataset, so it cannot rot."""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT, prepare_tiny

pytestmark = pytest.mark.integration


def _from_python_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_from_python_example_runs_and_returns_a_leaderboard(tmp_path, spark, mlflow_store,
                                                                capsys):
    code = _from_python_block()
    data = prepare_tiny(tmp_path)
    assert 'DATA = Path("data/processed/mnist")' in code
    code = code.replace('DATA = Path("data/processed/mnist")', f"DATA = Path({str(data)!r})")
    code = code.replace('"dataset": "mnist"', '"dataset": "tiny"')
    code = code.replace('"batch_size": 256', '"batch_size": 32')
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    board = namespace["board"]
    assert list(board["hidden_activation"]) and set(board["hidden_activation"]) == {"relu", "tanh"}
    assert (board["n_finished"] == 2).all()
    assert board["p_best"].sum() == pytest.approx(1.0)
    assert "4 runs trained; none failed" in capsys.readouterr().out
