"""Video export: render every camera of a path and encode an mp4 with the ffmpeg that imageio-ffmpeg ships.

Shared by the GUI (on a worker thread, with a progress bar and cancel) and `redcube export-video`;
`encode_mp4` is the encoder alone (the Worlds tab's interpolation video uses it too).
The video is written to a temp file beside the target and renamed at the end, so a cancelled or
failed export never leaves half a file nor damages an existing one.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from app.viewport import error_map
from renderer.camera import Camera
from renderer.errors import RedcubeError
from renderer.render import render_image
from training.ipc_registry import pid_alive

PANELS = {"gt": "Ground truth", "network": "Network", "side_by_side": "Side by side", "error": "Abs error"}
GT_BATCH = 16  # poses per rasterizer call: fewer thread hand-offs
INFER_CHUNK = 1024  # pixels per forward pass: activations stay in cache (one thread, 64²: 47 ms vs 59 ms at 8k and 94 ms at 64k)


def infer_chunk(model) -> int:
    """Pixels per forward pass for this model: its own preference (the fused NGP kernel wants whole tiles of rays
    for its threads), else INFER_CHUNK."""
    return getattr(model, "infer_chunk", INFER_CHUNK)


@dataclass
class VideoResult:
    path: Path | None
    frames: int
    seconds: float
    cancelled: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def check_video_args(out: Path, panel: str, res: int, fps: int, model) -> None:
    if panel not in PANELS:
        raise RedcubeError(f"unknown panel {panel!r}; choose one of {list(PANELS)}.")
    if not 16 <= res <= 1024 or res % 2:
        raise RedcubeError(f"video resolution {res} must be an even number from 16 to 1024 (the h264 encoder needs even sizes).")
    if not 1 <= fps <= 120:
        raise RedcubeError(f"fps {fps} is out of range; choose 1 to 120.")
    if panel != "gt" and model is None:
        raise RedcubeError(f"the {panel!r} panel needs a network; load a checkpoint or choose the 'gt' panel.")
    if Path(out).suffix.lower() != ".mp4":
        raise RedcubeError(f"video output {out} must end in .mp4.")


def _writable_temp(out: Path) -> Path:
    """A temp path beside `out`, after checking the folder can be written (and removing killed exports' temp files)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(out.parent)
        probe = out.parent / f".{out.stem}.{os.getpid()}.tmp.mp4"
        probe.touch()
    except OSError as e:
        raise RedcubeError(f"cannot write the video to {out} ({e.strerror}); choose a writable location.") from None
    return probe


def remove_dead_temps(folder: Path) -> None:
    """Remove `.NAME.PID.tmp.mp4` files whose export process is gone (killed mid-export): nothing will rename them."""
    for p in folder.glob(".*.tmp.mp4"):
        pid = p.name[:-len(".tmp.mp4")].rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            p.unlink(missing_ok=True)


def panel_frame(panel: str, gt: np.ndarray | None, net: np.ndarray | None, gain: float = 4.0) -> np.ndarray:
    """One video frame [H, W, 3] float for a panel choice."""
    if panel == "gt":
        return gt
    if panel == "network":
        return net
    if panel == "error":
        return error_map(net, gt, gain)
    return np.concatenate([gt, net], axis=1)


def export_video(cameras: list[Camera], out: str | Path, *, rasterizer, model=None, panel: str = "side_by_side",
                 res: int = 256, fps: int = 30, progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> VideoResult:
    """Encode one frame per camera; progress(done, total) after each frame; a set `cancel` stops early."""
    check_video_args(Path(out), panel, res, fps, model)

    def frames():
        for start in range(0, len(cameras), GT_BATCH):
            batch = cameras[start:start + GT_BATCH]
            gts = None
            if panel != "network":
                gts, _ = rasterizer.render(torch.stack([c.pose() for c in batch]).numpy(), res)
            for i, cam in enumerate(batch):
                net = render_image(model, cam.pose(), res, chunk=infer_chunk(model)).clamp(0, 1).cpu().numpy() if model is not None and panel != "gt" else None
                yield panel_frame(panel, None if gts is None else gts[i], net)

    width = 2 * res if panel == "side_by_side" else res
    return encode_mp4(frames(), len(cameras), out, (width, res), fps, progress, cancel)


def encode_mp4(frames: Iterable[np.ndarray], total: int, out: str | Path, size: tuple[int, int], fps: int,
               progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None) -> VideoResult:
    """Encode float frames [H, W, 3] (size = (W, H)) to an mp4 beside `out`, renamed into place at the end;
    progress(done, total) after each frame; a set `cancel` stops before the next frame and writes nothing."""
    import imageio_ffmpeg

    out = Path(out)
    tmp = _writable_temp(out)
    t0, done = time.perf_counter(), 0
    frames = iter(frames)
    try:  # the first frame before ffmpeg starts: a network that cannot render says so alone, without ffmpeg's complaints
        first = next(frames, None)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    frames = itertools.chain([] if first is None else [first], frames)
    writer = imageio_ffmpeg.write_frames(str(tmp), size, fps=fps, quality=8, macro_block_size=1,
                                         output_params=["-movflags", "+faststart"])
    try:
        writer.send(None)  # start ffmpeg
        while True:
            if cancel is not None and cancel.is_set():  # before the next frame is rendered
                return VideoResult(None, done, time.perf_counter() - t0, cancelled=True)
            frame = next(frames, None)
            if frame is None:
                break
            writer.send(np.ascontiguousarray((np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)))
            done += 1
            if progress is not None:
                progress(done, total)
        writer.close()
        os.replace(tmp, out)
        return VideoResult(out, done, time.perf_counter() - t0)
    except (OSError, RuntimeError) as e:
        raise RedcubeError(f"video export to {out} failed ({e}); check the disk space and the location.") from None
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
