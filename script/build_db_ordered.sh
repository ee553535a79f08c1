#!/usr/bin/env bash
# Build the cpu database task by task, so that finished task files land (and can be committed) early:
# the meta-test tasks one at a time, then the meta-valid ones, then everything else (the meta-train
# class subsets) and the merge, then the CE-only companion of the meta-test tasks (KD vs CE table,
# docs/DATABASE.md). Every step resumes where a killed run stopped; rerun the script to go on.
#   script/build_db_ordered.sh [key=value ...]          e.g. data_root=/path/to/data
# CODE=<checkout> runs the build with the code of another checkout (a copy frozen at one commit), so
# that commits and merges in this working tree cannot change the code under a running build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ -n "${CODE:-}" ]]; then
  export PYTHONPATH="$CODE" PYTHONSAFEPATH=1   # python -m would otherwise put this tree first on sys.path
fi
# dass.build_db (the alias of dass.database) also exists in checkouts from before the stage packages
B=("$PY" -m dass.build_db --config configs/db/cpu.yaml workers=2 "$@")
tasks() {  # tasks SPLIT [key=value ...]: the datasets of one split, smallest first
  "$PY" - "$@" <<'PYEOF'
import sys
from dass.config import load
try:
    from dass.database.config import BuildConfig
except ImportError:  # a checkout from before the stage packages
    from dass.database.builder import BuildConfig
from dass.data.registry import dataset_info
cfg = load(BuildConfig, "configs/db/cpu.yaml", sys.argv[2:])
names = [t.dataset for t in cfg.tasks if t.split == sys.argv[1]]
try:
    names.sort(key=lambda n: dataset_info(n, cfg.data_root)["num_classes"])
except Exception:
    pass
print("\n".join(names))
PYEOF
}
for split in meta_test meta_valid; do
  for ds in $(tasks $split "$@"); do
    echo "== $split $ds $(date -u +%T)"
    "${B[@]}" --stage students "tasks=[{dataset: $ds, split: $split}]" 'subset_tasks=[]'
  done
done
echo "== all $(date -u +%T)"
"${B[@]}"
echo "== CE-only companion of the meta-test tasks $(date -u +%T)"
"${B[@]}" 'splits=[meta_test]' kd.alpha=1.0 'label_seeds={meta_test: [1]}' \
  work_dir=assets/cpu/db_ce_build out=assets/cpu/db_ce
echo "== done $(date -u +%T)"
