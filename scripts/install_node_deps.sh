#!/usr/bin/env bash
# Install the Node packages the tests use (oidc-provider for tests/integration/test_oidc_provider.py)
# from the committed package-lock.json into a gitignored node_modules. Needs Node 20+ and npm.
set -euo pipefail
cd "$(dirname "$0")/../tests/integration/oidc"
npm ci --no-audit --no-fund --loglevel=error
