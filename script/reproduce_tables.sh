#!/usr/bin/env bash
# The paper profile end to end on the real datasets (GPU machine): download, teachers, database,
# meta-training, search, KD of the picks (seeds 1 2 3), tables.
#   NPROC=8 bash script/reproduce_tables.sh            # build everything (torchrun over 8 GPUs)
#   FROM_ORIGINAL=1 bash script/reproduce_tables.sh    # start from the original release's files
# Work (counts, not timings: no GPU was available to measure them here): 14 teachers x 180 epochs;
# 8 x 100 + 2 x 50 + 4 x 50 = 1,100 KD runs x 50 epochs for the database (the dominant cost; each
# stage resumes after a kill); meta-training 1,000 episodes; search 10,000 candidates per dataset;
# 4 datasets x 3 seeds x 50 epochs of KD for the picks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash script/install.sh
PY=${PYTHON:-python3}
NPROC=${NPROC:-1}
ROOT=${DATA_ROOT:-data}
RUN=${RUN_DIR:-runs/paper}
run() { if [[ "$NPROC" -gt 1 ]]; then "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m "$@"; else "$PY" -m "$@"; fi; }

echo "== download datasets"
$PY download/download_dataset.py --name all --root "$ROOT"

if [[ "${FROM_ORIGINAL:-0}" == 1 ]]; then
  echo "== original teachers and preprocessed database -> this project's format"
  $PY download/download_checkpoint.py --root "$ROOT/original"
  $PY download/download_preprocessed.py --root "$ROOT/original"
  $PY -m dass.compat import --src "$ROOT/original" --out "$RUN/db"
  DB=$RUN/db
  teacher() { echo "$RUN/db/teachers/$1/teacher.pt"; }
else
  echo "== teachers and database (resumable)"
  run dass.database --config configs/database/paper.yaml data_root="$ROOT" out="$RUN/db" \
    work_dir="$RUN/database" teachers_dir="$RUN/teachers" launcher=$([[ "$NPROC" -gt 1 ]] && echo torchrun || echo local)
  DB=$RUN/db
  teacher() { echo "$RUN/teachers/$1/teacher.pt"; }
fi

echo "== meta-training: DaSS and the KD-unaware baseline (input A)"
$PY -m dass.predictor --config configs/predictor/paper.yaml db="$DB" run_dir="$RUN/meta_train/dass"
$PY -m dass.predictor --config configs/predictor/paper.yaml db="$DB" run_dir="$RUN/meta_train/meta_nas_A" input_type=A

for ds in cub dtd quickdraw stanford_cars; do
  echo "== search + KD: $ds"
  $PY -m dass.search --config configs/search/paper.yaml dataset=$ds data_root="$ROOT" teacher="$(teacher $ds)" \
    predictor="$RUN/meta_train/dass/best.pt" run_dir="$RUN/search/$ds"
  run dass.kd --config configs/kd/paper.yaml dataset=$ds data_root="$ROOT" teacher="$(teacher $ds)" \
    student_file="$RUN/search/$ds/top.json" run_dir="$RUN/kd/$ds" "seeds=[1,2,3]"
done

echo "== tables"
$PY -m dass.evaluation --config configs/evaluation/paper.yaml db="$DB" data_root="$ROOT" run_dir="$RUN/evaluate" \
  "predictors={dass: $RUN/meta_train/dass/best.pt, meta_nas_A: $RUN/meta_train/meta_nas_A/best.pt}"
echo "tables: $RUN/evaluate/correlations.md $RUN/evaluate/search_kd.md; KD of the picks: $RUN/kd/*/results.csv"
