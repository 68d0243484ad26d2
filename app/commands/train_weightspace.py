"""`redcube train-weightspace`: train the weight-space autoencoder (seed 004) on an NGP field data set."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.options import check_writable


def register(sub) -> None:
    from training.weightspace_model import WeightSpaceConfig
    from training.weightspace_train import WeightSpaceTrainConfig as T

    from training.weightspace_grid_model import GridConfig as G
    from training.weightspace_grid_train import GridTrainConfig as GT

    m = WeightSpaceConfig
    p = sub.add_parser("train-weightspace", help="train the weight-space autoencoder on fields from redcube ngp-dataset")
    p.add_argument("--data", type=Path, required=True, help="data set directory (redcube ngp-dataset --out)")
    p.add_argument("--arm", choices=("sane", "grid"), default="sane",
                   help="sane: seed 004's token autoencoder (default); grid: a 3-D conv net on the densely stored hash levels")
    p.add_argument("--grid-levels", type=int, default=G.levels, help=f"grid arm: hash levels read from the coarsest (default {G.levels})")
    p.add_argument("--grid-res", type=int, default=G.res, help=f"grid arm: probe grid cells per edge (default {G.res})")
    p.add_argument("--steps", type=int, default=None, help=f"optimizer steps (default {T.steps}; grid arm {GT.steps})")
    p.add_argument("--batch", type=int, default=None, help=f"objects (view pairs) per step (default {T.batch}; grid arm: fields, {GT.batch})")
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default {T.lr}; grid arm {GT.lr})")
    p.add_argument("--heldout", type=int, default=T.heldout, help="objects held out for the evaluation (default 0: evaluate on training objects)")
    p.add_argument("--points", type=int, default=T.points, help=f"hash-token points (default {T.points})")
    p.add_argument("--pos-tokens", type=int, default=T.n_pos, help=f"[POS] tokens (default {T.n_pos})")
    p.add_argument("--embed", type=int, default=m.embed, help=f"transformer width (default {m.embed})")
    p.add_argument("--latent", type=int, default=m.latent, help=f"latent width per token (default {m.latent})")
    p.add_argument("--layers", type=int, default=m.layers, help=f"layers in encoder and decoder (default {m.layers})")
    p.add_argument("--heads", type=int, default=m.heads, help=f"attention heads (default {m.heads})")
    p.add_argument("--no-permute", action="store_true", help="no MLP-permutation augmentation")
    p.add_argument("--noise", type=float, default=T.noise_std, help=f"multiplicative noise std (default {T.noise_std})")
    p.add_argument("--minutes", type=float, default=T.minutes, help="wall-clock budget (default 0: none; stops at --steps or here)")
    p.add_argument("--eval-every", type=int, default=T.eval_every, help=f"steps between evaluations and checkpoints (default {T.eval_every})")
    p.add_argument("--dropout", type=float, default=m.dropout, help=f"transformer dropout (default {m.dropout})")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(T.out), help=f"run directory (default {T.out})")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from training.weightspace_model import WeightSpaceConfig
    from app.plots import plot_weightspace_log
    from training.weightspace_train import CHANCE_ROTATION_ERROR_DEG, WeightSpaceTrainConfig, train_weightspace

    torch.set_num_threads(args.threads)
    check_writable(args.out / "checkpoint.safetensors")
    if args.arm == "grid":
        return run_grid(args)
    model = WeightSpaceConfig(embed=args.embed, latent=args.latent, layers=args.layers, heads=args.heads, dropout=args.dropout)
    given = {k: getattr(args, k) for k in ("steps", "batch", "lr") if getattr(args, k) is not None}
    config = WeightSpaceTrainConfig(data=str(args.data), **given, heldout=args.heldout,
                                    points=args.points, n_pos=args.pos_tokens, permute=not args.no_permute, noise_std=args.noise,
                                    seed=args.seed, out=str(args.out), model=model,
                                    minutes=args.minutes, eval_every=args.eval_every)
    log = lambda r: print(f"step {r['step']}: loss {r['loss']:.4f} recon {r['recon']:.4f} ntx {r['ntx']:.3f} rot {r['rot']:.3f} | "
                          f"held-out rotation {r['median_rotation_error_deg']:.1f} deg, top-1 {r['retrieval_top1']:.2f} | "
                          f"training pairs {r['train_rotation_error_deg']:.1f} deg, {r['train_retrieval_top1']:.2f} "
                          f"({r['time']:.0f}s)", file=sys.stderr, flush=True)
    metrics = train_weightspace(config, log=log)
    records = [json.loads(line) for line in (args.out / "log.jsonl").read_text().splitlines()]
    plot_weightspace_log(records, args.out / "curves.png", f"weight-space autoencoder on {args.data.name}",
                         CHANCE_ROTATION_ERROR_DEG)
    print(json.dumps({"checkpoint": str(args.out / "checkpoint.safetensors"), "curves": str(args.out / "curves.png"), **metrics},
                     indent=2))
    return 0


def run_grid(args) -> int:
    """The grid arm: same data, split and seed as the sane arm, so eval-weightspace compares them on the same objects."""
    from app.plots import plot_weightspace_log
    from training.weightspace_grid_model import GridConfig
    from training.weightspace_grid_train import GridTrainConfig, train_grid
    from training.weightspace_train import CHANCE_ROTATION_ERROR_DEG

    given = {k: getattr(args, k) for k in ("steps", "batch", "lr") if getattr(args, k) is not None}
    config = GridTrainConfig(data=str(args.data), **given, heldout=args.heldout, eval_every=args.eval_every, minutes=args.minutes, seed=args.seed,
                             out=str(args.out), model=GridConfig(levels=args.grid_levels, res=args.grid_res))
    log = lambda r: print(f"step {r['step']}: bce {r['bce']:.4f} rgb {r['rgb_mse']:.4f} | held-out rotation "
                          f"{r['median_rotation_error_deg']:.1f} deg, top-1 {r['retrieval_top1']:.2f} | training objects "
                          f"{r['train_rotation_error_deg']:.1f} deg, {r['train_retrieval_top1']:.2f} ({r['time']:.0f}s)",
                          file=sys.stderr, flush=True)
    metrics = train_grid(config, log=log)
    records = [json.loads(line) for line in (args.out / "log.jsonl").read_text().splitlines()]
    plot_weightspace_log(records, args.out / "curves.png", f"grid arm on {args.data.name}", CHANCE_ROTATION_ERROR_DEG,
                         losses=("bce", "rgb_mse"))
    print(json.dumps({"checkpoint": str(args.out / "checkpoint.safetensors"), "curves": str(args.out / "curves.png"), **metrics},
                     indent=2))
    return 0
