#!/usr/bin/env bash
# Spark resource discovery for GPUs: prints {"name":"gpu","addresses":["0","1",...]}, one address
# per GPU nvidia-smi lists (its index, numbered by PCI bus), and an empty list where there is
# no GPU or no working driver: Spark then says the executor lacks the GPUs it asked for.
#
# Named by spark.executor.resource.gpu.discoveryScript (conf/spark/gpu.conf) and, for
# standalone workers, spark.worker.resource.gpu.discoveryScript. It must be executable on
# every host that runs an executor (or worker): the images hold it at
# /opt/pipeline/scripts/gpu-discovery.sh; on YARN ship it with --files.
set -uo pipefail

indices=""
if command -v nvidia-smi >/dev/null 2>&1; then
  # A driver that fails (no device, version mismatch) counts as no GPU, not as a crash.
  indices="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null || true)"
fi

addresses=""
while read -r index; do
  index="${index//[[:space:]]/}"
  [[ "$index" =~ ^[0-9]+$ ]] || continue
  addresses+="${addresses:+,}\"$index\""
done <<<"$indices"

printf '{"name":"gpu","addresses":[%s]}\n' "$addresses"
