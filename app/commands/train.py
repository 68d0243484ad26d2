"""`redcube train KIND`: train any kind of model through the one engine, with flags made from the kind's config
dataclasses (`training.kinds`, `app.flags`): defaults and help come from the fields, so they live in one place.

The older spellings keep working: `redcube train --flags` (no kind), `train-vae`, `train-mnif` and `train-weightspace`
(see `expand_aliases`)."""

from __future__ import annotations

import json
import sys

from app.flags import add_fields, values
from app.options import add_scene_option, scene_from
from renderer.errors import RedcubeError
from training.engine import Hooks, StopRequests
from training.kinds import Job, kind, kinds

OLD_COMMANDS = {"train-vae": "vae", "train-mnif": "mnif, mnif-meta (--method meta) or diffusion (--diffusion-only)",
                "train-weightspace": "weightspace or weightspace-grid (--arm grid)"}
"""The commands from before `train KIND`, and the kinds they train (`expand_aliases` rewrites them)."""


def _take(argv: list[str], flag: str, with_value: bool = False) -> tuple[list[str], str | bool | None]:
    """argv without `flag` (and its value), and what it was: the value, True, or None when absent."""
    if flag not in argv:
        return argv, None
    i = argv.index(flag)
    if with_value:
        return argv[:i] + argv[i + 2:], (argv[i + 1] if i + 1 < len(argv) else None)
    return argv[:i] + argv[i + 1:], True


def expand_aliases(argv: list[str]) -> list[str]:
    """The old spellings as `train KIND ...`: `train --flags` (pixel, or latent with --latent), `train-vae`,
    `train-mnif [--method meta] [--diffusion-only]`, `train-weightspace [--arm grid]`."""
    if not argv:
        return argv
    head, rest = argv[0], list(argv[1:])
    if head == "train" and (not rest or (rest[0].startswith("-") and rest[0] not in ("-h", "--help"))):
        rest, latent = _take(rest, "--latent")
        return ["train", "latent" if latent else "pixel", *rest]
    if head == "train-mnif":
        rest, method = _take(rest, "--method", with_value=True)
        rest, only = _take(rest, "--diffusion-only")
        return ["train", "diffusion" if only else ("mnif-meta" if method == "meta" else "mnif"), *rest]
    if head == "train-weightspace":
        rest, arm = _take(rest, "--arm", with_value=True)
        return ["train", "weightspace-grid" if arm == "grid" else "weightspace", *rest]
    if head == "train-vae":
        return ["train", "vae", *rest]
    return argv


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model of any kind: `redcube train KIND --help` shows its flags",
                       description="Train a model through the one training engine. Kinds: " +
                       "; ".join(f"{k.name}: {k.help}" for k in kinds().values()))
    each = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    for k in kinds().values():
        kp = each.add_parser(k.name, help=k.help, description=f"Train {k.help}.")
        for part in k.parts:
            add_fields(kp, part.cls, part.prefix, part.skip, part.aliases, group=f"{part.name} ({part.cls.__name__})")
        if k.name in ("pixel", "latent"):
            kp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="model setting, e.g. --set input=plucker --set width=256 --set skip=true (repeatable)")
        kp.add_argument("--resume", action="store_true", help="continue the run in its directory from its checkpoint, exactly")
        kp.add_argument("--overwrite", action="store_true",
                        help="start afresh in a directory that holds a run (the old run is moved aside, not deleted)")
        kp.add_argument("--quiet", action="store_true", help="no progress bar")
        add_scene_option(kp)
    for old, new in OLD_COMMANDS.items():
        sub.add_parser(old, help=f"alias of `redcube train {new}`", add_help=False)


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


def job_from(args):
    """The kind's configs from the parsed flags."""
    spec, parts = kind(args.kind), {}
    for part in spec.parts:
        given = values(part.cls, args, part.prefix, part.skip)
        if part.name == "train" and hasattr(args, "set"):
            given["model_config"] = parse_settings(args.set)
        parts[part.name] = part.cls(**given)
    return Job(spec.name, parts)


def show_record(rec: dict, quiet: bool) -> None:
    """What the bar does not show: warnings (even when quiet), the hash grid's backend, and every evaluation."""
    event = rec.get("event")
    if event in ("rollback", "save_failed", "log_failed"):
        print(f"\n{rec['message']}", file=sys.stderr)
    elif event == "start" and "backend" in rec:
        print(f"hash grid backend: {rec['backend']}", file=sys.stderr)
    elif event == "eval" and not quiet:
        shown = {k: round(v, 4) for k, v in rec.items() if isinstance(v, float) and k != "time"}
        print(f"step {rec['step']} ({rec['time']:.0f}s): {json.dumps(shown)}", file=sys.stderr, flush=True)


def run(args) -> int:
    job = job_from(args)
    result: dict = {}
    with StopRequests() as stop:
        hooks = Hooks(on_record=lambda rec: show_record(rec, args.quiet),
                      should_stop=lambda: stop.requested is not None, progress_bar=not args.quiet)
        for engine in job.engines(scene_from(args), hooks, args.resume, args.overwrite):
            try:
                metrics = engine.run()
            finally:
                engine.dist.close()
            if not engine.dist.main:  # under torchrun, rank 0 speaks for the run
                return 0
            first = not result
            result.update({"checkpoint" if first else engine.kind: str(engine.ckpt_path),
                           **({"step": engine.step} if first else {}), **{k: v for k, v in metrics.items() if k not in result}})
            if stop.requested:
                break
    if job.kind.startswith("weightspace"):
        from app.plots import plot_weightspace_run  # matplotlib is slow to import: only when plotting

        result["curves"] = str(plot_weightspace_run(job))
    print(json.dumps(result, indent=2))
    return 0
