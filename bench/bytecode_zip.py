"""What a Python process Spark starts pays to import PySpark from its zip (Spark puts
``pyspark/python/lib/pyspark.zip`` first on their path), with the zip's sources alone and with
bytecode beside them (scripts/bytecode_zip.py), fresh interpreters alternating.

    python bench/bytecode_zip.py [--pairs 5]

Each interpreter imports what a Horovod task's Spark worker imports (the daemon, the worker
and horovod.spark.task), with PySpark's two zips first on PYTHONPATH, and prints its CPU
seconds. Both copies are made in a temporary folder from the installed zips.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bytecode_zip import compile_zip  # noqa: E402

IMPORTS = """
import resource
import pyspark.daemon, pyspark.worker, horovod.spark.task
used = resource.getrusage(resource.RUSAGE_SELF)
print(used.ru_utime + used.ru_stime)
"""


def copies(folder: Path) -> dict[str, list[Path]]:
    """The installed zips without any bytecode ("sources") and compiled ("bytecode")."""
    import pyspark

    installed = sorted((Path(pyspark.__file__).parent / "python" / "lib").glob("*.zip"))
    out: dict[str, list[Path]] = {"sources": [], "bytecode": []}
    for kind in out:
        (folder / kind).mkdir()
        for path in installed:
            copy = folder / kind / path.name
            with zipfile.ZipFile(path) as src, zipfile.ZipFile(copy, "w") as dst:
                for info in src.infolist():
                    if not info.filename.endswith(".pyc"):
                        dst.writestr(info, src.read(info))
            if kind == "bytecode":
                compile_zip(copy)
            out[kind].append(copy)
    return out


def import_cpu(zips: list[Path]) -> float:
    env = {"PYTHONPATH": ":".join(map(str, zips)), "PATH": "/usr/bin:/bin",
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", IMPORTS], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return float(proc.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        zips = copies(Path(tmp))
        cpu: dict[str, list[float]] = {kind: [] for kind in zips}
        for _ in range(args.pairs):
            for kind, paths in zips.items():
                cpu[kind].append(import_cpu(paths))
    for kind, values in cpu.items():
        print(f"{kind:8s} CPU s: " + " ".join(f"{v:.2f}" for v in values))
    src, byte = (statistics.median(cpu[k]) for k in ("sources", "bytecode"))
    print(f"median: sources {src:.2f} s, bytecode {byte:.2f} s, ratio {byte / src:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
