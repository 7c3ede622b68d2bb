"""pyarrow for every Parquet file the project reads, with CVE-2023-47248 closed.

pyarrow 10.0.1 (pinned by horovod[spark]) unpickles the metadata of a column of type
``arrow.py_extension_type`` as soon as it reads a file's schema: a crafted Parquet shard in a
writable dataset folder would run code in the driver and in every rank. ``pyarrow_hotfix``,
the maintained mitigation for pyarrow before 14.0.1, replaces that type with one that refuses
to load; it takes effect when imported. Every module of the project gets pyarrow from here
(tests/unit/test_parquet_hotfix.py checks), so the hotfix is in place before any read.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow_hotfix  # noqa: F401 - installs itself on import, before this module returns

__all__ = ["dataset_module", "is_refused_type", "pa", "pq"]

CVE = "CVE-2023-47248"


def dataset_module():
    """``pyarrow.dataset``, imported when first asked for: it imports pandas, which the ranks
    (reading shards through ``pq``) never need."""
    import pyarrow.dataset

    return pyarrow.dataset


def is_refused_type(exc: BaseException) -> bool:
    """Whether ``exc`` is the hotfix refusing a column type that would run code."""
    return "arrow.py_extension_type" in str(exc)
