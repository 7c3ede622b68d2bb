"""Every Horovod call a rank makes, in one place. Each is marked ``[hvd]`` where it is used.

A collective must be entered by every rank in the same order, or the job hangs: the
callers make these calls unconditionally, never behind a rank test. Each runs within the
stall deadline (pipeline.train.rank.stall), as does every training step (``StepDeadline``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pipeline.train.rank.stall import within_deadline

if TYPE_CHECKING:
    import tensorflow as tf

T = TypeVar("T")


def init() -> None:
    """Join this launch's Gloo ring."""
    load_nccl()  # before Horovod's library loads: its GPU build links NCCL
    import horovod.tensorflow.keras as hvd

    hvd.init()


def load_nccl() -> str | None:
    """Load the NCCL library of the nvidia-nccl-cu12 wheel (tensorflow[and-cuda] installs it).

    Horovod's NCCL build links libnccl.so.2 by name (the CUDA runtime it links statically),
    and the wheel keeps it in site-packages/nvidia/nccl/lib, where the dynamic loader does
    not look. Loaded first, by path and globally, it satisfies Horovod's library wherever the
    environment was unpacked. The CPU build has no such wheel: nothing is loaded. Returns
    the file loaded.
    """
    import ctypes
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("nvidia.nccl")
    except ModuleNotFoundError:  # no nvidia-* wheel at all
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        library = Path(folder) / "lib" / "libnccl.so.2"
        if library.is_file():
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            return str(library)
    return None


def rank() -> int:
    import horovod.tensorflow.keras as hvd

    return hvd.rank()


def size() -> int:
    import horovod.tensorflow.keras as hvd

    return hvd.size()


def local_rank() -> int:
    import horovod.tensorflow.keras as hvd

    return hvd.local_rank()


def local_size() -> int:
    import horovod.tensorflow.keras as hvd

    return hvd.local_size()


def task_gpu_addresses() -> list[str]:
    """The GPU addresses Spark assigned to this rank's task; empty without GPU scheduling.

    The rank runs in a process of its own, where TaskContext is not available: horovod.spark
    asks the rank's Spark task for its resources before calling the rank function.
    """
    from horovod.spark.task import get_available_devices

    return list(get_available_devices())


def broadcast_object(value: T, name: str) -> T:
    """Rank 0's ``value`` on every rank (collective)."""
    import horovod.tensorflow as hvd_tf

    with within_deadline(name):
        return hvd_tf.broadcast_object(value, root_rank=0, name=name)


def broadcast_variables(variables: list[tf.Variable]) -> None:
    """Rank 0's values into every rank's variables (collective)."""
    import horovod.tensorflow as hvd_tf

    with within_deadline("broadcast of the model's variables"):
        hvd_tf.broadcast_variables(variables, root_rank=0)


def allreduce_sum(values: np.ndarray, name: str) -> np.ndarray:
    """The element-wise sum over ranks (collective)."""
    import horovod.tensorflow as hvd_tf
    import tensorflow as tf

    with within_deadline(name):
        return hvd_tf.allreduce(tf.constant(values), op=hvd_tf.Sum, name=name).numpy()


def allgather(values: np.ndarray, name: str) -> np.ndarray:
    """Every rank's rows, concatenated in rank order (collective; row counts may differ)."""
    import horovod.tensorflow as hvd_tf
    import tensorflow as tf

    with within_deadline(name):
        return hvd_tf.allgather(tf.constant(values), name=name).numpy()


def optimizer(inner: tf.keras.optimizers.Optimizer, summed: bool) -> Any:
    """``inner`` with gradients allreduced every step: averaged, or summed for a summed loss."""
    import horovod.tensorflow.keras as hvd

    wrapped = hvd.DistributedOptimizer(inner, op=hvd.Sum if summed else hvd.Average)
    wrapped._allreduce_grads = traced_as_python(wrapped._allreduce_grads)
    return wrapped


# Horovod's gradient allreduce is a tf.function with AutoGraph on: the first training step a
# rank traces has AutoGraph rewrite Horovod's source, which cost more CPU than the rest of a
# small trial's tracing (BENCHMARKS.md, "Tracing Horovod's allreduce"). Its branches test
# Python values only (which gradients exist, the group settings), so tracing it as plain
# Python builds the same graph. One plain function per Horovod function, as Horovod shares
# its own between optimizers of the same settings.
_plain: dict[int, tuple[Any, Any]] = {}


def traced_as_python(function: Any) -> Any:
    """``function`` (a tf.function) traced without AutoGraph; anything else unchanged."""
    python_function = getattr(function, "python_function", None)
    if python_function is None:  # graph mode: Horovod hands out the Python function itself
        return function
    if id(function) not in _plain:
        import tensorflow as tf

        _plain[id(function)] = (function, tf.function(python_function, autograph=False))
    return _plain[id(function)][1]


def metric_average_callback() -> tf.keras.callbacks.Callback:
    """Averages each epoch's logs over ranks (collective), before any callback reads them."""
    import horovod.tensorflow.keras as hvd

    return hvd.callbacks.MetricAverageCallback()
