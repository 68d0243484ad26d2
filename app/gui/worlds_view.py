"""The Worlds tab's pictures, without GUI calls: the mNIF's render of the current latent and the rasterizer's
picture of the nearest training world, both from the app's fly camera, made on a `LatestWorker` thread.

The mNIF is averaged into one SIREN for the latent (eq. 9) and volume-rendered (`training.mnif.render_latent`);
the nearest world is drawn by the app's own rasterizer, which renders a borrowed cube within one job on its
EGL thread (`Rasterizer.render(world=...)`), so the View tab's ground truth never sees it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from app.viewport import upscale
from app.gui.tab_parts import TabView
from renderer.scene import Scene
from renderer.worlds import WorldParams, world_scene
from training.mnif.autodecode import render_latent

VIDEO_SIZE = 256
"""Each half of an interpolation video frame is VIDEO_SIZE²."""
SAMPLES = 128
"""Volume-rendering samples per ray (the training evaluation's count); one ray per pixel."""
QUICK_RES, SETTLE_S = 32, 0.3
"""While the scrub or the camera moves (and 0.3 s after): pictures at 32² (~4x faster than 64²)."""


def render_pair(model, phi: torch.Tensor, world: WorldParams, pose: torch.Tensor, res: int, rasterizer,
                base: Scene) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(mNIF picture [res, res, 3], nearest world's rasterized picture [res, res, 3], mNIF ms, rasterizer ms)."""
    t0 = time.perf_counter()
    net = render_latent(model, phi, model.scene, pose[None], res, SAMPLES, supersample=1)[0].numpy()
    t1 = time.perf_counter()
    gt, _ = rasterizer.render(pose.numpy(), res, world=world_scene(world, base))
    return net, gt, (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000


def side_by_side(net: np.ndarray, gt: np.ndarray, size: int = VIDEO_SIZE) -> np.ndarray:
    """[size, 2 size, 3]: the mNIF picture left, the nearest world right (a video frame of the interpolation)."""
    return np.concatenate([upscale(net, size), upscale(gt, size)], axis=1)


@dataclass
class WorldsFrame:
    key: tuple
    """(pose, res, latent version) it was rendered for."""
    net: np.ndarray
    gt: np.ndarray
    net_ms: float
    gt_ms: float
    res: int
    nearest: int
    """The nearest training world's index (the ground-truth picture's world)."""
    done_at: float
    """time.perf_counter() when it was finished."""


class WorldsView(TabView):
    """Newest finished pair of pictures for the newest (camera, latent, resolution) request."""

    def __init__(self, rasterizer, base: Scene):
        self.rasterizer, self.base = rasterizer, base
        super().__init__("redcube-worlds", QUICK_RES, SETTLE_S)

    def render(self, what, res: int, snap: dict) -> WorldsFrame:
        pose, version = what
        pose_t = torch.tensor(pose, dtype=torch.float32)
        net, gt, net_ms, gt_ms = render_pair(snap["model"], snap["latent"], snap["world"], pose_t, res, self.rasterizer,
                                             self.base)
        return WorldsFrame((pose, res, version), net, gt, net_ms, gt_ms, res, snap["index"], time.perf_counter())
