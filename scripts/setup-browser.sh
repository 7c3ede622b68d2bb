#!/usr/bin/env bash
# Headless Chromium + ChromeDriver for the report page test (Debian packages).
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "setup: the tests need Chromium and ChromeDriver: sudo apt-get install chromium chromium-driver" >&2
  exit 1
fi
echo "setup: installing chromium and chromium-driver (apt)"
log="$(mktemp)"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium chromium-driver; } >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"
  echo "setup: installing Chromium failed" >&2
  exit 1
fi
rm -f "$log"
