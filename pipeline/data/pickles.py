"""The restricted unpickler of pkl.gz sources: NumPy arrays only, each bounded before allocation.

An array pickle declares its shape and dtype, and NumPy allocates what they declare before any
data arrives (in ``_reconstruct``, in ``ndarray(shape)`` and in an object array's
``__setstate__``): a pickle of a few hundred bytes could ask for terabytes. Every declaration
is checked first, against MAX_ARRAY_BYTES per array and, all arrays together, against the size
of the pickle itself: a numeric array carries its bytes in the stream, so genuine arrays never
declare more than the stream holds.
"""

from __future__ import annotations

import io
import math
import operator
import pickle
from typing import Any

import numpy as np
from numpy.core.multiarray import _reconstruct

from pipeline.data.limits import MAX_ARRAY_BYTES


class ArrayBudget:
    """What the arrays of one pickle may still declare, in bytes."""

    def __init__(self, stream_bytes: int) -> None:
        self.stream_bytes = stream_bytes
        self.left = stream_bytes

    def take(self, shape: object, dtype: object) -> None:
        """Charge one declared array; refuses it (UnpicklingError) before anything is allocated."""
        dims, kind = _dims(shape), _dtype(dtype)
        nbytes = math.prod(dims) * kind.itemsize  # Python integers: no overflow
        if nbytes > MAX_ARRAY_BYTES:
            raise pickle.UnpicklingError(
                f"an array declares shape {dims} of {kind} = {nbytes:,} bytes, more than the "
                f"{MAX_ARRAY_BYTES:,} bytes a source array may hold")
        if nbytes > self.left:
            raise pickle.UnpicklingError(
                f"its arrays declare more than the pickle's {self.stream_bytes:,} bytes hold")
        self.left -= nbytes


def _dims(shape: object) -> tuple[int, ...]:
    try:
        dims = tuple(operator.index(d) for d in shape) if isinstance(shape, tuple) \
            else (operator.index(shape),)
    except TypeError:
        raise pickle.UnpicklingError(f"an array declares shape {shape!r}") from None
    if any(d < 0 for d in dims):
        raise pickle.UnpicklingError(f"an array declares negative dimensions {dims}")
    return dims


def _dtype(dtype: object) -> np.dtype:
    try:
        return np.dtype(dtype)
    except (TypeError, ValueError):
        raise pickle.UnpicklingError(f"an array declares dtype {dtype!r}") from None


def _bounded_array_type(budget: ArrayBudget) -> type[np.ndarray]:
    """An ndarray whose every way of being built from a pickle charges ``budget`` first."""

    class BoundedArray(np.ndarray):
        def __new__(cls, shape: object, dtype: object = float, *args: Any, **kwargs: Any):
            budget.take(shape, dtype)
            return super().__new__(cls, shape, dtype, *args, **kwargs)

        def __setstate__(self, state: object) -> None:
            # (version, shape, dtype, is_fortran, data), the version absent in old pickles
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise pickle.UnpicklingError("an array's state is not an array's")
            budget.take(*state[-4:-2])
            super().__setstate__(state)

    return BoundedArray


class BoundedUnpickler(pickle.Unpickler):
    """Resolves only the NumPy globals an array pickle needs, each bounded by one budget."""

    def __init__(self, raw: bytes) -> None:
        super().__init__(io.BytesIO(raw), encoding="latin1")
        budget = ArrayBudget(len(raw))
        self._array = _bounded_array_type(budget)
        self._globals = {
            ("numpy.core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy", "ndarray"): self._array,
            ("numpy", "dtype"): np.dtype,
        }
        self._budget = budget

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None

    def _reconstruct(self, subtype: object, shape: object, dtype: object) -> np.ndarray:
        if subtype is not self._array:
            raise pickle.UnpicklingError("only arrays may be reconstructed")
        self._budget.take(shape, dtype)
        return _reconstruct(subtype, shape, dtype)


def load_arrays(raw: bytes) -> object:
    """The object a pickle of NumPy arrays holds; UnpicklingError for anything else or too big."""
    return BoundedUnpickler(raw).load()
