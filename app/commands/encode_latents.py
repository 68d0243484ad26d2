"""`redcube encode-latents`: render training poses, encode them with the TinyVAE, write resumable safetensors shards."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from app.flags import add_fields, values
from app.options import add_scene_option, check_writable, run_sharded, scene_from
from training.latent.shards import MANIFEST, LatentSetConfig, generate


def register(sub) -> None:
    p = sub.add_parser("encode-latents", help="pre-encode TinyVAE latents of seeded training renders for `train --latent --data shards`; resumable")
    add_fields(p, LatentSetConfig, skip=("scene",))
    p.add_argument("--out", type=Path, required=True, help="shard directory (a rerun resumes it)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine, one torch thread each (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_scene_option(p)


def run(args) -> int:
    torch.set_num_threads(1)
    config = LatentSetConfig(**values(LatentSetConfig, args, skip=("scene",)), scene=scene_from(args).to_dict())
    check_writable(args.out / MANIFEST)
    return run_sharded(functools.partial(generate, config, args.out, workers=args.workers),
                       ("shards_made", "shards_skipped", "frames_made"), args.quiet)
