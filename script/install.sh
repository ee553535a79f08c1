#!/usr/bin/env bash
# Installs the package and what it needs into the current Python (idempotent, quick when done).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, torchvision, dass, submitit, pytest, xdist, matplotlib, sklearn, onnx, onnxruntime" >/dev/null 2>&1 \
   || [[ "${DASS_FORCE_INSTALL:-0}" == 1 ]]; then
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
fi
