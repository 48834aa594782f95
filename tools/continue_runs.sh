#!/usr/bin/env bash
# Continue the long CPU work on this machine for MINUTES minutes, one thread per job, in the background:
#   the studies (studies/*.json, in the order below; finished runs are skipped, unfinished ones resume), and
#   the shipped models' long runs (model/runs/{sagan,dcgan}, resumed from their committed last.pt; see LONG_RUNS)
# (the jobs share the machine's cores). All stop by themselves when the time is up, saving their state.
# STUDY_WORKERS=N (default 1) runs N study processes side by side (each takes the next run no other holds);
# LONG_RUNS names the long runs to continue: "dcgan" by default ("sagan dcgan" both, "" none); the SAGAN's stays at
# iteration 11,000, where studies/sagan_long.json (3 seeds) found nothing that moves it off its plateau.
# Then, before committing: tools/keep_study_state.sh && git add model/runs && git commit
# Logs: runs/logs/{studies1..N,sagan,dcgan}.log. Usage: tools/continue_runs.sh MINUTES [DATA_DIR] [FEATURE_NET]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:?usage: tools/continue_runs.sh MINUTES [DATA_DIR] [FEATURE_NET]}"
data="${2:-data}"
features="${3:-../shared/eval/cifar10_features.pt}"
python="${PYTHON:-python}"
deadline=$(( $(date +%s) + minutes * 60 ))
mkdir -p runs/logs
export OMP_NUM_THREADS=1

studies() {
    for s in dcgan_recipe attention loss stabilisers conditioning update_ratio sagan_long sagan_recipe; do
        left=$(( (deadline - $(date +%s)) / 60 ))
        [ "$left" -lt 2 ] && return
        "$python" gan_helpers.py study run "studies/$s.json" --data-dir "$data" --feature-net "$features" \
            --threads 1 --quiet --time-limit "$left"
    done
}

long_run() {   # long_run MODEL SETTINGS...: the shipped MODEL's long run (model/runs/MODEL), resumed
    local model="$1"; shift
    nohup "$python" gan_helpers.py train "$model" --out "model/runs/$model" --device cpu --resume --set "$@" \
        --iters 60000 --eval-every 1000 --eval-samples 5000 --data-dir "$data" --feature-net "$features" \
        --time-limit "$minutes" > "runs/logs/$model.log" 2>&1 &
}

for worker in $(seq "${STUDY_WORKERS:-1}"); do   # background subshells, immune to hangup like nohup
    (trap '' HUP; studies) > "runs/logs/studies$worker.log" 2>&1 &
done
for model in ${LONG_RUNS-dcgan}; do
    case "$model" in
        sagan) long_run sagan arch=dcgan g_ch=64 d_ch=64 "g_attn=(16,)" "d_attn=(16,)" cond=projection-ac \
                   ema_decay=0.999 checkpoint_every=500 ;;
        dcgan) long_run dcgan checkpoint_every=1000 ;;
        *) echo "LONG_RUNS: unknown long run $model (sagan or dcgan)" >&2; exit 2 ;;
    esac
done
echo "started for $minutes minutes: ${STUDY_WORKERS:-1} study worker(s) (runs/logs/studies*.log), long runs: ${LONG_RUNS-dcgan}"
