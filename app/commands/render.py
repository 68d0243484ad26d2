"""`redcube render`: the rasterized ground truth of one pose, to PNG."""

from __future__ import annotations

from pathlib import Path

from app.options import add_pose_option, add_scene_option, camera_from, save_png, scene_from
from renderer.rasterizer import Rasterizer


def register(sub) -> None:
    p = sub.add_parser("render", help="render the ground truth of a pose to PNG")
    add_pose_option(p, required=True)
    p.add_argument("--res", type=int, default=256, help="square resolution, 16 to 2048 (default 256)")
    p.add_argument("--out", type=Path, required=True, help="output PNG path")
    p.add_argument("--depth", type=Path, default=None, help="also write depth (metres) as a 16-bit PNG in millimetres")
    add_scene_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    scene = scene_from(args)
    cam = camera_from(args, scene)
    with Rasterizer(scene) as r:
        rgb, depth = r.render(cam.pose().numpy(), args.res)
    print(save_png(args.out, rgb))
    if args.depth:
        import imageio.v3 as iio
        import numpy as np

        args.depth.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(args.depth, np.clip(depth * 1000, 0, 65535).astype(np.uint16))
        print(args.depth)
    return 0
