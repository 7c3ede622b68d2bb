"""Folder swaps and staging folders of processes killed with SIGKILL (real processes): the next
writer puts the data back and removes what the dead left, never what a live writer holds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline import storage
from tests.helpers import ROOT

# Replaces target with staging, but dies (SIGKILL) right after the first of the two renames.
KILLED_SWAP = """
import os, signal, sys
from pathlib import Path
from pipeline import storage

real = os.replace
def replace(src, dst):
    real(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
output = Path(sys.argv[1])
staging = storage.staging_dir(output, "data")
(staging / "new.txt").write_text("new")
storage.swap_into_place(staging, output / "data")
"""

# Creates a staging folder, says where, and waits to be killed.
WRITER = """
import sys, time
from pathlib import Path
from pipeline import storage
print(storage.staging_dir(Path(sys.argv[1]), "data"), flush=True)
time.sleep(600)
"""


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, text=True, **kw)


def _dataset(output: Path) -> Path:
    target = output / "data"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("the only copy")
    return target


def test_a_swap_killed_between_its_renames_is_undone_by_the_next_writer(tmp_path):
    target = _dataset(tmp_path)
    proc = _python(KILLED_SWAP, str(tmp_path))
    assert proc.wait(60) == -signal.SIGKILL
    assert not target.exists()  # the data is only in the old copy now
    [old] = tmp_path.glob(".data.old-*")
    assert (old / "old.txt").read_text() == "the only copy"

    staging = storage.staging_dir(tmp_path, "data")  # what the next prepare or report does
    assert (target / "old.txt").read_text() == "the only copy"
    assert not list(tmp_path.glob(".data.old-*"))
    storage.swap_into_place(staging, target)


def test_recover_restores_before_anything_reads_the_target(tmp_path):
    target = _dataset(tmp_path)
    assert _python(KILLED_SWAP, str(tmp_path)).wait(60) == -signal.SIGKILL
    assert "restored" in storage.recover(target)
    assert (target / "old.txt").read_text() == "the only copy"
    assert storage.recover(target) is None


def test_an_old_copy_left_after_a_completed_swap_is_removed(tmp_path):
    target = _dataset(tmp_path)
    leftover = tmp_path / ".data.old-0123abcd"
    leftover.mkdir()
    storage.recover(target)
    assert not leftover.exists() and (target / "old.txt").is_file()


def test_staging_folders_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = _python(WRITER, str(tmp_path), stdout=subprocess.PIPE)
    live = _python(WRITER, str(tmp_path), stdout=subprocess.PIPE)
    try:
        dead_dir, live_dir = Path(dead.stdout.readline().strip()), Path(live.stdout.readline()
                                                                         .strip())
        (dead_dir / "part-0.parquet").write_bytes(b"half a shard")
        dead.kill()
        dead.wait(30)
        assert dead_dir.exists()

        mine = storage.staging_dir(tmp_path, "data")
        assert not dead_dir.exists()  # abandoned: nobody holds its lock
        assert live_dir.exists() and mine.exists()
    finally:
        for proc in (dead, live):
            proc.kill()
            proc.wait(30)
    time.sleep(0.1)
    storage.staging_dir(tmp_path, "other")
    assert not live_dir.exists()  # its writer is gone now too
    assert mine.exists()  # still held by this process
