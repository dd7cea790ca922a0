#!/usr/bin/env bash
# Install what the browser tests (tests/e2e/test_drift_report_browser.py) drive: Debian's
# Chromium at /usr/bin/chromium and the Python playwright package (its bundled driver only;
# no browser download). Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
PY=${PYTHON:-.venv/bin/python}
# make installs it with the dev extra; this covers an existing .venv made before that.
if [ -x "$PY" ]; then
  "$PY" -c "import playwright" 2>/dev/null || "$PY" -m pip install -q "playwright==1.55.0"
fi
echo "browser: $(chromium --version)"
