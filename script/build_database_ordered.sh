#!/usr/bin/env bash
# Build the cpu database in an order that lands finished task files (committable) early: the
# meta-valid tasks one at a time, then the meta-train tasks four at a time (the predictor learns from
# them), then the meta-test tasks one at a time, then everything (the merge of all), then the CE-only
# companion of the meta-test tasks (KD vs CE table, docs/DATABASE.md). Every step resumes where a
# killed run stopped and skips finished work; rerun the script to go on.
#   script/build_database_ordered.sh [key=value ...]          e.g. data_root=/path/to/data
# CODE=<checkout> runs the build with the code of another checkout (a copy frozen at one commit), so
# that commits and merges in this working tree cannot change the code under a running build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ -n "${CODE:-}" ]]; then
  export PYTHONPATH="$CODE" PYTHONSAFEPATH=1   # python -m would otherwise put this tree first on sys.path
fi
# the shipped database's folders, named here (the config writes under runs/)
SHIPPED=(out=assets/cpu/db work_dir=assets/cpu/db_build)
B=("$PY" -m dass.database --config configs/database/cpu.yaml workers=2 "${SHIPPED[@]}" "$@")
source script/database_steps.sh   # step SPLIT KEY... (its keys is replaced below: this build sorts them)
keys() {  # keys SPLIT [key=value ...]: the task keys of one split (named datasets smallest first)
  "$PY" - "$@" <<'PYEOF'
import sys
from dass.config import load
from dass.database.config import DatabaseConfig
from dass.data.registry import dataset_info
cfg = load(DatabaseConfig, "configs/database/cpu.yaml", [*sys.argv[2:], f"splits=[{sys.argv[1]}]"])
named = [t for t in cfg.all_tasks if not t.dataset.startswith("subset:")]
named.sort(key=lambda t: dataset_info(t.dataset, cfg.data_root)["num_classes"])
print("\n".join(t.key for t in named + [t for t in cfg.all_tasks if t.dataset.startswith("subset:")]))
PYEOF
}
for split in meta_valid meta_train meta_test; do
  mapfile -t K < <(keys $split "$@")
  n=$([[ $split == meta_train ]] && echo 4 || echo 1)
  for ((i = 0; i < ${#K[@]}; i += n)); do step $split "${K[@]:i:n}"; done
done
echo "== all $(date -u +%T)"
"${B[@]}"
echo "== CE-only companion of the meta-test tasks $(date -u +%T)"
"${B[@]}" 'splits=[meta_test]' kd_recipe.alpha=1.0 'label_seeds={meta_test: [1]}' \
  work_dir=assets/cpu/db_ce_build out=assets/cpu/db_ce
echo "== done $(date -u +%T)"
