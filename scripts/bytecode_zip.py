"""Add compiled bytecode beside the sources of a zip of Python modules, such as PySpark's
``python/lib/pyspark.zip`` and its py4j zip (scripts/setup.sh runs it on the venv's).

    python scripts/bytecode_zip.py ZIP [ZIP ...]

Spark puts those zips first on the PYTHONPATH of every Python process it starts: its Python
daemon and workers, the driver of a spark-submit job, and the processes they start (Horovod's
middleman before each rank). Python never writes bytecode into a zip, so each of those
processes compiles every PySpark module it imports from source, again. With a ``.pyc``
beside each ``.py`` in the zip they load the bytecode instead (BENCHMARKS.md, "PySpark's
zipped sources").

The ``.pyc`` files are hash-checked (PEP 552): the import hashes the ``.py`` it sits beside
and compiles the source, as before, when they differ. An interpreter of another version
skips them for their magic number and compiles the source too. A zip already complete for
this interpreter is left untouched; a rewritten one replaces the old in one rename.
"""

from __future__ import annotations

import argparse
import importlib.util
import marshal
import os
import sys
import tempfile
import zipfile
from pathlib import Path

MAGIC = importlib.util.MAGIC_NUMBER  # a .pyc another interpreter wrote is replaced
CHECKED_HASH = (0b11).to_bytes(4, "little")  # PEP 552 flags: hash-based, checked at import


def compile_zip(path: Path) -> int:
    """Give every ``.py`` in the zip at ``path`` a current ``.pyc``; the number added."""
    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    by_name = {info.filename: data for info, data in entries}
    compiled = {}
    for info, data in entries:
        pyc = info.filename + "c"
        if info.filename.endswith(".py") and not by_name.get(pyc, b"").startswith(MAGIC):
            code = _bytecode(path, info, data)
            if code is not None:
                compiled[pyc] = (_pyc_info(info), code)
    if not compiled:
        return 0
    kept = [(info, data) for info, data in entries if info.filename not in compiled]
    _write(path, kept + list(compiled.values()))
    return len(compiled)


def _bytecode(archive: Path, info: zipfile.ZipInfo, source: bytes) -> bytes | None:
    """A hash-checked ``.pyc`` of ``source``; None for a module that does not compile, which
    an import would report from the source as before."""
    try:  # the file name zipimport itself gives a module compiled from this archive
        code = compile(source, f"{archive}{os.sep}{info.filename}", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return MAGIC + CHECKED_HASH + importlib.util.source_hash(source) + marshal.dumps(code)


def _pyc_info(source: zipfile.ZipInfo) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(source.filename + "c", date_time=source.date_time)
    info.compress_type = source.compress_type
    info.external_attr = source.external_attr
    return info


def _write(path: Path, entries: list[tuple[zipfile.ZipInfo, bytes]]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(out, "w") as zf:
            for info, data in entries:
                zf.writestr(info, data)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("zips", nargs="+", type=Path)
    args = p.parse_args(argv)
    for path in args.zips:
        try:
            added = compile_zip(path)
        except (OSError, zipfile.BadZipFile) as exc:
            print(f"bytecode_zip: {path}: {exc}", file=sys.stderr)
            return 1
        print(f"bytecode_zip: {path}: " + (f"{added} module(s) compiled" if added
                                           else "already compiled"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
