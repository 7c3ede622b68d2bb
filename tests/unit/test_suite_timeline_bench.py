"""bench/suite_timeline.py: two runs' timelines compared module by module, by CPU."""

from __future__ import annotations

from bench import suite_timeline

HEADER = "worker\tnodeid\twhen\tstart\tstop\toutcome\tcpu\n"


def _timeline(path, rows: list[tuple[str, float]]):
    lines = [f"gw0\t{node}\tcall\t{k}\t{k + 1}\tpassed\t{cpu}\n"
             for k, (node, cpu) in enumerate(rows)]
    path.write_text(HEADER + "".join(lines))
    return suite_timeline.load(path)


def test_modules_are_compared_by_cpu_with_their_ratio(tmp_path):
    old = _timeline(tmp_path / "old.tsv", [("tests/a.py::t1", 60.0), ("tests/a.py::t2", 40.0),
                                           ("tests/b.py::t", 50.0)])
    new = _timeline(tmp_path / "new.tsv", [("tests/a.py::t1", 30.0), ("tests/a.py::t2", 20.0),
                                           ("tests/c.py::t", 5.0)])
    lines = suite_timeline.compare(new, old, top=5).splitlines()
    assert lines[0] == ("CPU by module against the other run: 55 against 150 core-seconds "
                        "(0.37)")
    a, b = lines[3:5]  # the old run's largest first
    assert a.split() == ["100", "50", "0.50", "tests/a.py"]
    assert b.split() == ["50", "0", "0.00", "tests/b.py"]  # a module the new run lacks
    assert len(lines) == 5


def test_the_command_prints_the_comparison_only_when_asked(tmp_path, capsys):
    _timeline(tmp_path / "old.tsv", [("tests/a.py::t", 10.0)])
    _timeline(tmp_path / "new.tsv", [("tests/a.py::t", 5.0)])
    assert suite_timeline.main([str(tmp_path / "new.tsv")]) == 0
    assert "against the other run" not in capsys.readouterr().out
    assert suite_timeline.main([str(tmp_path / "new.tsv"), "--against",
                                str(tmp_path / "old.tsv")]) == 0
    assert "10        5   0.50  tests/a.py" in capsys.readouterr().out
