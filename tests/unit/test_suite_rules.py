"""The suite's own rules (tests/helpers/suite.py), run on a throw-away suite with pytester: a test
over the time limit fails unless marked slow with a reason; modules with module-scoped fixtures
keep their tests on one xdist worker; the timeline charges each test the CPU of what it started."""

from __future__ import annotations

import csv

import pytest

from tests.helpers import cpu

pytest_plugins = ["pytester"]

SLOW_SUITE = """
import time
import pytest

def test_quick():
    pass

def test_over_the_limit():
    time.sleep(0.6)

@pytest.mark.slow(reason="it trains a real model")
def test_over_the_limit_with_a_reason():
    time.sleep(0.6)

@pytest.mark.slow
def test_over_the_limit_without_a_reason():
    time.sleep(0.6)

@pytest.fixture
def slow_setup():
    time.sleep(0.6)

def test_over_the_limit_in_its_setup(slow_setup):
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # The inner suite runs in this process: without this, the outer run's xdist worker count
    # would stretch the inner limit (0.3 s x workers/cores) and the messages would differ.
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    pytester.makeconftest('pytest_plugins = ["tests.helpers.suite"]\n')
    return pytester


def test_a_test_over_the_limit_fails_unless_marked_slow_with_a_reason(suite):
    suite.makepyfile(test_timed=SLOW_SUITE)
    result = suite.runpytest("-p", "no:xdist", "-o", "slow_test_seconds=0.3", "-p",
                             "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=3)
    outcomes = {r.nodeid.split("::")[1]: r.outcome
                for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call"}
    assert outcomes == {"test_quick": "passed", "test_over_the_limit": "failed",
                        "test_over_the_limit_with_a_reason": "passed",
                        "test_over_the_limit_without_a_reason": "failed",
                        "test_over_the_limit_in_its_setup": "failed"}
    result.stdout.fnmatch_lines(["*test_over_the_limit took * s (its setup + call), over the "
                                 "suite's 0.3 s per test*slow(reason=...)*"])


SHARED_SUITE = """
import time
import pytest
from tests.helpers.suite import slow_fixture

@pytest.fixture(scope="module")
def slow_shared():
    time.sleep(0.6)

@pytest.fixture(scope="module")
@slow_fixture("packs an environment")
def slow_shared_with_a_reason():
    time.sleep(0.6)

@pytest.fixture(scope="module")
def built_on_the_excused(slow_shared_with_a_reason):
    time.sleep(0.05)

def test_first_user_of_an_excused_shared_fixture(built_on_the_excused):
    time.sleep(0.1)

def test_first_user_of_a_slow_shared_fixture(slow_shared):
    pass

def test_second_user_of_a_slow_shared_fixture(slow_shared):
    pass

def test_own_time_still_counts(slow_shared_with_a_reason):
    time.sleep(0.6)
"""


def test_a_shared_fixture_is_timed_on_its_own_not_charged_to_its_first_test(suite):
    suite.makepyfile(test_shared=SHARED_SUITE)
    result = suite.runpytest("-p", "no:xdist", "-o", "slow_test_seconds=0.3", "-p",
                             "no:cacheprovider")
    outcomes = {r.nodeid.split("::")[1]: r.outcome
                for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call"}
    # The excused fixture (and the quick one built on it) charge nothing to the test that
    # built them; the unexcused one fails the test that built it, once; a test's own time counts.
    assert outcomes == {"test_first_user_of_an_excused_shared_fixture": "passed",
                        "test_first_user_of_a_slow_shared_fixture": "failed",
                        "test_second_user_of_a_slow_shared_fixture": "passed",
                        "test_own_time_still_counts": "failed"}
    result.stdout.fnmatch_lines(["*shared fixture 'slow_shared' took * s to build, over the "
                                 "suite's 0.3 s per test*@slow_fixture(reason=...)*"])


def test_the_default_limit_is_two_minutes(suite):
    suite.makepyfile(test_timed=SLOW_SUITE)
    suite.runpytest("-p", "no:xdist", "-p", "no:cacheprovider").assert_outcomes(passed=5)


def test_modules_building_a_module_fixture_are_grouped_and_long_modules_go_first(suite):
    suite.makepyfile(
        test_shared="""
import pytest

@pytest.fixture(scope="module")
def built():
    return 1

def test_a(built):
    pass

def test_b():
    pass
""",
        test_free="def test_c():\n    pass\n")
    items, _ = suite.inline_genitems("-p", "no:xdist")
    groups = {i.name: [m.args for m in i.iter_markers("xdist_group")] for i in items}
    assert groups == {"test_a": [("test_shared.py",)], "test_b": [("test_shared.py",)],
                      "test_c": []}


def test_a_module_building_a_module_fixture_runs_on_one_worker_and_builds_it_once(suite):
    suite.makepyfile(test_shared="""
import os
import pytest

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    marker = tmp_path_factory.getbasetemp().parent / f"built-{os.getpid()}"
    marker.write_text("")
    return os.environ["PYTEST_XDIST_WORKER"]

@pytest.mark.parametrize("n", range(6))
def test_uses_it(built, n):
    assert built == os.environ["PYTEST_XDIST_WORKER"]
""", test_free="import pytest\n\n@pytest.mark.parametrize('n', range(6))\n"
                   "def test_free(n):\n    pass\n")
    result = suite.runpytest("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    workers = {r.node.gateway.id for r in result.reprec.getreports("pytest_runtest_logreport")
               if r.when == "call" and "test_shared.py" in r.nodeid}
    assert len(workers) == 1, workers


def test_the_limit_stretches_with_more_workers_than_cores(monkeypatch):
    import os

    from tests.helpers import suite

    cores = len(os.sched_getaffinity(0))
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(cores))
    assert suite.contention() == 1.0
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(2 * cores))
    assert suite.contention() == 2.0
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert suite.contention() == 1.0


CPU_SUITE = """
import subprocess
import sys

def test_idle():
    pass

def test_busy_child():
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(6_000_000))"], check=True)
"""


def test_the_timeline_charges_each_test_the_cpu_of_the_processes_it_started(suite):
    suite.makepyfile(test_cpu=CPU_SUITE)
    timeline = suite.path / "timeline.tsv"
    suite.runpytest("-p", "no:xdist", "-p", "no:cacheprovider",
                    f"--timeline={timeline}").assert_outcomes(passed=2)
    with timeline.open(encoding="utf-8") as f:
        cpu_of = {(r["nodeid"].split("::")[1], r["when"]): r["cpu"]
                  for r in csv.DictReader(f, delimiter="\t")}
    assert len(cpu_of) == 6  # setup, call and teardown of each
    if not cpu.available():  # no writable cgroup v1 cpuacct hierarchy: no column to fill
        assert set(cpu_of.values()) == {""}
        return
    busy, idle = float(cpu_of["test_busy_child", "call"]), float(cpu_of["test_idle", "call"])
    assert busy > 0.3 and idle < busy / 4, cpu_of
