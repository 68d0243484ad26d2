"""`redcube render`: the rasterized ground truth of one pose, to PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.options import add_pose_option, add_scene_option, camera_from, save_png, scene_from, write_png
from renderer.rasterizer import Rasterizer


def register(sub) -> None:
    p = sub.add_parser("render", help="render the ground truth of a pose to PNG")
    add_pose_option(p, required=True)
    p.add_argument("--res", type=int, default=256, help="square resolution, 16 to 2048 (default 256)")
    p.add_argument("--out", type=Path, required=True, help="output PNG path")
    p.add_argument("--depth", type=Path, default=None, help="also write depth (metres) as a 16-bit PNG in millimetres")
    add_scene_option(p)


def run(args) -> int:
    scene = scene_from(args)
    cam = camera_from(args, scene)
    with Rasterizer(scene) as r:
        rgb, depth = r.render(cam.pose().numpy(), args.res)
    print(save_png(args.out, rgb))
    if args.depth:
        print(write_png(args.depth, np.clip(depth * 1000, 0, 65535).astype(np.uint16)))
    return 0
