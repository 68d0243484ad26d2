"""A shard-set generator (`ngp-dataset`, `encode-latents`) run from the command line: alone or as one rank under
torchrun, progress lines on stderr, and one JSON summary on stdout from rank 0 (with every rank's under torchrun)."""

from __future__ import annotations

import json
import sys
from typing import Callable


def run_sharded(generate: Callable[..., dict], totals: tuple[str, ...], quiet: bool) -> int:
    """Call generate(log=..., dist=...) on this rank; rank 0 prints the summary, summed over ranks for `totals`."""
    from training.distributed import Dist

    dist = Dist.from_env()
    try:
        log = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))
        summary = generate(log=log, dist=dist)
        ranks = dist.gather(summary)
    finally:
        dist.close()
    if dist.main:
        print(json.dumps(summary if not dist.active else {
            "out": summary["out"], "world_size": dist.world, **{k: sum(r[k] for r in ranks) for k in totals}, "ranks": ranks},
            indent=2))
    return 0
