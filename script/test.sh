#!/usr/bin/env bash
# Installs what the tests need, then runs them (CPU, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash script/install.sh
PY=${PYTHON:-python3}
exec "$PY" -m pytest -q "$@" tests
