"""The benchmarks run end to end at tiny sizes and write valid results (no timing asserted)."""

import json
import shutil

import pytest

from tests.helpers import load_job, write_data_config, write_npz

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A prepared 28x28, 10-class dataset and a x2 augmented copy of it, built once: the
    module's tests share one worker (tests/helpers/suite.py)."""
    folder = tmp_path_factory.mktemp("bench")
    source = write_npz(folder / "d.npz", n_train=800, n_test=80, side=28, num_classes=10)
    assert load_job("prepare_data").main(["--config", str(write_data_config(folder, source))]) == 0
    aug = folder / "aug.yaml"
    aug.write_text(f"name: tiny_x2\ninput: {folder / 'processed' / 'tiny'}\ncopies: 2\n"
                   f"shards: 4\noutput: {folder / 'processed'}\n")
    return folder, aug


def _quick(tiny, spark, tmp_path, sections: str) -> tuple[dict, str]:
    """``bench/run.py --quick`` on ``sections``: its results and its markdown."""
    folder, aug = tiny
    if "scale" in sections and not (folder / "processed" / "tiny_x2").exists():
        assert load_job("augment").main(["--config", str(aug)]) == 0
    from bench import run

    out, md = tmp_path / "results", tmp_path / "BENCH.md"
    code = run.main(["--quick", "--repeats", "1", "--sections", sections,
                     "--data", str(folder / "processed" / "tiny"),
                     "--x10", str(folder / "processed" / "tiny_x2"),
                     "--out", str(out), "--markdown", str(md)])
    assert code == 0
    return json.loads((out / "latest.json").read_text()), md.read_text()


@pytest.mark.slow(reason=(
    "each side of the ratios is a real measurement: a plain Keras fit and a Horovod launch of "
    "2 ranks, then the streamed feed against the in-memory one"))
def test_bench_quick_throughput_and_feed(tiny, spark, tmp_path):
    r, text = _quick(tiny, spark, tmp_path, "throughput,feed")
    t = r["throughput"]["mlp"]
    assert len(t["plain"]) == len(t["horovod"]) == 1 and min(t["plain"] + t["horovod"]) > 0
    assert t["ratio"] == pytest.approx(t["horovod_median"] / t["plain_median"])
    assert r["feed"]["ratio_train"] > 0 and r["feed"]["medians"]["stream_rows_per_sec"] > 0
    assert "Training throughput" in text and "Input feed" in text


def test_bench_quick_sweeps(tiny, spark, tmp_path):
    r, text = _quick(tiny, spark, tmp_path, "sweeps")
    o = r["sweeps"]["overhead"]
    assert o["configurations"] == 2 and 0 < o["train_seconds"] < o["wall_seconds"]
    acc = r["sweeps"]["mlp_accuracy"]
    assert len(acc["all"]) == 2 and acc["epochs"] == 1
    assert acc["best_test_accuracy"] == max(acc["all"].values()) > 0
    assert "overhead per configuration" in text


@pytest.mark.slow(reason=(
    "augments the set x2 and streams an epoch from each size in a rank of its own, so that "
    "the peaks compared are two real processes' memory"))
def test_bench_quick_scale(tiny, spark, tmp_path):
    r, text = _quick(tiny, spark, tmp_path, "scale")
    assert r["scale"]["stream_base"]["peak_rss_mib"] > 0 and r["scale"]["stream_ratio"] > 0
    assert "Scale: peak resident memory" in text


@pytest.mark.slow(reason=(
    "the section compares four whole sweeps (a plain loop, one trial at a time, concurrent "
    "trials, halving): four Horovod sweeps are what it measures"))
def test_bench_quick_scheduling(tiny, spark, tmp_path):
    r, text = _quick(tiny, spark, tmp_path, "scheduling")
    sched = r["scheduling"]
    for key in ("plain", "sequential", "concurrent", "halving"):
        assert sched[key]["runs_finished"] == 2 and sched[key]["wall_seconds"] > 0, key
    q = sched["ratios"]
    assert q["concurrent_configs_per_hour_gain"] == pytest.approx(
        sched["sequential"]["wall_seconds"] / sched["concurrent"]["wall_seconds"])
    assert "Scheduling: the whole default sweep" in text


@pytest.mark.slow(reason=(
    "augments the set and prepares the augmented copy: the section times those two Spark jobs"))
def test_bench_x10_data_preparation_runs_on_an_augmented_set(tiny, tmp_path):
    from bench import data_prep

    _, aug = tiny
    x = data_prep.measure_x10(aug, baseline_images=50)
    assert x["augment"]["rows_written"] > 0 and x["augment"]["numpy_rows"] == 150
    assert x["prepare"]["rows"] > x["augment"]["rows_written"]  # train plus test rows
    assert x["prepare"]["spark_rows_per_sec"] > 0 and x["prepare"]["driver_peak_rss_mib"] > 0


@pytest.mark.slow(reason=(
    "every stage of the MNIST-8M section as its own spark-submit job (augment, prepare, a "
    "streamed epoch): the section is those jobs"))
def test_bench_mnist8m_section_runs_every_stage_at_one_copy(tiny, spark):
    folder, _ = tiny
    from bench import run
    from pipeline.data.manifest import load_manifest

    out, md = folder / "results-8m", folder / "BENCH-8M.md"
    code = run.main(["--sections", "mnist8m", "--copies", "1",
                     "--data", str(folder / "processed" / "tiny"),
                     "--out", str(out), "--markdown", str(md)])
    assert code == 0
    r = json.loads((out / "latest.json").read_text())["mnist8m"]
    tiny_train = load_manifest(folder / "processed" / "tiny").splits["train"].rows
    assert r["augment"]["rows"] == 2 * tiny_train  # the originals and one copy of each
    assert r["prepare"]["rows"] < r["augment"]["rows"]  # a validation split carved out
    assert r["augment"]["driver_jvm_peak_rss_mib"] > r["augment"]["driver_python_peak_rss_mib"] > 0
    t = r["train"]
    assert t["big"]["rows"] == r["prepare"]["rows"] and t["mnist"]["rows"] < t["big"]["rows"]
    assert t["rank_peak_ratio"] == max(t["big"]["rank_peak_rss_mib"]) / max(
        t["mnist"]["rank_peak_rss_mib"])
    assert not list((folder / "processed").glob("bench-8m-*"))  # removed without --keep
    assert "MNIST-8M scale" in md.read_text()


@pytest.mark.slow(reason=(
    "runs the MNIST-8M section's spark-submit jobs until the injected failure"))
def test_a_failed_mnist8m_stage_names_its_log_and_leaves_no_dataset(tiny, spark):
    folder, _ = tiny
    from bench import mnist8m

    mnist = folder / "processed" / "tiny"
    with pytest.raises(RuntimeError, match=r"jobs/augment.py failed \(whole log: .*augment.log\)"):
        mnist8m.measure(spark, mnist, copies=0, keep=False, log=print)  # refused by the job
    [work] = folder.joinpath("processed").glob("bench-8m-*")
    assert "copies: must be at least 1" in (work / "augment.log").read_text()
    assert not (work / "mnist_8m_aug").exists() and not (work / "mnist_8m").exists()
    shutil.rmtree(work)  # the module's other tests count what is left beside the dataset
