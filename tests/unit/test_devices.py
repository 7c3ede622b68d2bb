"""One GPU per rank: from the Spark task's resources, else by local rank; CPU otherwise.

TensorFlow is real; only its device list and the two calls that act on devices are
replaced (this machine has no GPU), so the tests see what a rank would ask TensorFlow for.
"""

from __future__ import annotations

import pytest

from pipeline.errors import DeviceError
from pipeline.train.rank.devices import GpuChoice, choose_gpu, pin_cpu_cores, use_one_gpu


@pytest.fixture
def fake_gpus(monkeypatch):
    """``fake_gpus(n)``: TensorFlow lists n GPUs; returns the calls made on devices."""
    import tensorflow as tf

    calls: dict[str, list] = {"visible": [], "growth": []}

    def install(n: int) -> dict[str, list]:
        devices = [tf.config.PhysicalDevice(name=f"/physical_device:GPU:{i}", device_type="GPU")
                   for i in range(n)]
        real_list = tf.config.list_physical_devices
        monkeypatch.setattr(tf.config, "list_physical_devices",
                            lambda kind=None: devices if kind == "GPU" else real_list(kind))
        monkeypatch.setattr(tf.config, "set_visible_devices",
                            lambda devs, kind=None: calls["visible"].append(
                                ([d.name for d in devs], kind)))
        monkeypatch.setattr(tf.config.experimental, "set_memory_growth",
                            lambda dev, on: calls["growth"].append((dev.name, on)))
        return calls

    return install


def test_the_spark_task_address_wins_over_the_local_rank(fake_gpus):
    calls = fake_gpus(4)
    choice = use_one_gpu(["2"], local_rank=0)
    assert choice == GpuChoice(2, "GPU 2 assigned by Spark")
    assert calls["visible"] == [(["/physical_device:GPU:2"], "GPU")]  # exactly one GPU
    assert calls["growth"] == [("/physical_device:GPU:2", True)]


def test_without_gpu_scheduling_each_local_rank_takes_its_own_gpu(fake_gpus):
    calls = fake_gpus(2)
    assert use_one_gpu([], local_rank=0).index == 0
    assert use_one_gpu([], local_rank=1).index == 1
    assert calls["visible"] == [(["/physical_device:GPU:0"], "GPU"),
                                (["/physical_device:GPU:1"], "GPU")]
    assert [on for _, on in calls["growth"]] == [True, True]


def test_more_local_ranks_than_gpus_share_them_round_robin():
    assert [choose_gpu([], r, 2).index for r in range(5)] == [0, 1, 0, 1, 0]


def test_a_machine_without_gpus_changes_nothing(fake_gpus):
    calls = fake_gpus(0)
    assert use_one_gpu([], local_rank=1) is None
    assert calls == {"visible": [], "growth": []}


def test_the_real_cpu_build_lists_no_gpu_and_leaves_devices_alone():
    import tensorflow as tf

    assert use_one_gpu([], local_rank=0) is None
    assert tf.config.get_visible_devices("GPU") == []


def test_cuda_visible_devices_renumbers_sparks_address():
    # The executor sees physical GPUs 4 and 6 as TensorFlow's GPU:0 and GPU:1.
    assert choose_gpu(["6"], 0, 2, cuda_visible="4,6").index == 1
    with pytest.raises(DeviceError, match="GPU 5, which CUDA_VISIBLE_DEVICES=4,6 hides"):
        choose_gpu(["5"], 0, 2, cuda_visible="4,6")


def test_an_address_tensorflow_cannot_see_is_a_clear_error():
    with pytest.raises(DeviceError, match="Spark assigned GPU 3 to this task but TensorFlow "
                                          "sees 0 GPU"):
        choose_gpu(["3"], 0, 0)
    with pytest.raises(DeviceError, match="not a device index"):
        choose_gpu(["GPU-8f2c"], 0, 2)


def test_a_task_with_several_gpus_still_gives_the_rank_one():
    assert choose_gpu(["1", "0"], 0, 2).index == 1


def test_cpu_ranks_pin_cores_and_gpu_ranks_do_not():
    gpu = GpuChoice(0, "local rank 0 of 1 GPU(s)")
    assert pin_cpu_cores(True, None) is True
    assert pin_cpu_cores(True, gpu) is False
    assert pin_cpu_cores(False, None) is False
    assert pin_cpu_cores(False, gpu) is False
