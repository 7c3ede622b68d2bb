#!/usr/bin/env bash
# Pack what executors need into one archive for spark-submit --archives (`make pack`):
#
#   bash scripts/pack.sh [dist/actloss-env.tar.gz]
#   bash scripts/pack.sh --inputs-hash      # the digest of what goes into the archive
#
# An archive is rebuilt only when what goes into it changed: the digest of its inputs (the
# package's sources and conf/, the requirements, these scripts, GPU and PACK_PYTHON_PREFIX) is
# kept beside it in <archive>.inputs, and an archive whose digest matches is left as it is.
# PACK_COMPRESS_LEVEL (0-9, default 4) trades archive size for packing time.
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

inputs_hash() {
  { find pipeline jobs conf -type f ! -path '*/__pycache__/*' ! -name '*.pyc'
    printf '%s\n' pyproject.toml requirements.txt constraints.txt scripts/setup.sh scripts/pack.sh \
      scripts/bytecode_zip.py
  } | LC_ALL=C sort | xargs sha256sum \
    | { cat; echo "GPU=${GPU:-} PACK_PYTHON_PREFIX=${PACK_PYTHON_PREFIX:-}"; } \
    | sha256sum | cut -c1-20
}
if [ "${1:-}" = --inputs-hash ]; then inputs_hash; exit 0; fi

OUT="${1:-dist/actloss-env.tar.gz}"
digest="$(inputs_hash)"
if [ -f "$OUT" ] && [ "$(cat "$OUT.inputs" 2>/dev/null)" = "$digest" ]; then
  echo "pack: $OUT is up to date (inputs $digest)"
  exit 0
fi
DEV_VENV="${VENV:-.venv}"
BUILD="${PACK_BUILD:-build/pack-venv}"
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
started=$SECONDS

die() { echo "pack: $*" >&2; exit 1; }
[ -x "$DEV_VENV/bin/venv-pack" ] || die "$DEV_VENV/bin/venv-pack missing: run make setup first"

echo "pack: building the project's wheel"
"$DEV_VENV/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WHEELS" . \
  || die "building the wheel failed"
wheel="$(ls "$WHEELS"/actloss_pipeline-*.whl)"

# The runtime venv is built from the same Python the dev venv was made from.
base_python="$("$DEV_VENV/bin/python" -c 'import sys; print(sys._base_executable)')"
VENV="$BUILD" PYTHON="$base_python" WHEEL="$wheel" bash scripts/setup.sh

echo "pack: packing $BUILD into $OUT"
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.inputs"
# Left out, about a third of the archive: PySpark's jars (executors run their cluster's Spark,
# whose python/lib zips Spark puts first on their path) and TensorFlow's C++ headers (for
# building ops; Horovod was built against them above).
site="lib/python3.*/site-packages"
"$DEV_VENV/bin/venv-pack" --prefix "$BUILD" --output "$OUT" --force --quiet \
  --compress-level "${PACK_COMPRESS_LEVEL:-4}" \
  --exclude "$site/pyspark/jars/*" --exclude "$site/tensorflow/include/*" \
  ${PACK_PYTHON_PREFIX:+--python-prefix "$PACK_PYTHON_PREFIX"} || die "venv-pack failed"
chmod 644 "$OUT"  # venv-pack leaves it readable by its owner only
echo "$digest" >"$OUT.inputs"
echo "pack: $OUT ($(du -h "$OUT" | cut -f1), $((SECONDS - started)) s)"
