#!/usr/bin/env bash
# One label budget of a profile on a GPU machine, every test fold at once: each fold is its own runner
# (its own run folder, so the run locks never meet) training stages 1-3 in parallel on the one GPU; then
# one run folder gathers the folds' finished classifiers (links, nothing copied), loads them (stage 3
# finds every run finished) and reports them (stage 4). Features come from the cache (carry cache/).
#
#   scripts/gpu_budgets.sh                                  # budgets, 4 labels per class: supervised, selftrain, fixmatch
#   PROFILE=budgets-sslh BUDGET=3 METHODS="[supervised, fixmatch]" scripts/gpu_budgets.sh
#   PROFILE=smoke BUDGET=1 METHODS="[supervised]" FOLDS="1 2" GPU=0 scripts/gpu_budgets.sh   # the mechanics, on a CPU
#
# The runs with overrides publish into results/<NAME> and figures/<NAME> (never a profile's own folder).
# Checked on the CPU (the smoke line above: 2 folds in parallel, gathered and reported, 103 s); not yet run
# on a GPU: the device machines lent to this project's sessions have no TensorFlow, and what travels to
# them is at most 64 MiB (the GPU environment is scripts/bootstrap.sh --gpu, requirements-gpu.lock).
#
# Options through the environment: PROFILE, BUDGET, METHODS (YAML list), FOLDS (space-separated),
# NAME (run-folder name, default gpu-<profile>-lpc<budget>), GPU=0 to run on the CPU environment.
# Extra arguments go to every runner (e.g. --data-root DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile="${PROFILE:-budgets}"
budget="${BUDGET:-4}"
methods="${METHODS:-[supervised, selftrain, fixmatch]}"
folds="${FOLDS:-1 2 3 4 5}"
name="${NAME:-gpu-${profile//\//-}-lpc${budget}}"
gpu=(); [[ "${GPU:-1}" == "1" ]] && gpu=(--gpu)
runs="${ESC_RUNS_DIR:-$root/runs}"
common=(--profile "$profile" -p label_budgets "[$budget]" -p methods "$methods" "$@")

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
