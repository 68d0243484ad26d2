"""`redcube ngp-dataset`: fit NGP fields to rotated polycubes and write them as resumable safetensors shards."""

from __future__ import annotations

import functools
from pathlib import Path

from app.options import check_writable
from app.sharded import run_sharded


def register(sub) -> None:
    from renderer.models.object_field import ObjectFieldConfig, small_grid
    from training.ngp_fields import FitConfig

    f, g, m = FitConfig, small_grid(), ObjectFieldConfig
    p = sub.add_parser("ngp-dataset", help="fit NGP fields to rotated asymmetric polycubes (issue 7's data set); resumable")
    p.add_argument("--objects", type=int, required=True, help="distinct polycubes")
    p.add_argument("--rotations", type=int, required=True, help="fields per object, each under its own uniform random rotation")
    p.add_argument("--out", type=Path, required=True, help="data set directory (a rerun resumes it)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--shard-size", type=int, default=8, help="fields per shard (default 8)")
    p.add_argument("--fit-steps", type=int, default=f.steps, help=f"Adam steps per field (default {f.steps})")
    p.add_argument("--points", type=int, default=f.points, help=f"supervision points per step (default {f.points})")
    p.add_argument("--levels", type=int, default=g.n_levels, help=f"hash-grid levels (default {g.n_levels})")
    p.add_argument("--features-per-level", type=int, default=g.n_features_per_level,
                   help=f"features per hash entry (default {g.n_features_per_level})")
    p.add_argument("--log2-hashmap-size", type=int, default=g.log2_hashmap_size,
                   help=f"log2 of the entries per level (default {g.log2_hashmap_size})")
    p.add_argument("--width", type=int, default=m.width, help=f"MLP hidden units (default {m.width})")
    p.add_argument("--hidden-layers", type=int, default=m.hidden_layers, help=f"MLP hidden layers (default {m.hidden_layers})")
    p.add_argument("--seed", type=int, default=0, help="data set seed (objects, rotations and fits derive theirs from it)")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the one initial weight set every field starts from (default 0)")
    p.add_argument("--own-init", action="store_true",
                   help="each field starts from its own random weights (default: all from one start, so weights compare entry by entry)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from renderer.hashgrid import HashGridConfig
    from renderer.models.object_field import ObjectFieldConfig, small_grid
    from training.ngp_dataset import DatasetConfig, generate
    from training.ngp_fields import FitConfig

    torch.set_num_threads(args.threads)
    grid = HashGridConfig(**{**small_grid().__dict__, "n_levels": args.levels, "n_features_per_level": args.features_per_level,
                             "log2_hashmap_size": args.log2_hashmap_size})
    config = DatasetConfig(objects=args.objects, rotations=args.rotations, shard_size=args.shard_size, seed=args.seed,
                           init_seed=None if args.own_init else args.init_seed,
                           fit=FitConfig(steps=args.fit_steps, points=args.points),
                           field=ObjectFieldConfig(grid=grid, width=args.width, hidden_layers=args.hidden_layers))
    check_writable(args.out / "dataset.json")
    return run_sharded(functools.partial(generate, config, args.out, workers=args.workers, threads=args.threads),
                       ("shards_made", "shards_skipped", "fields_made"), args.quiet)
