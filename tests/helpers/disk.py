"""Real small disks for the disk-full tests: a tmpfs of a given size, and a file that fills it.

Mounting needs root. CI runs the suite as root; anywhere else these tests fail with mount's
own message rather than skip, so a missing privilege is never mistaken for a pass.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path


def mount_tmpfs(folder: Path, size_kb: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs",
                           str(folder)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"cannot mount a tmpfs (these tests need root): {proc.stderr}"
    return folder


def unmount(folder: Path) -> None:
    # Lazy: a process that still holds a file there must not keep the mount alive.
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path) -> Path:
    """Write one file until the file system is full; delete it to free the space again."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = b"\0" * 4096
    try:
        while True:
            os.write(fd, block)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler
