#!/usr/bin/env bash
# PaiNN round 3 on 2 CPU cores (issue 13): PaiNN-al2 (results/potentials/painn-xtb-moses-53k-al2) continued on al2's
# mix plus the walls around Cl and Br (the halogen recipe), where al2's hot MD let an aryl Br bridge onto its ring
# neighbour and a sulfonyl O close on an ortho Br (MOSES-test 23 and 24; so the hot check that decides about
# registering uses other molecules as well). The cosine is planned to the time budget, so it ends annealed.
#   nohup bash training/potentials/painn_al3.sh > runs/painn_al3.log 2>&1 &
# Resumable like painn_al2.sh: rerun it and finished chunks are skipped. Session 19 ran MINUTES=30.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
build() { python -m training.potentials.dataset --workers 2 --seed 0 --recipe halogen --with-element Cl --with-element Br "$@"; }
build --molecules 3000 --per-molecule 4 --out data/xtb-moses-3k-halogen  # ~750 with a Br, ~2250 with a Cl
build --corpus drugs --molecules 266 --per-molecule 8 --out data/xtb-drugs-halogen  # every drug with a Cl or Br
# al2's builds and its training command, continued from al2 with the halogen builds added
# A later round trains on al3's mix through this script: INIT, MORE_DATA (more --data), NAME, OUT (painn_al4.sh).
MD_MOLECULES=100 FINISH_LANGEVIN=0 INIT=${INIT:-results/potentials/painn-xtb-moses-53k-al2/checkpoint} \
  EXTRA_DATA="--data data/xtb-moses-3k-halogen --data data/xtb-drugs-halogen ${MORE_DATA:-}" \
  NAME=${NAME:-painn-xtb-moses-53k-al3} OUT=${OUT:-runs/painn-al3} bash training/potentials/painn_al2.sh
