#!/usr/bin/env bash
# Install the load generator the serving benchmarks drive (wrk) when it is missing.
set -euo pipefail
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
echo "bench tools: $(wrk --version 2>&1 | head -n1)"
