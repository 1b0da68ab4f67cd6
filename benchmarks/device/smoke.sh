#!/usr/bin/env bash
# GPU checks in one go (run on a CUDA machine from the repo root; wheels for packages its image lacks in .whl/):
# the CUDA tests, a short concurrent training of the three potential architectures (steps/s), and the
# sampler benchmark on the GPU. Outputs go to $OUT (or ./device-out). PARTS picks some of them:
#   PARTS="tests sampler" bash benchmarks/device/smoke.sh
OUT=${OUT:-device-out}; mkdir -p "$OUT"; PARTS=${PARTS:-tests training sampler}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, lightning, e3nn, torch_geometric, vesin, ase, rdkit, selfies, transformers as t; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', t.__version__, 'lightning', lightning.__version__, 'e3nn', e3nn.__version__)"
[[ $PARTS == *tests* ]] && python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
if [[ $PARTS == *training* ]]; then
declare -A SIZE=([schnet]="--features 128 --interactions 6" [painn]="--features 128 --interactions 3" [nequip]="--features 32 --interactions 3 --lmax 2")
for a in schnet painn nequip; do
  python3 -m training.potentials.train --data tests/data/xtb-moses-200 --architecture $a ${SIZE[$a]} --accelerator gpu \
    --batch-size 64 --epochs 1000 --max-minutes 0.75 --out /tmp/smoke-$a > "$OUT/smoke-$a.log" 2>&1 &
done
wait
for a in schnet painn nequip; do
  python3 -c "import json,sys; m=json.load(open('/tmp/smoke-$a/metrics.json'))['metrics']; print('$a', {k: m[k] for k in ('params','steps','wall_time_s','val_loss','test_force_mae_meV_per_A')})" || tail -20 "$OUT/smoke-$a.log"
done
fi
[[ $PARTS == *sampler* ]] && python3 -m benchmarks.sampler --device cuda --n 512 --repeats 2 --batch 64 --batch 512 2>&1 | grep -v Loading | tee "$OUT/sampler-cuda.txt"
