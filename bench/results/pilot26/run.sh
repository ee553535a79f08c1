#!/usr/bin/env bash
# #26 pilot: teacher strength on one dataset. Teachers of glyphs/hebrew trained 6, 8, 12, 16 epochs (26.5, 37.9, 68.7, 86.7 %)
# (cpu teacher recipe otherwise), then 24 students x KD seeds 1, 2 (database recipe, 10 epochs) per teacher.
set -euo pipefail
cd /work/wt/pilot
export OMP_NUM_THREADS=1
for E in 6 8 12 16; do
  [[ -f /work/pilot26/teachers/e$E/teacher.pt ]] || python -m dass.teacher --config configs/teacher/cpu.yaml \
    dataset=glyphs/hebrew data_root=/work/main/data recipe.epochs=$E run_dir=/work/pilot26/teachers/e$E progress=false
done
python -m dass.database --config configs/database/cpu.yaml data_root=/work/main/data \
  out=/work/pilot26/db work_dir=/work/pilot26/work teachers_dir=/work/pilot26/tteach workers=1 \
  'subset_tasks=[]' 'students={meta_test: 24}' 'label_seeds={meta_test: [1, 2]}' \
  'tasks=[{dataset: glyphs/hebrew, split: meta_test, key: hebrew-t6, teacher: /work/pilot26/teachers/e6/teacher.pt}, {dataset: glyphs/hebrew, split: meta_test, key: hebrew-t8, teacher: /work/pilot26/teachers/e8/teacher.pt}, {dataset: glyphs/hebrew, split: meta_test, key: hebrew-t12, teacher: /work/pilot26/teachers/e12/teacher.pt}, {dataset: glyphs/hebrew, split: meta_test, key: hebrew-t16, teacher: /work/pilot26/teachers/e16/teacher.pt}]'
python bench/task_dependence.py --db /work/pilot26/db --train-db /work/main/assets/cpu/db
echo done
