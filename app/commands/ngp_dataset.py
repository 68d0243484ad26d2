"""`redcube ngp-dataset`: fit NGP fields to rotated polycubes and write them as resumable safetensors shards."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from app.flags import add_fields, values
from app.options import check_writable, run_sharded
from training.ngp_dataset import DatasetConfig, generate


OLD_FLAGS = {"fit.steps": ["--fit-steps"], "fit.points": ["--points"], "field.grid.n_levels": ["--levels"],
             "field.grid.n_features_per_level": ["--features-per-level"], "field.grid.log2_hashmap_size": ["--log2-hashmap-size"],
             "field.width": ["--width"], "field.hidden_layers": ["--hidden-layers"]}
"""The flags' spellings before they came from the config: they keep working."""


def register(sub) -> None:
    p = sub.add_parser("ngp-dataset", help="fit NGP fields to rotated asymmetric polycubes (issue 7's data set); resumable")
    add_fields(p, DatasetConfig, aliases=OLD_FLAGS)
    p.add_argument("--own-init", action="store_true",
                   help="each field starts from its own random weights (default: all from one start, so weights compare entry by entry)")
    p.add_argument("--out", type=Path, required=True, help="data set directory (a rerun resumes it)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    torch.set_num_threads(args.threads)
    given = values(DatasetConfig, args)
    config = DatasetConfig(**{**given, "init_seed": None if args.own_init else given["init_seed"]})
    check_writable(args.out / "dataset.json")
    return run_sharded(functools.partial(generate, config, args.out, workers=args.workers, threads=args.threads),
                       ("shards_made", "shards_skipped", "fields_made"), args.quiet)
