#!/usr/bin/env bash
# While a database build runs (script/build_database.sh), merge the tasks that are finished and commit
# their task files with the finished KD results and trained teachers, so that the end of a session
# loses nothing; rerun it every so often. Commits only those three folders (out, work_dir,
# teachers_dir of the config), whatever else is staged.
#   script/commit_db_progress.sh [key=value ...]     CONFIG=configs/database/cpu.yaml by default
#   script/commit_db_progress.sh out=assets/cpu/db   (the shipped database: its folder named, the config writes under runs/)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-configs/database/cpu.yaml}
mapfile -t DIRS < <("$PY" - "$CONFIG" "$@" <<'EOF'
import sys
from pathlib import Path
from dass.config import load
from dass.database.config import DatabaseConfig
cfg = load(DatabaseConfig, sys.argv[1], sys.argv[2:])
for d in (cfg.out, cfg.work_dir, cfg.teachers_dir or Path(cfg.work_dir) / "teachers"):
    print(d)
EOF
)
"$PY" -m dass.database --config "$CONFIG" --phase merge "$@"
EXISTING=()
for d in "${DIRS[@]}"; do [[ -e "$d" ]] && EXISTING+=("$d"); done
git add -- "${EXISTING[@]}"
if ! git diff --cached --name-only -- "${EXISTING[@]}" | grep -qv -e '/database\.log$' -e '/config\.yaml$'; then
  git reset -q -- "${EXISTING[@]}"
  echo "nothing new to commit"   # (a merge that found nothing new only appends to the log)
  exit 0
fi
git commit -q -m "database build progress: $(basename "$CONFIG") ($(date -u '+%Y-%m-%d %H:%M') UTC)" -- "${EXISTING[@]}"
git log --oneline -1
