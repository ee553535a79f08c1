#!/usr/bin/env bash
# Generates the built-in glyph dataset family (offline, about two minutes on 2 cores).
#   script/make_glyphs.sh [OUT_ROOT] [key=value ...]     (OUT_ROOT defaults to data/)
# Datasets land in OUT_ROOT/glyphs/<name>/; already generated ones with the same config are skipped.
# Examples: script/make_glyphs.sh data workers=4      script/make_glyphs.sh /tmp/g "only=[latin,greek]"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_ROOT=data
if [[ $# -gt 0 && "$1" != *=* ]]; then
  OUT_ROOT=$1
  shift
fi
exec "$PY" -m dass.data glyphs --config configs/data/glyphs.yaml "out_root=$OUT_ROOT" "$@"
