#!/usr/bin/env bash
# Regenerate the table of predictor designs (README, "Predictor designs"): every design of
# bench/predictor_designs.py meta-trained with seeds 0, 1, 2 on a database, then tabulated on its
# meta-valid and meta-test tasks. Finished runs are reused, interrupted ones resume.
#   bash script/predictor_designs.sh [db folder] [output folder] [extra args of the bench script]
#   DATA_ROOT   datasets of the tasks (proxy inputs need images); default data
#   JOBS        meta-training processes at a time; default 2
# Output: <output>/designs.md (the table), designs.json, one run folder per design and seed.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-assets/cpu/db}
OUT=${2:-runs/predictor_designs}
shift $(( $# > 2 ? 2 : $# ))
exec "${PYTHON:-python3}" bench/predictor_designs.py --db "$DB" --out "$OUT" --data-root "${DATA_ROOT:-data}" \
  --jobs "${JOBS:-2}" "$@"
