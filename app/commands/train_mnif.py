"""`redcube train-mnif`: fit an mNIF over the cube-world family (auto-decoding or meta-learning), then the latent DDPM."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from renderer.errors import RedcubeError
from app.options import add_scene_option, check_writable, scene_from
from renderer.models.mnif import MNIFConfig
from training.latent_diffusion import train_diffusion
from training.mnif import MNIFTrainConfig, load_mnif, train_mnif
from training.mnif_meta import MetaConfig, train_mnif_meta
from training.run_dir import claim, inside


def register(sub) -> None:
    d, m, k = MNIFTrainConfig, MNIFConfig, MetaConfig
    p = sub.add_parser("train-mnif", help="train a generative mNIF over the cube-world family (+ its latent diffusion model)")
    p.add_argument("--method", choices=("autodecode", "meta"), default="autodecode",
                   help="auto-decoding (paper Algorithm 2, default) or meta-learning (Algorithm 1: CAVIA inner loop, Meta-SGD rates)")
    p.add_argument("--inner-steps", type=int, default=k.inner_steps, help=f"meta: inner-loop steps per world (default {k.inner_steps})")
    p.add_argument("--second-order", action="store_true", help="meta: backpropagate through the inner loop (slower)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget of the mNIF in minutes")
    p.add_argument("--steps", type=int, default=None, help="step budget of the mNIF")
    p.add_argument("--bases", type=int, default=m.bases, help=f"M, basis networks (default {m.bases})")
    p.add_argument("--latent-dim", type=int, default=m.latent_dim, help=f"H, latent size (default {m.latent_dim})")
    p.add_argument("--width", type=int, default=m.width, help=f"hidden units (default {m.width})")
    p.add_argument("--hidden-layers", type=int, default=m.hidden_layers, help=f"L, hidden layers (default {m.hidden_layers})")
    p.add_argument("--worlds", type=int, default=d.worlds, help=f"training worlds (default {d.worlds})")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate of the bases and T (default 5e-4)")
    p.add_argument("--latent-lr", type=float, default=3e-3, help="autodecode: learning rate of the latents (default 3e-3)")
    p.add_argument("--eval-worlds", type=int, default=d.eval_worlds, help=f"worlds per split in the evaluation (default {d.eval_worlds})")
    p.add_argument("--diffusion-steps", type=int, default=3000, help="denoiser training steps (default 3000)")
    p.add_argument("--diffusion-only", action="store_true", help="keep the mNIF in --out and (re)train only its diffusion model")
    p.add_argument("--init-from", type=Path, default=None,
                   help="autodecode: continue from this mNIF checkpoint (same sizes), with a fresh learning-rate schedule")
    p.add_argument("--threads", type=int, default=d.threads, help=f"torch threads (default {d.threads})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(d.out), help=f"run directory (default {d.out})")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run (the old run is moved aside, not deleted)")
    add_scene_option(p)
    p.set_defaults(func=run)


def progress(rec: dict) -> None:
    if rec["event"] == "eval":
        print(f"\nheld-out views at 64²: training worlds {rec['train_psnr']:.2f} dB, "
              f"held-out worlds (fitted: {rec['eval']['fit']['method']}) {rec['heldout_psnr']:.2f} dB", file=sys.stderr)
    else:
        print(f"\r{rec['method']} step {rec['step']}: bce {rec['bce']:.4f} rgb mse {rec['rgb_mse']:.5f} ({rec['time']:.0f}s)", end="",
              file=sys.stderr, flush=True)


def run(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    continuing = args.diffusion_only or inside(args.init_from, args.out)  # the run in --out goes on
    lock = claim(args.out, resume=continuing, overwrite=args.overwrite, resume_hint="--diffusion-only to keep its mNIF")
    try:
        metrics, record, stats = _train(args)
    finally:
        lock.release()
    print(json.dumps({"checkpoint": str(args.out / "checkpoint.safetensors"), "diffusion": str(args.out / "diffusion.safetensors"),
                      "method": record["method"], **metrics, **stats}, indent=2))
    return 0


def _train(args) -> tuple[dict, dict, dict]:
    """The mNIF (unless --diffusion-only), then its latent DDPM: (metrics, the checkpoint's record, diffusion stats)."""
    check_writable(args.out / "diffusion.safetensors")
    metrics = {}
    if not args.diffusion_only:
        config = MNIFTrainConfig(minutes=args.minutes, steps=args.steps, worlds=args.worlds, lr=args.lr, latent_lr=args.latent_lr,
                                 eval_worlds=args.eval_worlds, threads=args.threads, seed=args.seed, out=str(args.out),
                                 init_from=str(args.init_from) if args.init_from else None)
        model_config = MNIFConfig(bases=args.bases, latent_dim=args.latent_dim, width=args.width, hidden_layers=args.hidden_layers)
        if args.method == "meta" and args.init_from:
            raise RedcubeError("--init-from continues an auto-decoded mNIF; drop it or use --method autodecode.")
        if args.method == "meta":
            meta = MetaConfig(inner_steps=args.inner_steps, second_order=args.second_order)
            metrics = train_mnif_meta(config, meta, model_config, scene_from(args), on_record=progress)
        else:
            metrics = train_mnif(config, model_config, scene_from(args), on_record=progress)
    _, latents, record = load_mnif(args.out / "checkpoint.safetensors")
    ld, stats = train_diffusion(latents, steps=args.diffusion_steps, seed=args.seed, log=lambda s: print(s, file=sys.stderr))
    ld.save(args.out / "diffusion.safetensors", stats)
    return metrics, record, stats
