#!/usr/bin/env bash
# Pack what executors need into one archive for spark-submit --archives (`make pack`):
#
#   bash scripts/pack.sh [dist/actloss-env.tar.gz]
#
# The project is built as a wheel, a fresh venv (build/pack-venv) gets the runtime stack only
# (TensorFlow, Horovod compiled against it, the wheel with its declared dependencies, pinned
# by constraints.txt; GPU=1 for the GPU build) through scripts/setup.sh, and venv-pack
# archives it. The dev .venv cannot be packed as it is: the project is installed editable
# there, and it carries the test tools.
#
# Executors unpack the archive as ./environment in their working folder
# (--archives dist/actloss-env.tar.gz#environment) and run ./environment/bin/python
# (spark.pyspark.python), which the sweep also gives Horovod for its ranks. venv-pack does not
# pack Python itself: every executor host needs Python 3.11 under the prefix this venv's
# python links to, or set PACK_PYTHON_PREFIX to the prefix it has there (e.g. /usr/local,
# as in the python:3.11 images).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT="${1:-dist/actloss-env.tar.gz}"
DEV_VENV="${VENV:-.venv}"
BUILD="${PACK_BUILD:-build/pack-venv}"
WHEELS=build/wheel
started=$SECONDS

die() { echo "pack: $*" >&2; exit 1; }
[ -x "$DEV_VENV/bin/venv-pack" ] || die "$DEV_VENV/bin/venv-pack missing: run make setup first"

echo "pack: building the project's wheel"
rm -rf "$WHEELS"
"$DEV_VENV/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WHEELS" . \
  || die "building the wheel failed"
wheel="$(ls "$WHEELS"/actloss_pipeline-*.whl)"

# The runtime venv is built from the same Python the dev venv was made from.
base_python="$("$DEV_VENV/bin/python" -c 'import sys; print(sys._base_executable)')"
VENV="$BUILD" PYTHON="$base_python" WHEEL="$wheel" bash scripts/setup.sh

echo "pack: packing $BUILD into $OUT"
mkdir -p "$(dirname "$OUT")"
"$DEV_VENV/bin/venv-pack" --prefix "$BUILD" --output "$OUT" --force --quiet \
  ${PACK_PYTHON_PREFIX:+--python-prefix "$PACK_PYTHON_PREFIX"} || die "venv-pack failed"
chmod 644 "$OUT"  # venv-pack leaves it readable by its owner only
echo "pack: $OUT ($(du -h "$OUT" | cut -f1), $((SECONDS - started)) s)"
