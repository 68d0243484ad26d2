#!/usr/bin/env bash
# Single-process training speed before DDP (b73d450^) and now, alternately, same command.
PY=${PY:-$(pwd)/.venv/bin/python}  # run from the repository root
for round in 1 2; do
  for tree in ${BEFORE:?a worktree of commit e2c8c53} .; do
    rm -rf /tmp/ab_run
    (cd $tree && $PY -m app.cli train --res 32 --steps 300 --batch-size 8192 --eval-every 1000 --heldout 4 --threads 2 --quiet --out /tmp/ab_run > /dev/null 2>&1)
    rate=$(grep '"event": "train"' /tmp/ab_run/log.jsonl | tail -n +2 | python3 -c "import json,sys; r=[json.loads(l)['samples_per_s'] for l in sys.stdin]; print(round(sum(r)/len(r)))")
    echo "$round $tree $rate"
  done
done
