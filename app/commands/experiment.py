"""`redcube experiment overfit|inputs`: arms trained on the same wall-clock, curves to PNG and JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.commands.train import parse_settings
from training.experiments import arms, run_arms
from training.trainer import TrainConfig

TITLES = {
    "overfit": "fixed 100k pixel samples vs streamed renders (same model, same {budget})",
    "inputs": "blog 6-D pose input vs Plücker line vs ray input (streamed, same {budget})",
}


def register(sub) -> None:
    p = sub.add_parser("experiment", help="reproduce the blog's findings: overfit | inputs")
    p.add_argument("name", choices=sorted(TITLES), help="overfit: fixed 100k vs stream; inputs: pose vs Plücker vs ray")
    p.add_argument("--model", default="posemlp")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget per arm (default 5)")
    p.add_argument("--steps", type=int, default=None, help="step budget per arm instead of minutes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model setting (repeatable)")
    p.add_argument("--batch-size", type=int, default=16384)
    p.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/experiment"), help="output directory")
    p.set_defaults(func=run)


def run(args) -> int:
    base = TrainConfig(model=args.model, model_config=parse_settings(args.set), res=args.res,
                       minutes=None if args.steps else args.minutes, steps=args.steps,
                       batch_size=args.batch_size, lr=args.lr, eval_every=args.eval_every, seed=args.seed)
    out = args.out / args.name

    def progress(arm, rec):
        if rec.get("event") == "eval":
            print(f"{arm}: step {rec['step']} t={rec['time']:.0f}s train {rec['train_psnr']:.2f} dB, "
                  f"held-out {rec['test_psnr']:.2f} dB", file=sys.stderr)

    from app.plots import plot_curves  # matplotlib is slow to import: only when plotting

    results = run_arms(arms(args.name, base), out, on_record=progress)
    title = TITLES[args.name].format(budget=f"{args.steps} steps" if args.steps else f"{args.minutes:g} min wall-clock")
    summary = {"experiment": args.name, "title": title, "device": "cpu",
               "arms": {a: r["final"] for a, r in results.items()}}
    summary["plot"] = str(plot_curves(results, out / f"{args.name}.png", title, x="step" if args.steps else "time"))
    (out / f"{args.name}.json").write_text(json.dumps({**summary, "curves": {a: r["curve"] for a, r in results.items()}}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
