"""Tiny learnable datasets written as real files, and prepared by the real job."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.helpers.jobs import load_job


def make_images(n: int, num_classes: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy images: class k lights up horizontal band k, on top of noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, side, side), dtype=np.uint8)
    band = side // num_classes
    for k in range(num_classes):
        rows = labels == k
        images[rows, k * band:(k + 1) * band, :] += 150
    return images, labels.astype(np.uint8)


def write_npz(path: Path, n_train: int = 480, n_test: int = 160, num_classes: int = 4,
              side: int = 12) -> Path:
    x_train, y_train = make_images(n_train, num_classes, side, seed=1)
    x_test, y_test = make_images(n_test, num_classes, side, seed=2)
    np.savez_compressed(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def write_data_config(folder: Path, source: Path, fmt: str = "npz", shards: int = 4,
                      name: str = "tiny", sha256: str | None = None) -> Path:
    cfg = folder / f"{name}.yaml"
    sha_line = f"\n  sha256: {sha256}" if sha256 else ""
    cfg.write_text(
        f"name: {name}\nsource:\n  format: {fmt}\n  path: {source}{sha_line}\n"
        f"split:\n  val_fraction: 0.25\n  seed: 7\nshards: {shards}\n"
        f"output: {folder / 'processed'}\n"
    )
    return cfg


def prepare_tiny(root: Path, **sizes: int) -> Path:
    """A tiny npz (``write_npz`` sizes) prepared by the real job; returns the dataset folder."""
    cfg = write_data_config(root, write_npz(root / "d.npz", **sizes))
    assert load_job("prepare_data").main(["--config", str(cfg)]) == 0
    return root / "processed" / "tiny"
