"""`redcube experiment overfit|inputs`: arms trained on the same wall-clock, curves to PNG and JSON."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from app.commands.train import parse_settings
from app.flags import add_fields, values
from renderer.errors import RedcubeError
from training.experiments import arms, compare_at, run_arms
from training.trainer import TrainConfig

TITLES = {
    "overfit": "fixed 100k pixel samples vs streamed renders (same model, same {budget})",
    "inputs": "blog 6-D pose input vs Plücker line vs ray input (streamed, same {budget})",
    "compare": "pose MLP vs SIREN vs Instant-NGP radiance field (same stream, same {budget})",
    "latent": "TinyVAE latents decoded to 512² vs pixels at 64² upscaled to 512² (same {budget})",
}
DEFAULTS = TrainConfig(minutes=5.0, eval_every=100)
"""The flags' defaults: each arm trains for 5 minutes unless --steps is given, evaluated every 100 steps."""
SKIP = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in
             ("model", "res", "steps", "minutes", "batch_size", "lr", "eval_every", "seed", "threads"))
"""The TrainConfig fields that are not flags here: the arms set them."""


def register(sub) -> None:
    p = sub.add_parser("experiment", help="reproduce the blog's findings: overfit | inputs | latent | compare")
    p.add_argument("name", choices=sorted(TITLES),
                   help="overfit: fixed 100k vs stream; inputs: pose vs Plücker vs ray; latent: TinyVAE latents vs pixels, at 512²; "
                        "compare: posemlp vs siren vs ngp (held-out PSNR pooled over pixels against time)")
    add_fields(p, TrainConfig, skip=SKIP, base=DEFAULTS, group="each arm's training (TrainConfig)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model setting (repeatable)")
    p.add_argument("--vae", default=None, help="latent: the TinyVAE ('scene' by default, a .safetensors or a TAESD directory)")
    p.add_argument("--shards", default=None,
                   help="latent: train the latent arm on the latents `redcube encode-latents` wrote here (their encoding time is not in the budget)")
    p.add_argument("--out", type=Path, default=Path("runs/experiment"), help="output directory")


def run(args) -> int:
    base = TrainConfig(**{**values(TrainConfig, args, skip=SKIP), "minutes": None if args.steps else args.minutes},
                       model_config=parse_settings(args.set))
    out = args.out / args.name

    def progress(arm, rec):
        if rec.get("event") == "eval":
            print(f"{arm}: step {rec['step']} t={rec['time']:.0f}s train {rec['train_psnr']:.2f} dB, "
                  f"held-out {rec['test_psnr']:.2f} dB", file=sys.stderr)

    from app.plots import plot_curves, plot_latent_experiment  # matplotlib is slow to import: only when plotting

    configs = arms(args.name, base)
    latent_only = {"vae": args.vae, "shards": args.shards}
    if any(latent_only.values()):
        if args.name != "latent":
            raise RedcubeError("--vae and --shards only apply to the latent experiment; drop them.")
        change = {k: v for k, v in latent_only.items() if v} | ({"data": "shards"} if args.shards else {})
        configs = {a: (dataclasses.replace(c, **change) if hasattr(c, "vae") else c) for a, c in configs.items()}
    results = run_arms(configs, out, on_record=progress)
    title = TITLES[args.name].format(budget=f"{args.steps} steps" if args.steps else f"{args.minutes:g} min wall-clock")
    summary = {"experiment": args.name, "title": title, "device": "cpu", **({"latent_shards": args.shards} if args.shards else {}),
               "arms": {a: r["final"] for a, r in results.items()}}
    if args.name == "latent":  # both arms judged at 512² on the same held-out poses
        at_res, images = compare_at(results, seed=args.seed)
        summary["at_512"] = at_res
        summary["plot"] = str(plot_latent_experiment(results, at_res, images, out / f"{args.name}.png", title))
    else:
        held_out = "test_psnr_pooled" if args.name == "compare" else "test_psnr"  # a third of the views are all sky
        summary["plot"] = str(plot_curves(results, out / f"{args.name}.png", title, x="step" if args.steps else "time", held_out=held_out))
    (out / f"{args.name}.json").write_text(json.dumps({**summary, "curves": {a: r["curve"] for a, r in results.items()}}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
