"""How long a misspelt name takes to be refused: the sweep job on a file with a typo in its
grid, run by the project's Python (as a driver would be) and through spark-submit (whose JVM
starts before any Python does), start to exit.

    python -m bench.fail_fast [--repeats N]   -> bench/results/fail_fast.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, median

TYPO = "name: typo\ndataset: mnist\ngrid:\n  loss: [mse, mae, categoricl_hinge]\n"


def refusal_seconds(command: list[str], repeats: int) -> dict:
    """Median and every wall time of ``command``, which must exit 2 with one error line."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=300, check=False)
        times.append(time.perf_counter() - started)
        if proc.returncode != 2 or "did you mean 'categorical_hinge'" not in proc.stdout + \
                proc.stderr:
            raise RuntimeError(f"{command[0]}: not refused as expected: {proc.stderr[-500:]}")
    return {"median_seconds": median(times), "seconds": times}


def measure(repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-typo-") as tmp:
        config = Path(tmp) / "typo.yaml"
        config.write_text(TYPO)
        job = ["jobs/train_sweep.py", "--config", str(config)]
        submit = Path(sys.executable).parent / "spark-submit"
        return {"python": refusal_seconds([sys.executable, *job], repeats),
                "spark_submit": refusal_seconds([str(submit), *job], repeats),
                "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": os.cpu_count(),
                # A shared machine: the figures mean little without the load they ran under.
                "load_average_1min": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="fail_fast", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    result = measure(args.repeats)
    (ROOT / "bench" / "results" / "fail_fast.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
