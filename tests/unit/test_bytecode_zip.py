"""scripts/bytecode_zip.py: modules in a zip with bytecode beside their sources import without
being compiled, an edited source is compiled afresh, and setup.sh has done it to PySpark's zips.
Each import runs in a fresh interpreter that counts what ``compile`` is asked to compile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.bytecode_zip import compile_zip, main

PROBE = """
import builtins, json, sys
real, seen = builtins.compile, []
def counting(source, filename, *args, **kwargs):
    seen.append(str(filename))
    return real(source, filename, *args, **kwargs)
builtins.compile = counting
import importlib
module = importlib.import_module(sys.argv[1])
print(json.dumps({"value": getattr(module, "VALUE", None), "file": module.__file__,
                  "compiled": sorted({f for f in seen if sys.argv[2] in f})}))
"""


def imported(zip_path: Path, module: str) -> dict:
    """Import ``module`` with ``zip_path`` first on PYTHONPATH, as Spark's processes do."""
    env = {**os.environ, "PYTHONPATH": str(zip_path), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", PROBE, module, str(zip_path)], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout)


def write_zip(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


PACKAGE = {"pkg/__init__.py": "", "pkg/mod.py": "VALUE = 1\n"}


def test_a_compiled_zip_imports_its_modules_without_compiling_them(tmp_path):
    archive = write_zip(tmp_path / "lib.zip", PACKAGE)
    before = imported(archive, "pkg.mod")
    assert before["value"] == 1 and len(before["compiled"]) == 2  # the package and the module
    assert compile_zip(archive) == 2
    after = imported(archive, "pkg.mod")
    # Loaded from the bytecode: zipimport names the .pyc as the module's file.
    assert after == {"value": 1, "file": before["file"] + "c", "compiled": []}


def test_a_source_edited_after_compiling_is_compiled_afresh(tmp_path):
    archive = write_zip(tmp_path / "lib.zip", PACKAGE)
    compile_zip(archive)
    with zipfile.ZipFile(archive) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    entries["pkg/mod.py"] = b"VALUE = 2\n"  # the old .pyc stays beside it
    write_zip(archive, entries)
    result = imported(archive, "pkg.mod")
    assert result["value"] == 2 and result["compiled"] == [f"{archive}{os.sep}pkg/mod.py"]


def test_a_complete_zip_is_left_untouched_and_a_partial_one_completed(tmp_path):
    archive = write_zip(tmp_path / "lib.zip", PACKAGE)
    compile_zip(archive)
    stamp = archive.stat().st_mtime_ns
    assert compile_zip(archive) == 0 and archive.stat().st_mtime_ns == stamp
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("pkg/extra.py", "VALUE = 3\n")
    assert compile_zip(archive) == 1
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert sorted(names) == sorted([*PACKAGE, "pkg/extra.py", "pkg/__init__.pyc",
                                    "pkg/mod.pyc", "pkg/extra.pyc"])  # no entry twice


def test_a_module_that_does_not_compile_fails_at_import_as_before(tmp_path):
    archive = write_zip(tmp_path / "lib.zip", {**PACKAGE, "pkg/broken.py": "def (:\n"})
    assert compile_zip(archive) == 2  # the two that compile
    env = {**os.environ, "PYTHONPATH": str(archive)}
    proc = subprocess.run([sys.executable, "-c", "import pkg.broken"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "SyntaxError" in proc.stderr


def test_a_file_that_is_not_a_zip_is_named_in_one_line_and_left_as_it_was(tmp_path, capsys):
    bogus = tmp_path / "pyspark.zip"
    bogus.write_bytes(b"not a zip")
    assert main([str(bogus)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bogus) in err[0] and "zip" in err[0]
    assert bogus.read_bytes() == b"not a zip" and os.listdir(tmp_path) == ["pyspark.zip"]


@pytest.mark.parametrize("module", ["pyspark.worker", "py4j.java_gateway"])
def test_setup_compiled_the_zips_spark_puts_first_on_its_processes_path(module):
    import pyspark

    lib = Path(pyspark.__file__).parent / "python" / "lib"
    [archive] = [p for p in lib.glob("*.zip") if p.name.startswith(module.split(".")[0])]
    result = imported(archive, module)
    assert result["file"].startswith(str(archive)) and result["file"].endswith(".pyc")
    assert result["compiled"] == []
