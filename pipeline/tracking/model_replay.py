"""Replaying a spooled model record in a child process, so the driver never imports TensorFlow.

A model record is delivered by rebuilding the model and loading its spooled weights, which
needs TensorFlow. The driver stays TensorFlow-free (its memory and start-up are the sweep's),
so a process without TensorFlow hands the record to ``python -m
pipeline.tracking.model_replay``; a rank, which has TensorFlow loaded, replays in-process. The
record and the store's address go on stdin, never on the command line, where other users of
the host could read a URI's password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TIMEOUT_SECONDS = 600


def replay_model_record(uri: str, run_id: str, record: dict, files: Path) -> None:
    """Deliver one spooled model record: here if TensorFlow is loaded, else in a child."""
    if "tensorflow" in sys.modules:
        _replay_here(uri, run_id, record, files)
        return
    order = json.dumps({"uri": uri, "run_id": run_id, "record": record, "files": str(files)})
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-m", "pipeline.tracking.model_replay"],
                          input=order, capture_output=True, text=True, env=env,
                          timeout=TIMEOUT_SECONDS, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(f"model replay failed: {lines[-1] if lines else proc.returncode}")


def _replay_here(uri: str, run_id: str, record: dict, files: Path) -> None:
    from mlflow.tracking import MlflowClient

    from pipeline.tracking.models import replay_model

    replay_model(MlflowClient(uri), run_id, record, files)


def main() -> int:
    order = json.loads(sys.stdin.read())
    try:
        _replay_here(order["uri"], order["run_id"], order["record"], Path(order["files"]))
    except Exception as exc:  # one line for the parent's report; the spool keeps the record
        print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
