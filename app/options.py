"""Command-line options shared by several subcommands (one definition each)."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import numpy as np

from renderer.camera import Camera
from renderer.scene import Scene


def add_scene_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scene", type=Path, default=None, help="scene config TOML (default: the built-in cube world)")


def scene_from(args) -> Scene:
    return Scene.from_toml(args.scene) if getattr(args, "scene", None) else Scene()


def add_pose_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--pose", nargs=3, type=float, metavar=("X", "Z", "YAW"), required=required,
                   help="camera position x, z (metres) and yaw (radians) at eye height")


def camera_from(args, scene: Scene) -> Camera:
    x, z, yaw = args.pose
    return Camera(x=x, z=z, yaw=yaw, y=scene.height[0], pitch=np.radians(scene.pitch_deg[0])).validate(scene)


def save_png(path: Path, rgb: np.ndarray) -> Path:
    """Write float RGB in [0, 1] as an 8-bit PNG."""
    import imageio.v3 as iio

    from renderer.errors import RedcubeError

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")  # write beside, then rename: a failed write keeps the old file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(tmp, (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise RedcubeError(f"cannot write {path} ({e.strerror}); choose a writable location.") from None
    return path
