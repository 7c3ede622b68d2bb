"""The Makefile's variables reach what they are meant for."""

from __future__ import annotations

import os
import re
import subprocess

from tests.helpers import ROOT


def _make(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=60)


def test_python_from_the_environment_reaches_the_setup_script(tmp_path):
    marker = tmp_path / "called"
    fake = tmp_path / "python3.11"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {marker}\nexit 1\n")
    fake.chmod(0o755)
    proc = _make("setup", f"VENV={tmp_path / 'venv'}", PYTHON=str(fake))
    assert proc.returncode != 0
    assert marker.exists(), proc.stderr  # set-up ran the interpreter it was given
    assert "Python 3.11 is required" in proc.stderr


def test_a_sweep_file_lands_in_its_own_experiment_unless_one_is_named():
    proc = _make("-n", "sweep", "SWEEP=conf/sweep/cnn.yaml", f"VENV={ROOT / '.venv'}")
    assert "--experiment cnn" in proc.stdout and "compare.py --experiment cnn" in proc.stdout
    named = _make("-n", "sweep", "SWEEP=conf/sweep/cnn.yaml", "EXPERIMENT=mine",
                  f"VENV={ROOT / '.venv'}")
    assert "--experiment mine" in named.stdout
    default = _make("-n", "sweep", f"VENV={ROOT / '.venv'}")
    assert "--experiment default" in default.stdout



def test_help_lists_the_targets_and_the_variables_with_a_line_each():
    out = re.sub(r"\x1b\[[0-9;]*m", "", _make("help").stdout)
    targets, _, variables = out.partition("\nVariables")
    listed = {ln.split()[0] for ln in targets.splitlines() if ln.strip()}
    assert {"sweep", "ui", "test", "test-fast", "test-unit", "lint"} <= listed
    described = dict(ln.strip().split(None, 1) for ln in variables.splitlines()[1:] if ln.strip())
    for name in ("SWEEP", "EXPERIMENT", "DATASET", "EPOCHS", "REPEATS", "NUM_PROC",
                 "RANKS_PER_TRIAL", "HALVING", "MLFLOW_PORT", "MASTER", "PACKED", "GPU",
                 "TEST_WORKERS"):
        assert len(described.get(name, "")) > 10, f"make help gives {name} no line"
