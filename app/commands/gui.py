"""`redcube gui`: the desktop app (fly the camera, compare ground truth with a live network, train, export videos)."""

from __future__ import annotations

import os
from pathlib import Path

from app.gui.state import VIEW_MODES
from app.options import add_scene_option, scene_from
from renderer.errors import RedcubeError

TABS = ("view", "training", "model", "video", "worlds", "rotations")


def register(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop app")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="network to show (default: the last one used, else the shipped default in assets/)")
    p.add_argument("--screenshot", type=Path, default=None,
                   help="open, draw until the picture is final, save the window to this PNG (plus PATH.json: layout and pose) and exit")
    p.add_argument("--frames", type=int, default=None, help="exit after this many frames (with --screenshot: at least this many)")
    p.add_argument("--pose", nargs=3, type=float, metavar=("X", "Z", "YAW"), default=None, help="start at this camera pose")
    p.add_argument("--mode", default=None, choices=list(VIEW_MODES), help="view mode (default: the last one used)")
    p.add_argument("--tab", default=None, choices=TABS, help="open this side tab (with --screenshot and rotations: also wait for that tab's pictures)")
    p.add_argument("--net-res", type=int, default=None, help="network resolution, 32 to 512")
    add_scene_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        # dearpygui aborts the process without a display; say so instead.
        raise RedcubeError("no display found (DISPLAY is not set); run on a desktop, or headless under `xvfb-run -a redcube gui ...`.")
    from app.gui.app import App

    app = App(checkpoint=args.checkpoint, scene=scene_from(args))
    if args.pose:
        x, z, yaw = args.pose
        app.fly.set_pose(x=x, z=z, yaw=yaw)
    try:
        if args.mode or args.net_res:
            app.view.set(**{k: v for k, v in (("mode", args.mode), ("net_res", args.net_res)) if v is not None})
            app.net_res_locked = args.net_res is not None
    except RedcubeError:
        app.run(frames=0)  # close the window cleanly before reporting the bad option
        raise
    if args.tab:
        app.open_tab(args.tab)
    return app.run(frames=args.frames, screenshot=args.screenshot)
