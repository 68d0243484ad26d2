"""`redcube train`: train a model on streamed (or fixed) ground truth, with a progress line."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from app.options import add_scene_option, scene_from
from renderer.errors import RedcubeError
from renderer.models import PIXEL_MODELS
from training.latent import ENCODE_IN, LATENT_DATA_MODES, LatentTrainConfig, trainer_for
from training.trainer import DATA_MODES, Hooks, TrainConfig, Trainer
from training.vae import DEFAULT_SOURCE


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network on the cube world")
    p.add_argument("--model", default="posemlp", help=f"model name: {', '.join(PIXEL_MODELS)} (default posemlp)")
    p.add_argument("--res", type=int, default=32, help="training resolution (default 32)")
    p.add_argument("--steps", type=int, default=None, help="step budget")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes")
    p.add_argument("--data", choices=sorted(set(DATA_MODES) | set(LATENT_DATA_MODES)), default="stream",
                   help="stream fresh renders, a fixed set drawn once, or (latent mode) the shards of --shards")
    p.add_argument("--fixed-samples", type=int, default=100_000, help="pixel samples in fixed mode (default 100k)")
    p.add_argument("--out", type=Path, default=Path("runs/latest"), help="run directory (log.jsonl, checkpoint)")
    p.add_argument("--batch-size", type=int, default=16384, help="pixel samples per step (default 16384)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak Adam learning rate (default 1e-3)")
    p.add_argument("--warmup-steps", type=int, default=100, help="linear learning-rate warm-up steps (default 100)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model setting, e.g. --set input=plucker --set width=256 --set skip=true (repeatable)")
    p.add_argument("--eval-every", type=int, default=200, help="steps between held-out evaluations")
    p.add_argument("--heldout", type=int, default=32, help="held-out test poses (default 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--compile", action="store_true", help="train through torch.compile (see `redcube bench` for the speed-up)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run (the old run is moved aside, not deleted)")
    p.add_argument("--checkpoint-every", type=float, default=TrainConfig.checkpoint_every_s, metavar="SECONDS",
                   help=f"seconds between checkpoints after the first, which comes at {TrainConfig.first_checkpoint_s:g} s "
                        f"(default {TrainConfig.checkpoint_every_s:g})")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--latent", action="store_true",
                   help="latent mode: learn the TinyVAE latents of --res renders at (res/8)² (4 output channels), decode to res²")
    p.add_argument("--vae", default=None, help="latent mode's TinyVAE: 'scene' (shipped, default), a .safetensors or a TAESD directory")
    p.add_argument("--shards", type=Path, default=None,
                   help="latent mode with --data shards: a directory written by `redcube encode-latents` (same --vae, --res, scene)")
    p.add_argument("--encode-in", choices=ENCODE_IN, default="producer", help="latent mode: encode renders in the producer (default) or the trainer")
    add_scene_option(p)
    p.set_defaults(func=run)


def parse_settings(pairs: list[str]) -> dict:
    """KEY=VALUE pairs -> dict; values are JSON when they parse (numbers, true/false), else strings."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise RedcubeError(f"--set {pair!r} is not KEY=VALUE; write e.g. --set input=plucker.")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def config_from(args) -> TrainConfig:
    if (args.vae or args.shards or args.data == "shards") and not args.latent:
        raise RedcubeError("--vae, --shards and --data shards only apply to latent mode; add --latent or drop them.")
    latent = dict(vae=args.vae or DEFAULT_SOURCE, encode_in=args.encode_in, shards=str(args.shards or "")) if args.latent else {}
    return (LatentTrainConfig if args.latent else TrainConfig)(
        **latent, model=args.model, model_config=parse_settings(args.set), res=args.res, data=args.data,
        fixed_samples=args.fixed_samples, steps=args.steps, minutes=args.minutes, batch_size=args.batch_size,
        lr=args.lr, warmup_steps=args.warmup_steps, eval_every=args.eval_every, heldout=args.heldout, seed=args.seed, threads=args.threads, compile=args.compile,
        checkpoint_every_s=args.checkpoint_every, out_dir=str(args.out),
    )


class Progress:
    """One status line on stderr, rewritten in place; eval records also print a full line."""

    def __init__(self, trainer: Trainer, quiet: bool):
        self.trainer, self.quiet, self.last = trainer, quiet, {}

    def __call__(self, rec: dict) -> None:
        if rec.get("event") in ("rollback", "save_failed", "log_failed"):
            print(f"\n{rec['message']}", file=sys.stderr)
        if rec.get("event") == "start" and "backend" in rec:  # the hash grid's implementation: one line even when quiet
            print(f"hash grid backend: {rec['backend']}", file=sys.stderr)
        if self.quiet:
            return
        self.last.update({k: v for k, v in rec.items() if isinstance(v, (int, float))})
        r, p = self.last, self.trainer.progress()
        eta = r.get("time", 0) * (1 - p) / p if p > 0 else 0
        line = (f"\rstep {r.get('step', 0):>6} | {100 * p:5.1f}% | loss {r.get('train_loss', float('nan')):.5f} | "
                f"held-out {r.get('test_psnr', float('nan')):5.2f} dB | {r.get('samples_per_s', 0) / 1000:6.1f}k samples/s | "
                f"{r.get('time', 0):6.0f}s, ~{eta:.0f}s left")
        print(line, end="\n" if rec.get("event") in ("eval", "done") else "", file=sys.stderr, flush=True)


class StopRequests:
    """SIGINT and SIGTERM (a scheduler, `timeout`, a logout) both end the run with a final checkpoint;
    a second Ctrl-C aborts. Installed before the trainer is built, so an early signal is not lost."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = None

    def __call__(self, signum, _frame) -> None:
        if self.requested == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.requested is None:
            again = "; Ctrl-C again to abort" if signum == signal.SIGINT else ""
            print(f"\nstopping: writing a final checkpoint ({signal.Signals(signum).name}{again})", file=sys.stderr, flush=True)
        self.requested = self.requested or signum

    def __enter__(self) -> "StopRequests":
        self.old = [signal.signal(s, self) for s in self.SIGNALS]
        return self

    def __exit__(self, *exc) -> None:
        for s, h in zip(self.SIGNALS, self.old):
            signal.signal(s, h)


def run(args) -> int:
    config = config_from(args)
    with StopRequests() as stop:
        trainer = trainer_for(config, scene=scene_from(args), resume=args.resume, overwrite=args.overwrite)
        trainer.hooks = Hooks(on_record=Progress(trainer, args.quiet), should_stop=lambda: stop.requested is not None)
        try:
            metrics = trainer.run()
        finally:
            trainer.dist.close()
    if trainer.dist.main:  # under torchrun, rank 0 speaks for the run
        print(json.dumps({"checkpoint": str(trainer.ckpt_path), "step": trainer.step, **metrics}, indent=2))
    return 0
