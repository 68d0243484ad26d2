"""The viewer's frame logic without any GUI calls: which renders to request, what to show, the stats.

Each frame the app calls `tick()`; the viewer asks its background renderers for the current camera
(only when something changed), takes the newest finished frames and, when one arrived, composes the
pictures the window draws. A still camera upgrades the displayed ground truth to the anti-aliased one.

The network picture follows the camera at a dynamic resolution (`app.gui.dynamic_res`): while the camera moves,
the resolution that holds the target network frame rate; REFINE_AFTER_S after it stops, the full resolution the
user chose, with the same-resolution ground truth for the PSNR. Moving again cancels a refinement in flight.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from app.gui.dynamic_res import DynamicResolution
from app.gui.state import FlyCamera, ViewSettings
from app.viewport import compose, upscale
from app.gui.workers import GroundTruthView, GTFrame, ModelSlot, NetFrame, NetworkView
from renderer.scene import Scene

STILL_AFTER_S = 0.25  # a camera still this long gets the full-size anti-aliased ground truth
REFINE_AFTER_S = 0.1  # a camera still this long gets the network at full resolution (keys repeat faster than this)
MOVING_DOWNSCALE = 2  # while flying: half-size aliased ground truth, a sixteenth of the still frame's samples
STILL_SUPERSAMPLE = 2  # on screen 2x2 anti-aliasing looks like 4x4 at a quarter of the cost (PSNR uses the scene's own)


def device_name(threads: int) -> str:
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu, {threads} inference thread{'s' if threads > 1 else ''}"


@dataclass
class Stats:
    inference_ms: float = 0.0
    fps: float = 0.0  # window redraws per second
    net_fps: float = 0.0  # network pictures reaching the screen per second (over the last second or so)
    psnr: float | None = None
    psnr_res: int | None = None
    net_res: int | None = None  # of the network picture on screen (dynamic while flying)
    threads: int = 1

    def line(self) -> str:
        p = f"{self.psnr:.2f} dB @ {self.psnr_res}²" if self.psnr is not None else "n/a"
        res = f"{self.net_res}²" if self.net_res else "-"
        rate = f"{self.net_fps:4.1f} fps" if self.net_fps > 0.05 else "still"  # no new pictures while the camera rests
        return (f"network {rate} @ {res} ({self.inference_ms:4.0f} ms) | window {self.fps:4.1f} fps"
                f" | PSNR {p} | {device_name(self.threads)}")


class Viewer:
    def __init__(self, scene: Scene, rasterizer, fly: FlyCamera, view: ViewSettings, slot: ModelSlot):
        self.scene, self.fly, self.view, self.slot = scene, fly, view, slot
        self.gt_view = GroundTruthView(rasterizer)
        self.net_view = NetworkView(rasterizer, slot, gain=lambda: self.view.error_gain)
        self.left: np.ndarray | None = None  # [S, S, 3] picture of the left (or only) panel
        self.right: np.ndarray | None = None  # [S, S, 3] network picture in side-by-side mode, else None
        self.gt: GTFrame | None = None
        self.net: NetFrame | None = None
        self.stats = Stats()
        self._asked_gt: tuple | None = None
        self._last_view: tuple | None = None
        self._asked_net: tuple | None = None
        self._moved_at = 0.0
        self._seen_view = -1
        self._frame_times: deque = deque(maxlen=60)
        self._net_times: deque = deque(maxlen=30)
        self.dynamic = DynamicResolution(view.target_fps)

    # -- per frame ------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> bool:
        """Request renders for the current camera, take finished ones; True when the picture changed."""
        now = time.perf_counter() if now is None else now
        pose = tuple(float(v) for v in self.fly.camera.pose())
        self._request(pose, now)
        changed = self._take()
        if changed or self.view.version != self._seen_view:
            self._seen_view = self.view.version
            self._compose()
            changed = True
        self._frame_times.append(now)
        return changed

    def _request(self, pose: tuple, now: float) -> None:
        size = self.view.display
        if (pose, size) != self._last_view:
            self._last_view, self._moved_at = (pose, size), now
        still = now - self._moved_at > STILL_AFTER_S
        ss = min(self.scene.supersample, STILL_SUPERSAMPLE)
        gt_req = (pose, size, ss, True) if still else (pose, size // MOVING_DOWNSCALE, 1, False)
        if gt_req != self._asked_gt:
            self._asked_gt = gt_req
            self.gt_view.request(*gt_req)
        loaded = self.slot.snapshot()
        refine = now - self._moved_at > REFINE_AFTER_S
        self.dynamic.target_fps = self.view.target_fps
        if loaded is not None and loaded.vae is not None:  # latents: the TinyVAE decode is the slow part
            res = self.view.net_res if refine else min(self.view.net_res, self.view.flying_res)
        else:
            res = self.dynamic.resolution(self.view.net_res, moving=not refine) if self.view.dynamic else self.view.net_res
        truth = refine or self.view.mode == "error"
        net_req = (pose, res, refine, truth, loaded.version if loaded else None)
        if loaded is not None and net_req != self._asked_net:
            self._asked_net = net_req
            self.net_view.request(pose, res, still=refine, truth=truth)

    def _take(self) -> bool:
        changed = False
        gt = self.gt_view.worker.take()
        if gt is not None:
            self.gt, changed = gt, True
        net = self.net_view.worker.take()
        if net is not None:
            self.net, changed = net, True
            loaded = self.slot.snapshot()
            if loaded is not None and loaded.vae is None and net.network == loaded.network:
                # a training run's newer weights in the same network cost the same: keep measuring while following
                self.dynamic.measure(net.network, net.res, net.ms)
            self._net_times.append(net.done_at)
            s = self.stats
            s.inference_ms, s.net_res, s.threads = net.ms, net.res, net.threads
            if net.psnr is not None:
                s.psnr, s.psnr_res = net.psnr, net.res
        return changed

    def _compose(self) -> None:
        """Fill the two displayed panels. Ground truth goes to the screen as the rasterizer returned it
        (no copy); only the network picture is upscaled, and only split mode blends pixels."""
        size = self.view.display
        if self.gt is None:
            return
        mode = self.view.mode
        gt = self.gt.rgb
        if self.gt.size != size and mode not in ("side_by_side", "gt"):
            gt = upscale(gt, size, "nearest")  # flying: half size; blended modes need equal sizes
        # else the half-size flying frame goes to the screen as is: the window scales it on the GPU side
        net = err = None
        if self.net is not None:
            net = upscale(self.net.net, size, self.view.upscale)
            err = upscale(self.net.err, size, "nearest") if mode == "error" and self.net.err is not None else None
        if mode == "latent":  # a latent network's first three channels (TAESD's picture scaling); grey for pixel networks
            latent = self.net.latent if self.net is not None else None
            net, mode = (upscale(latent, size, "nearest") if latent is not None else None), "network"
        if mode == "side_by_side":
            net = np.full_like(gt, 0.2) if net is None else net  # dark grey while no network is loaded
            self.left, self.right = gt, np.ascontiguousarray(net, dtype=np.float32)
        elif mode == "split":
            self.left, self.right = compose("split", gt, net, None, self.view.split), None
        else:
            self.left, self.right = compose(mode, gt, net, err), None
        self.left = np.ascontiguousarray(self.left, dtype=np.float32)

    # -- reading --------------------------------------------------------------------------------
    def measure(self) -> Stats:
        s = self.stats
        s.fps = _rate(self._frame_times)
        recent = [t for t in self._net_times if t > time.perf_counter() - 2.0]  # a still camera ends the count
        s.net_fps = _rate(recent)
        return s

    def idle(self) -> bool:
        """Nothing queued or rendering (used by screenshots to wait for the final frame)."""
        return self.gt_view.worker.idle and self.net_view.worker.idle and self.slot.loading is None

    def close(self) -> None:
        self.gt_view.worker.close()
        self.net_view.worker.close()


def _rate(times) -> float:
    """Events per second over a list of their times."""
    times = list(times)
    return (len(times) - 1) / max(1e-6, times[-1] - times[0]) if len(times) > 1 else 0.0
