"""What several subcommands share, one definition each: options, writing outputs, running a shard-set generator."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from renderer.camera import Camera
from renderer.errors import RedcubeError
from renderer.scene import Scene
from training.checkpoint import atomic_write
from training.distributed import Dist


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


def write_output(path: Path, write) -> Path:
    """Write a user-named output file atomically (write(tmp) then rename); an unwritable place is one sentence."""
    path = Path(path)
    try:
        atomic_write(path, write)
    except OSError as e:
        raise RedcubeError(f"cannot write {path} ({e.strerror}); choose a writable location.") from None
    return path


def check_writable(path: Path | None) -> Path | None:
    """Fail before a long job, not after it: can a file be made beside `path`? (One sentence if not; None passes.)"""
    if path is None:
        return None
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as e:
        raise RedcubeError(f"cannot write {path} ({e.strerror}); choose a writable location.") from None
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    """An 8- or 16-bit image array as PNG."""
    import imageio.v3 as iio

    return write_output(path, lambda tmp: iio.imwrite(tmp, image, extension=".png"))


def save_png(path: Path, rgb: np.ndarray) -> Path:
    """Float RGB in [0, 1] as an 8-bit PNG."""
    return write_png(path, (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))


def print_json(result: dict, path: Path | None) -> None:
    """The figures as JSON on stdout, and in the file `path` too when one is given (the `--json` option)."""
    text = json.dumps(result, indent=2)
    if path:
        write_output(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    print(text)


def run_sharded(generate: Callable[..., dict], totals: tuple[str, ...], quiet: bool) -> int:
    """Run a shard-set generator (`ngp-dataset`, `encode-latents`) as generate(log=..., dist=...), alone or as one rank
    under torchrun: progress lines on stderr, and from rank 0 one JSON summary on stdout (under torchrun: summed over
    the ranks for `totals`, with every rank's own)."""
    dist = Dist.from_env()
    try:
        log = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))
        summary = generate(log=log, dist=dist)
        ranks = dist.gather(summary)
    finally:
        dist.close()
    if dist.main:
        print(json.dumps(summary if not dist.active else {
            "out": summary["out"], "world_size": dist.world, **{k: sum(r[k] for r in ranks) for k in totals},
            "ranks": ranks}, indent=2))
    return 0
