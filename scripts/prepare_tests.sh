#!/usr/bin/env bash
# Prepare what the test suite needs, as CI does: the services (PostgreSQL, Redis, NATS),
# Debian's Chromium and playwright, the Node packages (oidc-provider) and the load
# generators. Each step that cannot be done is said, with its fix, and the run goes on:
# the tests that need it then fail naming it (they never skip silently).
set -uo pipefail
cd "$(dirname "$0")/.."
missing=()
step() {
  local what=$1; shift
  if ! "$@" >/tmp/ghaf-prepare-$$.log 2>&1; then
    missing+=("$what (run: $*)")
    tail -n 5 /tmp/ghaf-prepare-$$.log >&2
  fi
}
step "services: PostgreSQL, Redis, NATS" bash scripts/start_services.sh
step "Chromium and playwright" bash scripts/install_browser.sh
step "Node packages (oidc-provider)" bash scripts/install_node_deps.sh
step "load generators (wrk, hey)" bash scripts/install_bench_tools.sh
rm -f /tmp/ghaf-prepare-$$.log
if [ ${#missing[@]} -gt 0 ]; then
  echo "prepare: could not set up:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "prepare: the tests that need these will fail, naming them" >&2
else
  echo "prepare: services, browser, Node packages and load generators are ready"
fi
