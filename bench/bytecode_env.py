"""What PYTHONDONTWRITEBYTECODE costs the test suite's Python processes: a pytest collection
of the whole suite (every test module and the pipeline modules they import) with the variable
set and no bytecode of the project's own sources, against with bytecode written, alternating.

    python bench/bytecode_env.py [--pairs 3]

Installed packages carry their bytecode from pip either way; what differs is the project's
modules, which every rank, Spark worker and job imports, and pytest's rewritten test modules,
which each pytest worker would otherwise rewrite again. Prints each run's CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pipeline", "jobs", "tests", "bench", "scripts")


def clear_bytecode() -> None:
    for folder in SOURCES:
        for cache in (ROOT / folder).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def collection_cpu(write: bool) -> float:
    """CPU seconds of one ``pytest --collect-only`` of the suite."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="" if write else "1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "tests"], cwd=ROOT,
                   env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    runs: dict[str, list[float]] = {"no bytecode": [], "bytecode written": []}
    collection_cpu(write=True)  # warm the page cache; leaves the bytecode for the first pair
    for _ in range(args.pairs):
        runs["bytecode written"].append(collection_cpu(write=True))
        clear_bytecode()
        runs["no bytecode"].append(collection_cpu(write=False))
        collection_cpu(write=True)  # back to the written state for the next pair
    for name, values in runs.items():
        print(f"{name:17s} {' '.join(f'{v:.2f}' for v in values)}  "
              f"median {statistics.median(values):.2f} CPU-s")
    ratio = statistics.median(runs["bytecode written"]) / statistics.median(runs["no bytecode"])
    print(f"ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
