"""Relative rotation and same-object similarity of two occupancy grids, by principal axes (no rotation is learned here).

`training.rotation_baseline` does this on a field's own occupancy; here the grids can come from anywhere: a learner's
prediction from the hash table (the grid-axes arm) or the field evaluated at probe points (the function-space arm).
  1. centroid c and principal axes E (columns) of each grid's occupancy (`rotation_baseline.principal_axes`)
  2. the candidates R = E_b S E_a^T (S a sign matrix, det R = +1) map a's object onto b's up to the axes' signs
  3. each candidate turns a's grid into b's frame (trilinear resampling); the candidate whose turned grid best matches
     b's (soft IoU of occupancy, minus the colour mismatch where both are occupied) is the rotation, its score the
     similarity used for retrieval (the same object, turned right, overlaps itself; another object does not)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from renderer.quaternions import matrix
from training.rotation_baseline import SIGNS, principal_axes, rotation_angle_deg
from training.weightspace.grid import probe_points
from training.weightspace.losses import relative_rotation


def axes(occ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 1: centroid [3] and axes [3, 3] (float64) of an occupancy grid [res, res, res] on the probe points."""
    return principal_axes(probe_points(occ.shape[0]), occ.reshape(-1).clamp_min(0))


def resample(grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Trilinear values of grid [C, res, res, res] (axes x, y, z) at box points [N, 3] -> [C, N]; zero outside the box."""
    coords = (2 * points - 1).flip(-1)  # grid_sample's last coordinate indexes the first spatial axis
    out = F.grid_sample(grid[None].float(), coords.float().view(1, -1, 1, 1, 3), align_corners=False, padding_mode="zeros")
    return out.view(grid.shape[0], -1)


def candidates(frame_a: tuple, frame_b: tuple) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Step 2: proper rotations [3, 3] E_b S E_a^T and the translation [3] that go with each (centroid to centroid)."""
    (ca, ea), (cb, eb) = frame_a, frame_b
    out = []
    for s in SIGNS:
        r = eb @ s @ ea.T
        if torch.det(r) > 0:
            out.append((r.float(), cb.float() - r.float() @ ca.float()))
    return out


def turned(grid: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """grid [C, res^3...] of object a as object b's frame sees it after x -> R x + t: read a at R^T (p - t)."""
    p = probe_points(grid.shape[-1])
    return resample(grid, (p - t) @ r).view_as(grid)


def match(a: dict, b: dict, colour_weight: float = 1.0) -> tuple[torch.Tensor, float]:
    """Step 3: (rotation [3, 3] taking a's object to b's, similarity) for grids {occ [res^3..], rgb [3, res^3..] or None,
    frame}."""
    best, best_score = torch.eye(3), -float("inf")
    for r, t in candidates(a["frame"], b["frame"]):
        occ = turned(a["occ"][None], r, t)[0]
        iou = float(torch.minimum(occ, b["occ"]).sum() / torch.maximum(occ, b["occ"]).sum().clamp_min(1e-9))
        score = iou
        if colour_weight and a.get("rgb") is not None:
            both = occ * b["occ"]
            rgb = turned(a["rgb"], r, t)
            score -= colour_weight * float(((rgb - b["rgb"]).abs().mean(0) * both).sum() / both.sum().clamp_min(1e-9))
        if score > best_score:
            best, best_score = r, score
    return best, best_score


def prepared(occ: torch.Tensor, rgb: torch.Tensor | None = None) -> dict:
    """A grid ready for `match`: occupancy [res^3..], colour [3, res^3..] or None, and its principal frame."""
    return {"occ": occ.float(), "rgb": None if rgb is None else rgb.float(), "frame": axes(occ)}


def pairwise(grids: list[dict], quaternions: torch.Tensor, objects: torch.Tensor) -> dict:
    """Every ordered pair of grids: the rotation error (deg) of each same-object pair against q_b q_a^-1, and retrieval
    top-1 (each grid's most similar other grid is of its own object). Returns the figures and the raw errors."""
    n = len(grids)
    errors, top = [], []
    for i in range(n):
        best, best_j = -float("inf"), i
        for j in range(n):
            if i == j:
                continue
            r, score = match(grids[i], grids[j])
            if score > best:
                best, best_j = score, j
            if objects[i] == objects[j]:
                errors.append(rotation_angle_deg(r, matrix(relative_rotation(quaternions[i], quaternions[j]))))
        top.append(bool(objects[best_j] == objects[i]))
    err = torch.tensor(errors)
    return {"median_rotation_error_deg": float(err.median()), "retrieval_top1": sum(top) / max(n, 1),
            "mean_rotation_error_deg": float(err.mean()), "share_within_15_deg": float((err <= 15).float().mean()),
            "pairs": len(errors), "fields": n, "errors_deg": [round(e, 2) for e in errors]}


def quaternion_of(r: torch.Tensor) -> torch.Tensor:
    """The unit quaternion [4] (w >= 0) of a rotation matrix [3, 3]. For a rotation K below is 4 q q^T, so its row with
    the largest diagonal entry is q, scaled (Shepperd's stable choice)."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = r.double().tolist()
    k = torch.tensor([[1 + r00 + r11 + r22, r21 - r12, r02 - r20, r10 - r01],
                      [r21 - r12, 1 + r00 - r11 - r22, r01 + r10, r02 + r20],
                      [r02 - r20, r01 + r10, 1 - r00 + r11 - r22, r12 + r21],
                      [r10 - r01, r02 + r20, r12 + r21, 1 - r00 - r11 + r22]], dtype=torch.float64)
    q = k[int(k.diagonal().argmax())]
    q = q / q.norm()
    return (q if q[0] >= 0 else -q).float()
