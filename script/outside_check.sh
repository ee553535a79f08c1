#!/usr/bin/env bash
# The cpu recipes on datasets outside the built-in glyph family (issue #18: teachers >= 50 % and label
# reliability >= 0.9 on data the project never saw). Three steps, each resumable (rerun to go on):
#   1. generates the probe sets of configs/data/outside.yaml that the tasks name (outside/<name>) into
#      <data_root>/outside/ if they are missing;
#   2. builds the database of configs/database/outside.yaml: a teacher per task (60 epochs), 50 students
#      KD-trained with seeds 1 and 2 (runs/outside_check/ unless work_dir=/out= say otherwise);
#   3. prints `python -m dass.database --validate <out>` (per task: teacher accuracy, seed rho,
#      reliability) and a verdict: exit 1 when a teacher is under 50 % or the mean reliability under 0.9.
#   script/outside_check.sh [--dry-run] [key=value ...]       keys: python -m dass.database --help
#   e.g. script/outside_check.sh data_root=/data 'tasks=[{dataset: folder:/path/to/images, split: meta_test}]'
#        script/outside_check.sh 'tasks=[{dataset: npy:/path/to/arrays, split: meta_test}]'
# --dry-run prints the commands without running them. CONFIG= another database config.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-configs/database/outside.yaml}
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then
  DRY=1
  shift
fi
# the outside/<name> datasets the tasks name (comma-separated), data_root and out; a bad key or
# value stops here with one error line (exit 2)
RESOLVED=$("$PY" - "$CONFIG" "$@" <<'PYEOF'
import sys
from dass.config import load
from dass.data.glyph_config import load_config as load_glyphs
from dass.database.config import DatabaseConfig
from dass.errors import DassError
try:
    cfg = load(DatabaseConfig, sys.argv[1], sys.argv[2:])
    names = [t.dataset.split("/", 1)[1] for t in cfg.tasks
             if t.split in cfg.splits and t.dataset.startswith("outside/")]
    known = [d.name for d in load_glyphs("configs/data/outside.yaml").datasets]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise DassError(f"dataset 'outside/{unknown[0]}' is not in configs/data/outside.yaml "
                        f"(known: {', '.join(known)})")
except DassError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
print(",".join(dict.fromkeys(names)))  # first: an empty last line would be lost by $(...)
print(cfg.data_root)
print(cfg.out)
PYEOF
)
{ read -r MEMBERS; read -r DATA_ROOT; read -r OUT; } <<< "$RESOLVED"
GEN=("$PY" -m dass.data glyphs --config configs/data/outside.yaml "out_root=$DATA_ROOT" "only=[$MEMBERS]")
BUILD=("$PY" -m dass.database --config "$CONFIG" "$@")
VALIDATE=("$PY" -m dass.database --validate "$OUT")
if [[ $DRY == 1 ]]; then
  if [[ -n "$MEMBERS" ]]; then printf '%q ' "${GEN[@]}"; echo; fi
  printf '%q ' "${BUILD[@]}"; echo
  printf '%q ' "${VALIDATE[@]}"; echo
  exit 0
fi
if [[ -n "$MEMBERS" ]]; then
  echo "== outside data: $MEMBERS -> $DATA_ROOT/outside $(date -u +%T)"
  "${GEN[@]}" --quiet
fi
echo "== database: $CONFIG $* $(date -u +%T)"
"${BUILD[@]}"
echo "== validate $OUT $(date -u +%T)"
"${VALIDATE[@]}"
"$PY" - "$OUT" <<'PYEOF'
import sys
from dass.database.commands import validate_db
rows = [r for split in validate_db(sys.argv[1]).values() for r in split]
low = [f"{r['key']} {r['teacher_best_acc']} %" for r in rows
       if r["teacher_best_acc"] is None or r["teacher_best_acc"] < 50]
rel = [r["reliability"] for r in rows if r["reliability"] is not None]
mean_rel = sum(rel) / len(rel) if rel else None
print(f"teachers >= 50 %: {'yes' if not low else 'no (' + ', '.join(low) + ')'}")
print("mean reliability >= 0.9: " + ("no (no task gives one: two label seeds needed)" if mean_rel is None else
      f"{'yes' if mean_rel >= 0.9 else 'no'} ({mean_rel:.3f} over {len(rel)} tasks, lowest {min(rel):.3f})"))
ok = not low and mean_rel is not None and mean_rel >= 0.9
print("outside check: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PYEOF
