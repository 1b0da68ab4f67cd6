#!/usr/bin/env bash
# PaiNN round 4 on 2 CPU cores (issue 13): PaiNN-al3 (results/potentials/painn-xtb-moses-53k-al3: the halogen walls
# held in hot MD, but 4 of 100 hot molecule-runs on MOSES-test 0-49 still changed a bond - MOSES-test 1's OH proton
# onto its carbonyl O twice, fluconazole's OH onto a triazole N, an H onto an aryl Br) continued on al3's mix plus its own hot MD: the md recipe with al3
# as the sampler (600-3500 K NVE starts, a frame every 100 fs and the frame where it went wrong), labelled by
# GFN2-xTB. The same loop took SchNet md1 -> md7 to 2 of 150.
#   MINUTES=45 nohup bash training/potentials/painn_al4.sh > runs/painn_al4.log 2>&1 &
# Resumable like painn_al2.sh: rerun it and finished chunks are skipped; the md build's chunks are committed in
# results/potentials/xtb-moses-400-md-painn-al3/ and copied back first.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
AL3=results/potentials/painn-xtb-moses-53k-al3/checkpoint
build() { python -m training.potentials.dataset --workers 2 --seed 0 "$@"; }
mkdir -p data/xtb-moses-400-md-painn-al3
cp -n results/potentials/xtb-moses-400-md-painn-al3/chunk-*.npz results/potentials/xtb-moses-400-md-painn-al3/build.json \
  data/xtb-moses-400-md-painn-al3/ 2>/dev/null || true
build --molecules 400 --per-molecule 8 --recipe md --md-model $AL3 --out data/xtb-moses-400-md-painn-al3
# al3's builds and its training command (through painn_al3.sh), continued from al3 with al3's hot MD added twice
# (it is small beside the mix, and it is where al3 goes wrong)
INIT=$AL3 MORE_DATA="--data data/xtb-moses-400-md-painn-al3 --data data/xtb-moses-400-md-painn-al3" \
  NAME=painn-xtb-moses-53k-al4 OUT=runs/painn-al4 bash training/potentials/painn_al3.sh
