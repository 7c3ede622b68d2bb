"""The packed runtime environment (scripts/pack.sh) the cluster tests ship to executors, built
once per digest of its inputs and shared by every test, worker and run on this machine."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.jobs import ROOT

# Outside the checkout, so a fresh clone with the same sources reuses it.
CACHE = Path(os.environ.get("ACTLOSS_TEST_CACHE", Path.home() / ".cache" / "actloss-pipeline"))
KEEP = 2  # archives of other digests kept (another checkout may still use them)


def inputs_digest() -> str:
    return subprocess.run(["bash", "scripts/pack.sh", "--inputs-hash"], cwd=ROOT, text=True,
                          capture_output=True, check=True).stdout.strip()


def packed_env() -> Path:
    """The archive for the current sources: built under a lock by the first caller (another
    worker waits for it), then reused until the sources or the requirements change."""
    folder = CACHE / "packs"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"actloss-env-{inputs_digest()}.tar.gz"
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _current(out):
            _build(out)
            _prune(folder, out)
    return out


def _current(out: Path) -> bool:
    inputs = out.with_name(out.name + ".inputs")
    return out.is_file() and inputs.is_file() and inputs.read_text().strip() in out.name


def _build(out: Path) -> None:
    # The runtime venv is kept too: a change of sources only reinstalls the project's wheel.
    env = {**os.environ, "VENV": sys.prefix, "PACK_BUILD": str(CACHE / "pack-venv"),
           "PACK_COMPRESS_LEVEL": "1"}
    proc = subprocess.run(["bash", "scripts/pack.sh", str(out)], cwd=ROOT, text=True,
                          capture_output=True, timeout=3000, check=False, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _prune(folder: Path, keep: Path) -> None:
    others = sorted((p for p in folder.glob("actloss-env-*.tar.gz") if p != keep),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEEP:]:
        old.unlink(missing_ok=True)
        old.with_name(old.name + ".inputs").unlink(missing_ok=True)
