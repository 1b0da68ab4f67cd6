#!/usr/bin/env bash
# The potential size x data ladder (grid gpu-short) and the potential training-speed-estimation sweep
# (grid tse) side by side on one GPU machine, many small runs at once (training.ladder --workers), from a
# packed 30k-structure subset of a 5,000-molecule xTB build (the first 5,000 molecules of the 12.5k build,
# chunk for chunk the same) with a fixed test subset:
#   python -m training.potentials.dataset --molecules 5000 --per-molecule 8 --workers 2 --seed 0 --out data/xtb-moses-5k
#   python -m training.potentials.pack --data data/xtb-moses-5k --part 0 --of 1 --train-structures 30000 \
#       --val-structures 500 --test-structures 3000 --out data/xtb-moses-5k-ladder
#   OUT=device-out BUDGET=480 bash training/potentials/ladder_gpu.sh
# (wheels for packages the machine lacks in .whl/: ase, vesin). Rows and records of finished runs land in
# training/results/ (potential.csv, potential-tse.csv, curves); $OUT gets them as results.tgz, the
# largest-data checkpoint of every size as checkpoints.tgz, and the logs. Runs still going after BUDGET
# seconds are stopped; rerunning the ladder anywhere (CPU too, same data) trains only what is missing.
OUT=${OUT:-device-out}; BUDGET=${BUDGET:-480}; WORKERS=${WORKERS:-12}; TSE_WORKERS=${TSE_WORKERS:-4}
GRID=${GRID:-gpu-short}; TSE_GRID=${TSE_GRID-tse}; ACCEL=${ACCEL:-gpu}; RUNS=${RUNS:-/tmp/runs}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
if [[ $ACCEL == gpu ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  # MPS lets the small runs' kernels share the GPU instead of taking turns on it; off again if CUDA stalls
  if nvidia-cuda-mps-control -d 2>/dev/null; then
    timeout 45 python3 -c "import torch; torch.ones(1).cuda(); print('MPS on')" || { echo quit | nvidia-cuda-mps-control; echo "MPS off"; }
  fi
fi
start=$(date +%s)
timeout -k 30 -s TERM "$BUDGET" python3 -m training.ladder --family potential --grid "$GRID" --accelerator "$ACCEL" \
  --workers "$WORKERS" --runs "$RUNS" > "$OUT/ladder.log" 2>&1 &
[[ -n $TSE_GRID ]] && timeout -k 30 -s TERM "$BUDGET" python3 -m training.ladder --family potential --grid "$TSE_GRID" \
  --accelerator "$ACCEL" --workers "$TSE_WORKERS" --runs "$RUNS" > "$OUT/tse.log" 2>&1 &
wait
echo "trained for $(( $(date +%s) - start )) s"
cat "$OUT"/*.log | grep -o -E "^(finished|FAILED|interrupted)" | sort | uniq -c
tar czf "$OUT/results.tgz" training/results/potential*
largest=$(python3 -c "from training.ladder import GRIDS; print(max(GRIDS['potential']['$GRID'].n_train))")
(cd "$RUNS" && ls -d potential/*-n$largest-s0/checkpoint 2>/dev/null | tar czf "$OUT/checkpoints.tgz" -T -)
(cd "$RUNS" && tar czf "$OUT/logs.tgz" potential/*/ladder.log)
