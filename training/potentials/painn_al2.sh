#!/usr/bin/env bash
# The next PaiNN round on 2 CPU cores (issue 13): PaiNN-al1 (results/potentials/painn-xtb-moses-53k-al1, the wall
# learnt, 60.5 meV/A on the MOSES test split) continued on what it lacks - thermal MD frames (the langevin recipe)
# of MOSES molecules and of approved drugs outside MOSES, the drugs' own walls (contact, stretch, squeeze), its own
# hot-MD failures (the md recipe with al1 itself) - beside al1's wall mix so the wall is not forgotten.
#   nohup bash training/potentials/painn_al2.sh > runs/painn_al2.log 2>&1 &
# Every step is resumable: rerun the script and finished chunks and runs are skipped. The langevin builds take
# hours; their finished chunks are committed in results/potentials/<build>/ and copied back into data/ first.
# FINISH_LANGEVIN=0 trains on the committed chunks as they are (what fits one 3-hour session on 2 cores: session 18
# ran MD_MOLECULES=100 MINUTES=45 FINISH_LANGEVIN=0). A later round trains on the same mix through this script:
# INIT (the checkpoint continued, default al1), EXTRA_DATA (more --data), NAME and OUT (painn_al3.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
THREADS=${THREADS:-2}  # the training's threads (the builder shares the cores out among its workers itself)
AL1=results/potentials/painn-xtb-moses-53k-al1/checkpoint
SAMPLER=${SAMPLER:-schnet-xtb-moses-53k-md7}  # the potential whose Langevin MD the langevin recipe samples
build() { python -m training.potentials.dataset --workers 2 --seed 0 "$@"; }
for kept in xtb-moses-2.5k-langevin xtb-drugs-langevin xtb-moses-100-md-painn-al1; do  # committed builds (partial or slow): reuse them
  mkdir -p "data/$kept"
  cp -n results/potentials/$kept/chunk-*.npz results/potentials/$kept/build.json "data/$kept/" 2>/dev/null || true
done
# al1's wall mix (each ~5-10 min)
build --molecules 2500 --per-molecule 8 --out data/xtb-moses-2.5k
build --molecules 2500 --per-molecule 4 --recipe contact --out data/xtb-moses-2.5k-contact
build --molecules 2500 --per-molecule 4 --recipe stretch --out data/xtb-moses-2.5k-stretch
build --molecules 5000 --per-molecule 4 --recipe proton --out data/xtb-moses-5k-proton
build --molecules 5000 --per-molecule 4 --recipe squeeze --out data/xtb-moses-5k-squeeze
# the drugs' walls (each ~10 min)
for recipe in contact stretch squeeze; do
  build --corpus drugs --molecules 1456 --per-molecule 4 --recipe $recipe --out data/xtb-drugs-$recipe
done
# PaiNN's own hot MD (600-3500 K NVE starts), labelled where it goes wrong
MD_MOLECULES=${MD_MOLECULES:-500}
build --molecules $MD_MOLECULES --per-molecule 8 --recipe md --md-model $AL1 --out data/xtb-moses-$MD_MOLECULES-md-painn-al1
# thermal MD frames (hours: 5 min per 50 molecules per core)
if [ "${FINISH_LANGEVIN:-1}" = 1 ]; then
build --molecules 2500 --per-molecule 8 --recipe langevin --md-model $SAMPLER --out data/xtb-moses-2.5k-langevin
build --corpus drugs --molecules 1456 --per-molecule 8 --recipe langevin --md-model $SAMPLER --out data/xtb-drugs-langevin
fi
D=data
OMP_NUM_THREADS=$THREADS python -m training.potentials.train \
  --data $D/xtb-moses-2.5k --data $D/xtb-moses-2.5k-contact --data $D/xtb-moses-2.5k-stretch \
  --data $D/xtb-moses-5k-proton --data $D/xtb-moses-5k-squeeze --data $D/xtb-moses-$MD_MOLECULES-md-painn-al1 \
  --data $D/xtb-drugs-contact --data $D/xtb-drugs-stretch --data $D/xtb-drugs-squeeze \
  --data $D/xtb-moses-2.5k-langevin --data $D/xtb-drugs-langevin --data $D/xtb-drugs-langevin ${EXTRA_DATA:-} \
  --architecture painn --features 128 --interactions 3 --epochs 30 --max-steps ${STEPS:-2000} \
  --max-minutes ${MINUTES:-60} --batch-size 64 --lr 3e-4 --schedule cosine --seed 0 --init ${INIT:-$AL1} \
  --name ${NAME:-painn-xtb-moses-53k-al2} --out ${OUT:-runs/painn-al2}
