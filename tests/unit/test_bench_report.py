"""BENCHMARKS.md rewritten by a bench run keeps the sections measured by other means."""

from __future__ import annotations

from bench import report


def _results() -> dict:
    return {"date": "2026-12-03 10:00:00", "machine": {"cpus": 2, "platform": "Linux"},
            "total_seconds": 60.0, "quick": True, "versions": {"python": "3.11"}}


def test_a_bench_run_keeps_the_hand_written_tail(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# Benchmarks\n\nold generated part\n\n{report.KEPT_MARK}\n\n"
                  "## Test suite\n\n| test | s |\n")
    report.write(_results(), tmp_path / "results", md)
    text = md.read_text()
    assert "old generated part" not in text  # the generated part is new ...
    assert "Measured 2026-12-03 10:00:00 on 2 cores" in text
    tail = f"{report.KEPT_MARK}\n\n## Test suite\n\n| test | s |\n"
    assert text.endswith(tail)  # ... the tail kept
    report.write(_results(), tmp_path / "results", md)
    assert md.read_text() == text  # and kept once, however often it runs


def test_without_the_mark_nothing_is_kept(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Test suite\n")
    report.write(_results(), tmp_path / "results", md)
    assert "## Test suite" not in md.read_text()
