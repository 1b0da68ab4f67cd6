#!/usr/bin/env bash
# Potentials trained side by side on one GPU (an H100 here) for a fixed budget of steps, from a packed
# part of the xTB dataset (training.potentials.pack). The bundled *-53k models:
#   DATA=gpu-data/xtb-moses-12.5k-packed OUT=device-out bash training/potentials/train_gpu.sh
# Continued training of bundled models on more data (sizes come from the checkpoint), e.g. the bundled
# schnet-xtb-moses-53k-contact: thermal part 0 of 3 and contact parts 0 and 1 of 3 in one folder
# (the GPU machine takes 64 MiB with the repository), then
#   python -m training.potentials.pack --data data/xtb-moses-12.5k --part 0 --of 3 --out D
#   python -m training.potentials.pack --data data/xtb-moses-12.5k-contact --part 0 --of 3 --val-structures 1000 --tag contact- --out D
#   python -m training.potentials.pack --data data/xtb-moses-12.5k-contact --part 1 --of 3 --tag contact- --out D
#   N=53 DATA=D ARCHS="schnet nequip" INIT=chemzoo/checkpoints/%s-xtb-moses-53k SUFFIX=-contact LR=5e-4 \
#     STEPS="schnet=4000 nequip=2500" MINUTES=5.4 bash training/potentials/train_gpu.sh
# (NequIP got 342 steps in that run: per-edge blocks, since made CPU-only, slowed it 6x on the GPU.)
# PaiNN on the same data got 708 steps on 2 CPU cores (session 4): hot MD holds, thermal accuracy fell
# to 63.6 meV/A; continue it with INIT=results/potentials/%s-xtb-moses-53k-contact/checkpoint (painn).
# Afterwards, on any machine with the full dataset:
#   python -m training.potentials.evaluate RUN --data data/xtb-moses-12.5k
DATA=${DATA:-gpu-data/xtb-moses-12.5k-packed}; OUT=${OUT:-device-out}; RUNS=${RUNS:-/tmp/runs}; MINUTES=${MINUTES:-4.4}
ARCHS=${ARCHS:-schnet painn nequip}; INIT=${INIT:-}; SUFFIX=${SUFFIX:-}; LR=${LR:-1e-3}; ACCEL=${ACCEL:-gpu}
mkdir -p "$OUT" "$RUNS"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# thousands of training structures the original (untagged) parts hold: the run's name
N=${N:-$(python3 -c "import json,glob; print(sum(json.load(open(f))['splits']['train'] for f in glob.glob('$DATA/pack-[0-9]*.json')) // 1000)")}
declare -A SIZE=([schnet]="--features 128 --interactions 6" [painn]="--features 128 --interactions 3"
                 [nequip]="--features 32 --interactions 3 --lmax 2")
declare -A STEP=([schnet]=3300 [painn]=3000 [nequip]=1700)  # ~4 min each, the three sharing one H100
for kv in ${STEPS:-}; do STEP[${kv%%=*}]=${kv#*=}; done
for a in $ARCHS; do
  name="$a-xtb-moses-${N}k$SUFFIX"
  start=${INIT:+--init $(printf "$INIT" $a)}
  python3 -m training.potentials.train --data "$DATA" --architecture $a ${SIZE[$a]} $start --accelerator $ACCEL \
    --batch-size 64 --lr $LR --schedule cosine --epochs 100 --max-steps ${STEP[$a]} --max-minutes "$MINUTES" \
    --seed 0 --name "$name" --out "$RUNS/$name" > "$OUT/train-$a.log" 2>&1 &
done
wait
for r in "$RUNS"/*/; do
  python3 -c "import json; m=json.load(open('$r/metrics.json'))['metrics']; print('$(basename $r)', {k: m.get(k) for k in ('params','steps','wall_time_s','val_loss','val_loss_per_epoch')})" \
    || tail -30 "$OUT/train-$(basename $r | cut -d- -f1).log"
done
tar czf "$OUT/runs.tgz" --exclude=ckpt -C "$RUNS" .
