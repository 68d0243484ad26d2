#!/usr/bin/env bash
# 1 rank (two seeds, for the seed-to-seed spread) vs 2 ranks, same global batch and steps (same total samples).
set -u
cd "$(dirname "$0")/../.."  # the repository root
mkdir -p runs/parity
A="train --res 32 --steps 1500 --batch-size 8192 --lr 2e-3 --set input=plucker --set skip=true --eval-every 500 --heldout 16 --threads 1 --quiet"
for seed in 0 1; do
  .venv/bin/torchrun --standalone --nproc_per_node 1 --no-python .venv/bin/redcube $A --seed $seed --out runs/parity/r1_s$seed > runs/parity/r1_s$seed.out 2>&1
done
.venv/bin/torchrun --standalone --nproc_per_node 2 --no-python .venv/bin/redcube $A --seed 0 --out runs/parity/r2_s0 > runs/parity/r2_s0.out 2>&1
echo finished
