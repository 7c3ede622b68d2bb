"""Binding a rank to cores of its own."""

from __future__ import annotations

import os


def pin_cores(local_rank: int, local_size: int, threads: int,
              first_slot: int = 0) -> list[int] | None:
    """Bind this rank (and the threads it starts from now on) to cores of its own.

    Only when the host has a core per thread of every local rank: two ranks sharing
    cores while TensorFlow's pools float over all of them was the main per-step cost
    on small models (bench/README.md). ``first_slot``: where this launch's ranks start
    when several launches share the host (concurrent trials), so theirs never overlap.
    Returns the cores, or None when left unpinned.
    """
    cores = sorted(os.sched_getaffinity(0))
    if (first_slot + local_size) * threads > len(cores):
        return None
    slot = first_slot + local_rank
    mine = cores[slot * threads:(slot + 1) * threads]
    os.sched_setaffinity(0, mine)
    return mine
