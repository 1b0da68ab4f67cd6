#!/usr/bin/env bash
# The bundled potentials: SchNet, PaiNN and NequIP trained side by side on one GPU (an H100 here) for a
# fixed budget of steps, from a packed part of the xTB dataset (training.potentials.pack).
#   DATA=gpu-data/xtb-moses-12.5k-packed OUT=device-out bash training/potentials/train_gpu.sh
# Afterwards, on any machine with the full dataset:
#   python -m training.potentials.evaluate RUN --data data/xtb-moses-12.5k
DATA=${DATA:-gpu-data/xtb-moses-12.5k-packed}; OUT=${OUT:-device-out}; RUNS=${RUNS:-/tmp/runs}; MINUTES=${MINUTES:-4.4}
mkdir -p "$OUT" "$RUNS"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
N=$(python3 -c "import json,glob; print(sum(json.load(open(f))['splits']['train'] for f in glob.glob('$DATA/pack-*.json')) // 1000)")
declare -A SIZE=([schnet]="--features 128 --interactions 6" [painn]="--features 128 --interactions 3"
                 [nequip]="--features 32 --interactions 3 --lmax 2")
declare -A STEPS=([schnet]=3300 [painn]=3000 [nequip]=1700)  # ~4 min each, the three sharing one H100
for a in schnet painn nequip; do
  python3 -m training.potentials.train --data "$DATA" --architecture $a ${SIZE[$a]} --accelerator gpu \
    --batch-size 64 --lr 1e-3 --schedule cosine --epochs 100 --max-steps ${STEPS[$a]} --max-minutes "$MINUTES" \
    --seed 0 --name "$a-xtb-moses-${N}k" --out "$RUNS/$a-xtb-moses-${N}k" > "$OUT/train-$a.log" 2>&1 &
done
wait
for r in "$RUNS"/*/; do
  python3 -c "import json; m=json.load(open('$r/metrics.json'))['metrics']; print('$(basename $r)', {k: m.get(k) for k in ('params','steps','wall_time_s','val_loss','val_loss_per_epoch')})" \
    || tail -30 "$OUT/train-$(basename $r | cut -d- -f1).log"
done
tar czf "$OUT/runs.tgz" --exclude=ckpt -C "$RUNS" .
