"""The Rotations tab's pictures, without GUI calls, made on a `LatestWorker` thread: the selected NGP field's volume
render, the reference field's (the "canonical" one), the selected field with the predicted and with the true relative
rotation undone, and its hash features per level on a plane through the box centre.

All four renders use one camera orbiting the box centre (the tab's yaw, a fixed pitch) so they compare pixel for pixel;
PSNR of each undone render against the reference render says how well the rotation lines the two fields up.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from app.gui.rotations_session import make_field, undo_rotation
from app.gui.tab_parts import TabView
from renderer.camera import forward
from renderer.scene import Scene
from training.metrics import psnr
from training.ngp_fields import render_field
from training.rotation_baseline import moment_rotation, rotation_error_deg

RES = 88
"""Render resolution; the big viewport scales the pictures up (nearest neighbour keeps the pixels visible)."""
QUICK_RES, SETTLE_S = 48, 0.4
"""While the selection or the orbit changes (and 0.4 s after): a set of pictures in ~1 s instead of ~3 s (2-core CPU,
1 thread)."""
SAMPLES = 128
"""Volume-rendering samples per ray (the field evaluation's count)."""
PITCH = -0.35
"""Camera pitch (rad): looking slightly down at the object, as `eval_poses`' first view."""
DISTANCE = 1.1
"""Camera distance (m) from the box centre: the whole 1 m box fits the 60 degree field of view."""
SLICE_RES = 64
SLICE_Z = 0.5
"""The feature slices' plane: z = 0.5 in box coordinates (through the box centre), x right, y up."""


def orbit_pose(scene: Scene, yaw_deg: float, pitch: float = PITCH, distance: float = DISTANCE) -> torch.Tensor:
    """[1, 5] camera (x, y, z, yaw, pitch) looking at the box centre from `distance`, as `eval_poses` builds them."""
    yaw = math.radians(yaw_deg)
    position = torch.tensor(scene.cube_center) - distance * torch.tensor(forward(yaw, pitch))
    return torch.cat([position, torch.tensor([yaw, pitch])])[None].float()


@torch.no_grad()
def feature_slices(f, res: int = SLICE_RES, z: float = SLICE_Z) -> np.ndarray:
    """[L, res, res, 3] in [0, 1]: each level's interpolated hash features on the plane z (box coordinates), row 0 at
    the top (y = 1). Each feature is stretched over its own 1st-99th percentile on the plane (features of different
    levels differ in scale by orders of magnitude); two features show as (f0, mean, f1), one as grey, more as the first 3."""
    u = (torch.arange(res) + 0.5) / res
    y, x = torch.meshgrid(1 - u, u, indexing="ij")
    pts = torch.stack([x, y, torch.full_like(x, z)], -1).reshape(-1, 3)
    grid = f.encoding.config
    feats = f.encoding(pts).reshape(res, res, grid.n_levels, grid.n_features_per_level).permute(2, 0, 1, 3)
    lo = feats.flatten(1, 2).quantile(0.01, dim=1)[:, None, None]
    hi = feats.flatten(1, 2).quantile(0.99, dim=1)[:, None, None]
    v = ((feats - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    if v.shape[-1] == 1:
        rgb = v.expand(-1, -1, -1, 3)
    elif v.shape[-1] == 2:
        rgb = torch.stack([v[..., 0], v.mean(-1), v[..., 1]], -1)
    else:
        rgb = v[..., :3]
    return np.ascontiguousarray(rgb.numpy().astype(np.float32))


def render_four(snap: dict, scene: Scene, res: int = RES, samples: int = SAMPLES) -> dict:
    """The selected field, the reference field, and the selected one undone by the predicted and by the true rotation:
    images [res, res, 3] each, plus each undone render's PSNR against the reference render and the time taken."""
    t0 = time.perf_counter()
    sel, ref = make_field(snap["config"], snap["params"], scene), make_field(snap["config"], snap["ref_params"], scene)
    pose, box = orbit_pose(scene, snap["yaw_deg"]), sel.box
    center = scene.cube_center
    draw = lambda fn: render_field(fn, box, pose, res, samples, 1, scene)[0]
    out = {"selected": draw(sel.field), "reference": draw(ref.field),
           "undo_pred": draw(undo_rotation(sel.field, snap["pred"], center, box)),
           "undo_true": draw(undo_rotation(sel.field, snap["true"], center, box))}
    psnrs = {k: psnr(out[k], out["reference"]) for k in ("undo_pred", "undo_true")}
    images = {k: v.numpy() for k, v in out.items()}
    moment = rotation_error_deg(moment_rotation(ref, sel), snap["true"])  # what the fields hold, with no learning
    return {"images": images, "psnr": psnrs, "slices": feature_slices(sel), "moment_error_deg": moment,
            "ms": (time.perf_counter() - t0) * 1000}


@dataclass
class RotationsFrame:
    key: tuple
    """(session version, loaded pair) it was rendered for."""
    res: int
    done_at: float
    """time.perf_counter() when it was finished."""
    images: dict[str, np.ndarray]
    psnr: dict[str, float]
    slices: np.ndarray
    moment_error_deg: float
    """Error of `training.rotation_baseline` (principal axes, no learning) on the same pair."""
    ms: float


class RotationsView(TabView):
    """Newest finished set of pictures for the newest selection."""

    def __init__(self, scene: Scene):
        self.scene = scene
        super().__init__("redcube-rotations", QUICK_RES, SETTLE_S)

    def render(self, what, res: int, snap: dict) -> RotationsFrame:
        r = render_four(snap, self.scene, res)
        return RotationsFrame(what, res, time.perf_counter(), **r)
