"""Diagnostics are the same numbers on every rank and on one rank (real Horovod, 2 ranks)."""

import pytest

from tests.helpers import ROOT
from tests.helpers.ranks import diagnostics_one_and_two_ranks

pytestmark = pytest.mark.integration


def test_diagnostics_agree_on_two_ranks_and_with_one_rank(spark, monkeypatch):
    import horovod.spark

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the ranks import tests.helpers.ranks

    rank0, rank1 = horovod.spark.run(diagnostics_one_and_two_ranks, num_proc=2,
                                     use_gloo=True, verbose=0)
    assert (rank0["rank"], rank1["rank"], rank0["size"]) == (0, 1, 2)
    keys = set(rank0["two"])
    assert {"diag.h1.sat", "diag.h1.grad_norm", "diag.out.grad_logits"} <= keys
    assert rank0["two"] == rank1["two"]  # every rank measures the same, with no collective
    for key in keys:  # the 2-rank step is the 1-rank step: the same numbers, to rounding
        assert rank0["two"][key] == pytest.approx(rank0["one"][key], rel=1e-4, abs=1e-6), key
    # The step changed what the probe measures, so agreeing after it means something.
    assert rank0["two"]["diag.out.grad_logits"] != rank0["init"]["diag.out.grad_logits"]
