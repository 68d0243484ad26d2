"""`redcube gui`: the desktop app (fly the camera, compare ground truth with a live network, train, export videos)."""

from __future__ import annotations

from pathlib import Path

from app.options import add_pose_option, add_scene_option, scene_from
from renderer.numbers import check_number

TABS = ("view", "training", "model", "video", "worlds", "rotations")


def register(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop app")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="network to show (default: the last one used, else the shipped default in assets/)")
    p.add_argument("--screenshot", type=Path, default=None,
                   help="open, draw until the picture is final, save the window to this PNG (plus PATH.json: layout and pose) and exit")
    p.add_argument("--frames", type=int, default=None, help="exit after this many frames (with --screenshot: at least this many)")
    p.add_argument("--mode", default=None, help="view mode: side_by_side, split, network, gt, error or latent (default: the last one used)")
    p.add_argument("--tab", default=None, choices=TABS, help="open this side tab (with --screenshot and rotations: also wait for that tab's pictures)")
    p.add_argument("--net-res", type=int, default=None, help="network resolution, 32 to 512")
    add_pose_option(p)
    add_scene_option(p)


def check_args(args) -> dict:
    """Every option checked before the window exists (an error once dearpygui runs would abort the process): numbers
    finite and in range (poses are float32 tensors), and the view settings asked for, which it returns."""
    from app.gui.state import ViewSettings

    if args.pose:
        for name, v in zip(("X", "Z", "YAW"), args.pose):
            check_number(f"--pose {name}", v)
    if args.frames is not None:
        check_number("--frames", args.frames, 0, 10 ** 9, integer=True)
    view = {k: v for k, v in (("mode", args.mode), ("net_res", args.net_res)) if v is not None}
    ViewSettings().set(**view)  # an unknown mode or a resolution out of range: one sentence
    return view


def run(args) -> int:
    """The one command that opens the GUI: it imports the GUI package here, when run, never when the CLI starts."""
    from app.gui.display import check_display

    view = check_args(args)
    check_display()
    from app.gui.app import App

    app = App(checkpoint=args.checkpoint, scene=scene_from(args))
    if args.pose:
        x, z, yaw = args.pose
        app.fly.set_pose(x=x, z=z, yaw=yaw)
    if view:
        app.view.set(**view)
        app.net_res_locked = args.net_res is not None
    if args.tab:
        app.open_tab(args.tab)
    return app.run(frames=args.frames, screenshot=args.screenshot)
