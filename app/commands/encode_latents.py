"""`redcube encode-latents`: render training poses, encode them with the TinyVAE, write resumable safetensors shards."""

from __future__ import annotations

import functools
from pathlib import Path

from app.options import add_scene_option, check_writable, scene_from
from app.sharded import run_sharded


def register(sub) -> None:
    p = sub.add_parser("encode-latents", help="pre-encode TinyVAE latents of seeded training renders for `train --latent --data shards`; resumable")
    p.add_argument("--frames", type=int, required=True, help="training frames to render and encode")
    p.add_argument("--res", type=int, default=512, help="render resolution; latents are (res/8)² (default 512)")
    p.add_argument("--shard-size", type=int, default=16, help="frames per shard (default 16)")
    p.add_argument("--vae", default="scene", help="TinyVAE: 'scene' (shipped, default), a .safetensors or a TAESD directory")
    p.add_argument("--out", type=Path, required=True, help="shard directory (a rerun resumes it)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine, one torch thread each (default 1)")
    p.add_argument("--seed", type=int, default=0, help="set seed (every frame's pose seed derives from it)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_scene_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from training.latent.shards import MANIFEST, LatentSetConfig, generate

    torch.set_num_threads(1)
    config = LatentSetConfig(frames=args.frames, res=args.res, shard_size=args.shard_size, seed=args.seed, vae=args.vae,
                             scene=scene_from(args).to_dict())
    check_writable(args.out / MANIFEST)
    return run_sharded(functools.partial(generate, config, args.out, workers=args.workers),
                       ("shards_made", "shards_skipped", "frames_made"), args.quiet)
