# Shared by the ordered database builds (build_database_ordered.sh, build_scratch_companion.sh,
# build_regimes.sh); sourced, not run. Needs PY (python) and B (the build command as an array).
#   keys CONFIG SPLIT: the task keys of one split of a database config, in config order
#   step SPLIT KEY...: the students of these tasks, and their merge
keys() {
  "$PY" - "$1" "$2" <<'PYEOF'
import sys
from dass.config import load
from dass.database.config import DatabaseConfig
cfg = load(DatabaseConfig, sys.argv[1], [f"splits=[{sys.argv[2]}]"])
print("\n".join(t.key for t in cfg.all_tasks))
PYEOF
}
step() {
  local split=$1; shift
  echo "== $split $* $(date -u +%T)"
  "${B[@]}" --phase students "splits=[$split]" "only=[$(IFS=,; echo "$*")]"
}
