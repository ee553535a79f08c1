#!/usr/bin/env bash
# Predictors on tasks that differ (README, "Tasks that differ: teacher strength"; issue #26): meta-train,
# with seeds 0, 1, 2, on the union of the strong-teacher database (assets/cpu/db) and the
# teacher-strength regimes (assets/cpu/db_regimes):
#   union          the tree prior (300 boosted trees of depth 3 over the cost, stage and proxy scalars and the
#                  one-hot encoding) without task statistics (the default design until 2026-12-06)
#   teacher_acc    the same + task_stats=[teacher_acc] (the default until the linear prior below)
#   task_stats     the same + task_stats=[teacher_acc,log_classes]
#   teacher_acc_inherit / _diswot   teacher_acc with the inherit or DisWOT proxy as a third proxy input
#   teacher_acc_depth4              teacher_acc with trees of depth 4 in the prior (more interactions)
#   teacher_acc_linear              a linear prior that reads every student scalar times the teacher's
#                                   accuracy (prior_interactions; the default until the mean widths below)
#   teacher_acc_linear_onehot       the same, its prior also reading the one-hot encoding
#   teacher_acc_linear_r1 / _r100   teacher_acc_linear with the prior's ridge penalty 1 or 100 (default 10)
#   task_stats_linear               teacher_acc_linear with the log class count as a second statistic
#   teacher_acc_linear_mean         configs/predictor/cpu.yaml, the default since: teacher_acc_linear whose
#                                   stage encoding gives each stage's mean block width instead of its
#                                   summed widths (stage_width=mean)
#   teacher_acc_linear_noproxy / teacher_acc_linear_mean_noproxy   the two without the proxy inputs
#   meta_nas_A     the KD-unaware design A (no teacher input)
# print each design's meta-valid Spearman (the 8 meta-valid tasks of the union: the only numbers a
# design is chosen on), then evaluate every checkpoint, and the shipped predictors, on the 16
# meta-test tasks of the union beside the task-blind floor (encoding_ridge, fitted on the union's
# meta-train), MACs, the proxies and the proxy ensemble, with one column group per regime
# (strong: the 8 tasks of assets/cpu/db; regimes: the 8 cut-teacher tasks), and print the tables over
# seeds (bench/seed_table.py) and the budgeted search regret per group (bench/search_regret.py).
# Finished runs are reused. No teacher checkpoint is needed: the shipped
# proxy cache (assets/cpu/proxy_cache) holds every proxy these designs and the evaluation read, by the
# teacher digests the task files record (on the CPU; another device computes them, which needs the
# teachers: bash script/build_regimes.sh for the regime ones, git checkout 71d6cdd -- assets/cpu/teachers).
#   bash script/regime_predictors.sh [output folder, default runs/regime_predictors]
#   NAMES="union teacher_acc"   only these designs; VALID_ONLY=1 stops after the meta-valid table
#   MEMBERS="assets/cpu/db assets/cpu/db_regimes assets/cpu/db_regimes_extra"   the databases of the union
#     (default: the first two, as assets/cpu/db_all); the meta-test groups stay those two's
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-runs/regime_predictors}
export OMP_NUM_THREADS=1
DB=$OUT/db_all
read -r -a MEMBERS <<<"${MEMBERS:-assets/cpu/db assets/cpu/db_regimes}"
[[ -f $DB/manifest.json ]] || $PY -m dass.database --union "$DB" "${MEMBERS[@]}"
CPU=configs/predictor/cpu.yaml
SUM="stage_width=sum"   # the stage encoding with summed widths (the default until the mean widths)
TREES="prior_model=trees prior_onehot=true prior_interactions=false $SUM"   # the tree prior over the scalars and the one-hot encoding (the default until the linear one)
# design -> overrides of its config ($CPU; meta_nas_A: its shipped config.yaml)
declare -A EXTRA
while read -r name extra; do EXTRA[$name]=$extra; done <<EOF
union                           task_stats=[] $TREES
teacher_acc                     task_stats=[teacher_acc] $TREES
task_stats                      task_stats=[teacher_acc,log_classes] $TREES
teacher_acc_inherit             task_stats=[teacher_acc] proxies=[naswot,synflow,inherit] $TREES
teacher_acc_diswot              task_stats=[teacher_acc] proxies=[naswot,synflow,diswot] $TREES
teacher_acc_depth4              task_stats=[teacher_acc] $TREES prior_depth=4
teacher_acc_linear              task_stats=[teacher_acc] $SUM
teacher_acc_linear_onehot       task_stats=[teacher_acc] prior_onehot=true $SUM
teacher_acc_linear_r1           task_stats=[teacher_acc] prior_ridge=1 $SUM
teacher_acc_linear_r100         task_stats=[teacher_acc] prior_ridge=100 $SUM
task_stats_linear               task_stats=[teacher_acc,log_classes] $SUM
teacher_acc_linear_mean         task_stats=[teacher_acc] stage_width=mean
teacher_acc_linear_noproxy      task_stats=[teacher_acc] proxies=[] $SUM
teacher_acc_linear_mean_noproxy task_stats=[teacher_acc] stage_width=mean proxies=[]
meta_nas_A
EOF
conf() { [[ $1 == meta_nas_A ]] && echo assets/cpu/predictors/meta_nas_A/config.yaml || echo "$CPU"; }
read -r -a NAMES <<<"${NAMES:-union teacher_acc task_stats teacher_acc_inherit teacher_acc_diswot teacher_acc_depth4 meta_nas_A}"
train() {  # train NAME SEED
  local run=$OUT/$1/s$2
  [[ -n ${EXTRA[$1]+set} ]] || { echo "error: unknown design '$1' (NAMES)" >&2; exit 2; }
  [[ -f $run/metrics.json ]] || $PY -m dass.predictor --config "$(conf "$1")" db="$DB" run_dir="$run" seed="$2" \
    progress=false data_root=data proxy_cache=runs/cache/predictor_proxy ${EXTRA[$1]} >"$OUT/$1.s$2.log" 2>&1
}
mkdir -p "$OUT"
# seed 0 of each design alone (it fills the proxy cache the others read), then two at a time
for n in "${NAMES[@]}"; do train "$n" 0; done
jobs_=()
for s in 1 2; do
  for n in "${NAMES[@]}"; do
    train "$n" "$s" &
    jobs_+=($!)
    if (( ${#jobs_[@]} >= ${JOBS:-2} )); then wait "${jobs_[0]}"; jobs_=("${jobs_[@]:1}"); fi
  done
done
wait
echo "== meta-valid Spearman (8 tasks of the union; designs are chosen on this)"
for n in "${NAMES[@]}"; do
  $PY - "$n" "$OUT"/"$n"/s{0,1,2}/metrics.json <<'EOF'
import json, sys
import numpy as np
v = [json.load(open(p))["best_valid_spearman"] for p in sys.argv[2:]]
print(f"{sys.argv[1]:<12} {np.mean(v):.3f} (seeds {', '.join(f'{x:.3f}' for x in v)})")
EOF
done
PREDS="dass_shipped: assets/cpu/predictors/dass/best.pt, meta_nas_A_shipped: assets/cpu/predictors/meta_nas_A/best.pt"
for s in 0 1 2; do
  for n in "${NAMES[@]}"; do PREDS+=", $n@s$s: $OUT/$n/s$s/best.pt"; done
done
[[ ${VALID_ONLY:-0} == 1 ]] && exit 0
meta_test_keys() {  # meta_test_keys DB: its meta-test task keys, space-separated
  $PY -c "import sys; from dass.database.saved import load_saved_tasks
print(' '.join(t.key for t in load_saved_tasks(sys.argv[1], ['meta_test'])['meta_test']))" "$1"
}
STRONG=$(meta_test_keys assets/cpu/db)
REGIMES=$(meta_test_keys assets/cpu/db_regimes)
ROWS=("${NAMES[@]}" dass_shipped meta_nas_A_shipped encoding_ridge proxy_ensemble naswot synflow macs)
rm -rf "$OUT/evaluate"   # derived from the checkpoints above: rebuilt, so a changed list of designs is judged whole
$PY -m dass.evaluation --config configs/evaluation/cpu.yaml db="$DB" train_db="$DB" \
  data_root=data run_dir="$OUT/evaluate" "methods=[macs, naswot, synflow, encoding_ridge, proxy_ensemble]" \
  "predictors={$PREDS}" "groups={strong: [${STRONG// /, }], regimes: [${REGIMES// /, }]}" "search_kd.budgets=[0.25, 0.5]" \
  plots=false progress=false >"$OUT/evaluate.log" 2>&1
for metric in spearman partial_spearman; do
  echo; echo "== $metric vs the KD label (best_acc), meta-test tasks of the union"
  $PY bench/seed_table.py "$OUT/evaluate/correlations.csv" --metric $metric --json "$OUT/table_$metric.json" \
    --methods "${ROWS[@]}"
  for g in regimes strong; do
    echo; echo "-- $metric, group $g"
    keys=$REGIMES; [[ $g == strong ]] && keys=$STRONG
    # shellcheck disable=SC2086  # the keys are words
    $PY bench/seed_table.py "$OUT/evaluate/correlations.csv" --metric $metric --json "$OUT/table_${metric}_$g.json" \
      --tasks $keys --methods "${ROWS[@]}"
  done
done
for g in regimes strong; do
  echo; echo "-- budgeted search regret (points), group $g"
  keys=$REGIMES; [[ $g == strong ]] && keys=$STRONG
  # shellcheck disable=SC2086  # the keys are words
  $PY bench/search_regret.py "$OUT/evaluate/search_kd.csv" --tasks $keys --methods "${ROWS[@]}"
done
