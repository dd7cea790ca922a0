#!/usr/bin/env bash
# Install the load generators the serving benchmarks drive (wrk; hey for the fixed-rate soak).
set -euo pipefail
if ! command -v wrk >/dev/null 2>&1 || ! command -v hey >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk hey >/dev/null
fi
echo "bench tools: $(wrk --version 2>&1 | head -n1)"
