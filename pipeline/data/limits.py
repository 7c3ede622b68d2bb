"""Bounds on what a dataset may declare, checked before anything is allocated from it.

A label, a class count or a header in a file is input like any other: a label of two billion
would make every rank build a two-billion-class output layer, a header declaring a terabyte
would be allocated before a single byte is read. These bounds are far above any image
classification set this project trains (MNIST: 10 classes, 28x28x1 images, 47 MB of pixels).
"""

from __future__ import annotations

MAX_CLASSES = 100_000              # labels lie in [0, MAX_CLASSES)
MAX_IMAGE_PIXELS = 1 << 24         # height x width x channels of one image (16.7 M)
MAX_ARRAY_BYTES = 1 << 31          # one array a raw source holds (2 GiB): larger data as
                                   # CSV or Parquet, which Spark reads without the driver


def label_problem(top: int) -> str | None:
    """Why the largest label ``top`` is refused, or None."""
    if top >= MAX_CLASSES:
        return f"label {top} is not below {MAX_CLASSES:,} (the most classes a dataset may have)"
    return None
