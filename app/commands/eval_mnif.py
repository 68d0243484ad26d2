"""`redcube eval-mnif`: reconstruction PSNR (training and fitted held-out worlds) and sample quality as JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from app.commands.sample_mnif import diffusion_path
from app.options import print_json
from renderer.worlds import heldout_worlds, train_worlds
from training.mnif.autodecode import MNIFTrainConfig, evaluate, load_mnif
from training.mnif.diffusion import LatentDiffusion
from training.mnif.meta import checkpoint_fit


def register(sub) -> None:
    p = sub.add_parser("eval-mnif", help="evaluate an mNIF and its latent diffusion model (JSON)")
    p.add_argument("--mnif", type=Path, default=Path("assets/mnif"), help="mNIF run directory or checkpoint (default assets/mnif)")
    p.add_argument("--diffusion", type=Path, default=None, help="diffusion checkpoint (default: beside the mNIF)")
    p.add_argument("--worlds", type=int, default=8, help="worlds per split rendered for the reconstruction PSNR (default 8)")
    p.add_argument("--samples", type=int, default=64, help="diffusion samples for precision and recall (default 64)")
    p.add_argument("--threshold-db", type=float, default=20.0, help="PSNR at which a render counts as close (default 20)")
    p.add_argument("--pairs", type=int, default=4, help="interpolation pairs (default 4)")
    p.add_argument("--fit-steps", type=int, default=300,
                   help="Adam latent-fitting steps for held-out worlds (default 300; a meta-learned mNIF uses its inner loop)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")


def run(args) -> int:
    from training.mnif.eval import grid_views, interpolation_jumps, precision_recall, rasterize_worlds, render_latents

    torch.set_num_threads(args.threads)
    model, latents, record = load_mnif(args.mnif)
    ld = LatentDiffusion.load(diffusion_path(args.mnif, args.diffusion))
    ld.check_mnif(latents)
    base = model.scene
    params = train_worlds(len(latents))
    cfg = MNIFTrainConfig(steps=0, eval_worlds=args.worlds, fit_steps=args.fit_steps)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    log("reconstruction: rendering training worlds and fitting held-out worlds ...")
    rec = evaluate(model, latents, params, base, cfg, fit=checkpoint_fit(args.mnif))
    log("sampling and rendering ...")
    z = ld.sample(args.samples, steps=50, seed=0)
    grid, held = grid_views(base), rasterize_worlds(heldout_worlds(), base)
    pr = precision_recall(render_latents(model, z, base), grid, held, args.threshold_db, base)
    log("the same figures for as many real (rasterized) training worlds ...")
    real = torch.randperm(len(params), generator=torch.Generator().manual_seed(0))[:args.samples]
    ref = precision_recall(rasterize_worlds([params[int(i)] for i in real], base), grid, held, args.threshold_db, base)
    g = torch.Generator().manual_seed(1)
    pairs = [tuple(int(v) for v in torch.randperm(len(latents), generator=g)[:2]) for _ in range(args.pairs)]
    jump, qs, _ = interpolation_jumps(model, latents, params, base, pairs)
    out = {"method": record["method"], "train_psnr": rec["train_psnr"], "heldout_psnr": rec["heldout_psnr"],
           "precision": pr["precision"], "recall": pr["recall"], "max_interp_jump_db": jump,
           "thresholds": {"close_db": args.threshold_db, "probe_views": 2, "probe_res": 32,
                          "grid": "12 hues x 3 sizes x 3 heights x 3 yaws x 3 x 3 offsets (renderer.worlds.parameter_grid)",
                          "family_match": "the 3 nearest grid worlds, each refined by coordinate search (training.mnif.eval.refine_to_family)"},
           "reconstruction": rec, "samples": args.samples, **{k: v for k, v in pr.items() if k not in ("precision", "recall")},
           "real_worlds_reference": {"what": f"{len(real)} rasterized training worlds in place of the samples", **ref},
           "interpolation": {"pairs": pairs, "steps": 8, "psnr_vs_interpolated_world": qs}}
    print_json(out, args.json)
    return 0
