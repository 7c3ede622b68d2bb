"""How many decimals a report needs so that the numbers it prints tell the top cells apart."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def separating(values: Iterable[float], highest: bool = True, top: int = 3, least: int = 3,
               most: int = 6) -> int:
    """The fewest decimals (``least`` to ``most``) at which the ``top`` best distinct values
    (highest, or lowest) print differently; ``most`` when even that cannot separate them."""
    finite = sorted({float(v) for v in values if np.isfinite(v)}, reverse=highest)[:top]
    for d in range(least, most + 1):
        if len({f"{v:.{d}f}" for v in finite}) == len(finite):
            return d
    return most
