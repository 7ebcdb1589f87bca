#!/usr/bin/env bash
# Label budgets of a profile on a GPU machine, every test fold at once: each fold is its own runner
# (its own run folder, so the run locks never meet) training stages 1-3 in parallel on the one GPU; then
# one run folder gathers the folds' finished classifiers (links, nothing copied), loads them (stage 3
# finds every run finished) and reports them (stage 4). Features come from the cache (carry cache/).
#
#   scripts/gpu_budgets.sh                                  # budgets, 4 labels per class: supervised, selftrain, fixmatch
#   PROFILE=budgets-sslh BUDGET=3 METHODS="[supervised, fixmatch]" scripts/gpu_budgets.sh
#   PROFILE=smoke BUDGET=1 METHODS="[supervised]" FOLDS="1 2" GPU=0 scripts/gpu_budgets.sh   # the mechanics, on a CPU
#   STUDY=1 scripts/gpu_budgets.sh     # the whole budgets study: every method at 4, 8, 16 and all labels per class
#                                      # (each fold's runner goes through the budgets one after another)
#
# The runs with overrides publish into results/<NAME> and figures/<NAME> (never a profile's own folder).
# Checked on the CPU (the smoke line above: 2 folds in parallel, gathered and reported, 103 s; with BUDGET="1 0"
# and --data-root ../shared/data, two budgets in each fold's runner, 69 s, 2026-12-07; the same mechanics are
# tests/test_gpu_budgets.py); not yet run
# on a GPU: the device machines lent to this project's sessions have no TensorFlow, and what travels to
# them is at most 64 MiB (the GPU environment is scripts/bootstrap.sh --gpu, requirements-gpu.lock).
#
# Options through the environment: PROFILE, BUDGET (one or several, space-separated; 0 = every label),
# METHODS (YAML list), FOLDS (space-separated), STUDY=1 (BUDGET "4 8 16 0" and every method of the budgets
# study, unless given), NAME (run-folder name, default gpu-<profile>-lpc<budgets>), GPU=0 to run on the
# CPU environment.
# Extra arguments go to every runner (e.g. --data-root DIR). Give the data that way (or carry it): runners
# started together would each download it, and the data folder's lock refuses all but the first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile="${PROFILE:-budgets}"
if [[ "${STUDY:-0}" == "1" ]]; then
    budget="${BUDGET:-4 8 16 0}"
    methods="${METHODS:-[supervised, pretrained, contrastive, selftrain, meanteacher, fixmatch, freematch, mixmatch]}"
else
    budget="${BUDGET:-4}"
    methods="${METHODS:-[supervised, selftrain, fixmatch]}"
fi
folds="${FOLDS:-1 2 3 4 5}"
budget_tag="$(echo $budget | sed 's/\b0\b/all/g; s/ /-/g')"
name="${NAME:-gpu-${profile//\//-}-lpc${budget_tag}}"
gpu=(); [[ "${GPU:-1}" == "1" ]] && gpu=(--gpu)
runs="${ESC_RUNS_DIR:-$root/runs}"
mkdir -p "$runs"
common=(--profile "$profile" -p label_budgets "[$(echo $budget | sed 's/ /, /g')]" -p methods "$methods" "$@")

# The environment is built once, here, before the runners start (scripts/bootstrap.sh's lock would make
# runners started together on a fresh checkout wait for each other's build, each saying so in its log).
if [[ "${GPU:-1}" == "1" ]]; then ESC_GPU=1 scripts/bootstrap.sh; else scripts/bootstrap.sh; fi
# Several processes on one GPU: each takes memory as it needs it instead of all of it.
export TF_FORCE_GPU_ALLOW_GROWTH=true
start=$(date +%s)
pids=()
for fold in $folds; do
    ./run_all.sh "${gpu[@]}" "${common[@]}" -p folds "[$fold]" -p publish_figures false --stages 1,2,3 \
        --run-name "$name-fold$fold" > "$runs/$name-fold$fold.log" 2>&1 &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
echo "gpu_budgets: folds trained in $(( $(date +%s) - start )) s (logs: $runs/$name-fold*.log)"
if (( failed )); then echo "gpu_budgets: a fold failed; see its log" >&2; exit 1; fi

# Gather: link each fold's classifier folders into one run folder, then load and report them together.
for fold in $folds; do
    (cd "$runs/$name-fold$fold/classifiers" && find . -mindepth 3 -maxdepth 3 -type d -name "fold*") | while read -r run; do
        mkdir -p "$runs/$name/classifiers/$(dirname "$run")"
        ln -sfn "$runs/$name-fold$fold/classifiers/$run" "$runs/$name/classifiers/$run"
    done
done
folds_yaml="[$(echo $folds | sed 's/ /, /g')]"
./run_all.sh "${gpu[@]}" "${common[@]}" -p folds "$folds_yaml" --stages 1,3,4 --run-name "$name"
echo "gpu_budgets: done in $(( $(date +%s) - start )) s; run folder $runs/$name"
