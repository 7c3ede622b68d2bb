"""Which GPU a rank trains on: exactly one, or none (then nothing changes).

With Spark GPU scheduling on, Spark gives each task a GPU address; horovod.spark hands the
rank process its own task's resources (``distributed.task_gpu_addresses``). Without it, ranks
on one host share its GPUs by local rank. Either way the rank makes only that GPU visible to
TensorFlow, with memory growth on, before TensorFlow initialises its devices, so ranks on one
host never allocate memory on each other's GPUs.

Spark's addresses are ``nvidia-smi`` indices (scripts/gpu-discovery.sh), ordered by PCI bus;
the sweep starts ranks with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA numbers devices the same
way (launch.rank_env).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import DeviceError


@dataclass(frozen=True)
class GpuChoice:
    index: int  # position in TensorFlow's list of physical GPUs
    reason: str  # where the choice came from, for the rank's start-up line


def choose_gpu(task_addresses: Sequence[str], local_rank: int, gpu_count: int,
               cuda_visible: str | None = None) -> GpuChoice | None:
    """The GPU this rank uses, or None on a machine (or TensorFlow build) without GPUs.

    ``task_addresses``: the GPU addresses Spark assigned to this rank's task (empty when
    GPU scheduling is off); ``gpu_count``: the GPUs TensorFlow sees; ``cuda_visible``: the
    rank's CUDA_VISIBLE_DEVICES, which renumbers the devices TensorFlow lists.
    """
    if task_addresses:
        # spark.task.resource.gpu.amount is 1 (or a fraction): one address. Should a task get
        # several, the rank still uses one: a Horovod rank drives a single device.
        address = task_addresses[0]
        index = _tensorflow_index(address, cuda_visible)
        if index >= gpu_count:
            raise DeviceError(
                f"Spark assigned GPU {address} to this task but TensorFlow sees {gpu_count} "
                f"GPU(s): install the GPU build (make setup GPU=1) and check "
                f"spark.executor.resource.gpu.discoveryScript lists this host's GPUs")
        return GpuChoice(index, f"GPU {address} assigned by Spark")
    if gpu_count == 0:
        return None
    # More local ranks than GPUs share them round-robin (memory growth keeps that possible).
    return GpuChoice(local_rank % gpu_count, f"local rank {local_rank} of {gpu_count} GPU(s)")


def _tensorflow_index(address: str, cuda_visible: str | None) -> int:
    """Where Spark's device ``address`` sits in TensorFlow's GPU list."""
    if cuda_visible:  # the executor was started with a subset: TensorFlow lists only those
        listed = [d.strip() for d in cuda_visible.split(",")]
        if address not in listed:
            raise DeviceError(f"Spark assigned GPU {address}, which CUDA_VISIBLE_DEVICES="
                              f"{cuda_visible} hides from this executor")
        return listed.index(address)
    if not address.isdigit():
        raise DeviceError(f"GPU address {address!r} from Spark is not a device index: the "
                          f"discovery script must print nvidia-smi indices")
    return int(address)


def pin_cpu_cores(pin_threads: bool, gpu: GpuChoice | None) -> bool:
    """Whether the rank binds itself to cores of its own.

    Pinning pays off when the rank computes on its cores (bench/README.md); a GPU rank's
    cores feed the GPU and launch kernels, and its host may hold more GPU ranks than the
    pinning arithmetic assumes, so a GPU rank stays unpinned.
    """
    return pin_threads and gpu is None


def use_one_gpu(task_addresses: Sequence[str], local_rank: int,
                cuda_visible: str | None = None) -> GpuChoice | None:
    """Make exactly this rank's GPU visible to TensorFlow, memory growth on; None (and no
    change at all) when there is no GPU. Must run before TensorFlow initialises devices."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    choice = choose_gpu(task_addresses, local_rank, len(gpus), cuda_visible)
    if choice is None:
        return None
    mine = gpus[choice.index]
    tf.config.set_visible_devices([mine], "GPU")
    # Without growth TensorFlow reserves nearly all of the GPU's memory at start-up.
    tf.config.experimental.set_memory_growth(mine, True)
    return choice
