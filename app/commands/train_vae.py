"""`redcube train-vae`: train the scene TinyVAE on the app's own renders (random crops, whole-frame held-out PSNR)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.options import add_scene_option, scene_from
from training.run_dir import claim, inside
from training.vae_train import VAETrainConfig, train_vae


def register(sub) -> None:
    d = VAETrainConfig
    p = sub.add_parser("train-vae", help="train a scene TinyVAE (TAESD architecture) on 512² renders")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes")
    p.add_argument("--steps", type=int, default=None, help="step budget")
    p.add_argument("--res", type=int, default=d.res, help=f"frame resolution (default {d.res})")
    p.add_argument("--crop", type=int, default=d.crop, help=f"training crop side, a multiple of 8 (default {d.crop})")
    p.add_argument("--batch", type=int, default=d.batch, help=f"crops per step (default {d.batch})")
    p.add_argument("--candidates", type=int, default=d.candidates,
                   help=f"random crop positions tried per crop, the busiest kept (default {d.candidates}: uniform crops)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak Adam learning rate (default {d.lr:g})")
    p.add_argument("--latent-noise", type=float, default=d.latent_noise, help="latent jitter std in training (default 0)")
    p.add_argument("--latent-range-weight", type=float, default=d.latent_range_weight,
                   help=f"penalty on latents beyond the decoder's clamp range (default {d.latent_range_weight:g})")
    p.add_argument("--heldout", type=int, default=d.heldout, help=f"held-out whole frames (default {d.heldout})")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help=f"steps between held-out evaluations (default {d.eval_every})")
    p.add_argument("--threads", type=int, default=d.threads, help=f"torch threads (default {d.threads})")
    p.add_argument("--init", default=None, help="start from this TinyVAE's weights (a train-vae checkpoint or TAESD directory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(d.out), help=f"run directory (default {d.out})")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run (the old run is moved aside, not deleted)")
    add_scene_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    config = VAETrainConfig(res=args.res, crop=args.crop, batch=args.batch, candidates=args.candidates, steps=args.steps, minutes=args.minutes, lr=args.lr,
                            latent_noise=args.latent_noise, latent_range_weight=args.latent_range_weight, heldout=args.heldout, eval_every=args.eval_every,
                            seed=args.seed, init=args.init, threads=args.threads, out=str(args.out))

    def progress(rec: dict) -> None:
        if rec["event"] == "eval":
            print(f"step {rec['step']}: held-out {rec['res']}² PSNR {rec['test_psnr']:.2f} dB, SSIM {rec['test_ssim']:.3f} "
                  f"({rec['time']:.0f}s)", file=sys.stderr)
        else:
            print(f"\rstep {rec['step']}: train {rec['train_psnr']:.2f} dB ({rec['time']:.0f}s)", end="", file=sys.stderr, flush=True)

    # a finished TinyVAE is never silently replaced; --init from the run in --out continues it in place
    lock = claim(args.out, resume=inside(args.init, args.out), overwrite=args.overwrite, resume_hint=None)
    try:
        metrics = train_vae(config, scene_from(args), on_record=progress)
    finally:
        lock.release()
    print(json.dumps({"checkpoint": str(args.out / "checkpoint.safetensors"), **metrics}, indent=2))
    return 0
