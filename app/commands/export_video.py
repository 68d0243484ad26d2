"""`redcube export-video`: render a camera path (a JSON path file or a preset) to an mp4."""

from __future__ import annotations

import sys
from pathlib import Path

from app.paths import PRESETS, CameraPath, preset
from app.video import PANELS, export_video
from renderer.errors import RedcubeError
from renderer.models import PIXEL_MODELS
from renderer.rasterizer import Rasterizer
from training.checkpoint import load_checkpoint


def register(sub) -> None:
    p = sub.add_parser("export-video", help="render a camera path to an mp4 (ground truth, network, side by side or error)",
                       description="Path files are JSON: {\"loop\": false, \"keyframes\": [{\"x\": 0, \"z\": 1.9, \"yaw\": 0}, ...]} "
                                   "(yaw in radians; optional \"y\" and \"pitch\").")
    p.add_argument("checkpoint", type=Path, help="network checkpoint (.safetensors or a run directory)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--path", type=Path, help="camera path JSON file")
    src.add_argument("--preset", choices=PRESETS, help="built-in path: orbit (circle the cube) or walk (through the cube)")
    p.add_argument("--out", type=Path, required=True, help="output .mp4")
    p.add_argument("--panel", choices=list(PANELS), default="side_by_side", help="what each frame shows (default side_by_side)")
    p.add_argument("--res", type=int, default=256, help="square resolution of one panel, even, 16 to 1024 (default 256)")
    p.add_argument("--fps", type=int, default=30, help="frames per second (default 30)")
    p.add_argument("--frames", type=int, default=300, help="number of frames (default 300)")


FOREIGN_FIX = {
    "mnif": "render an mNIF's worlds with `redcube sample-mnif` or its interpolation video in the app's Worlds tab",
    "tinyvae": "a TinyVAE is a decoder, not a renderer: check it with `redcube eval`",
}


def check_pixel_network(ckpt, path) -> None:
    """export-video renders pixel networks; another kind of checkpoint is one sentence naming the tool that fits it."""
    if ckpt.kind in PIXEL_MODELS and not ckpt.record.get("vae"):
        return
    fix = FOREIGN_FIX.get(ckpt.kind, "it needs the command that trained it")
    what = "a latent network (it renders through a TinyVAE)" if ckpt.kind in PIXEL_MODELS else f"a {ckpt.kind} checkpoint"
    if ckpt.kind in PIXEL_MODELS:
        fix = "compare a latent network in the app's View tab, or export a pixel network"
    raise RedcubeError(f"{path} is {what}, not a pixel network (one of {', '.join(PIXEL_MODELS)}) that export-video renders; {fix}.")


def run(args) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    check_pixel_network(ckpt, args.checkpoint)
    scene = ckpt.scene  # the world the network was trained on
    model = ckpt.build_model().eval() if args.panel != "gt" else None
    path = CameraPath.load(args.path) if args.path else preset(args.preset, scene)
    for problem in path.problems(scene):
        print(f"redcube: warning: {problem} (outside the training distribution)", file=sys.stderr)
    cams = path.sample(args.frames)

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"\rframe {done}/{total}", end="", file=sys.stderr, flush=True)

    with Rasterizer(scene) as rast:
        r = export_video(cams, args.out, rasterizer=rast, model=model, panel=args.panel, res=args.res, fps=args.fps,
                         progress=progress)
    print(file=sys.stderr)
    print(f"{r.path}: {r.frames} frames, {r.seconds:.1f} s ({r.fps:.1f} frames/s, {args.panel} at {args.res}²)")
    return 0
