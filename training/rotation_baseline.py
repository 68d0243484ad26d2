"""A reference for issue 7's rotation target that learns nothing: the relative rotation of two fields of one object read
off their occupancy's principal axes, the axes' sign ambiguity settled by overlap.

It answers whether the fields hold their rotation at all (the weight-space model has to find it from weights alone):
  1. each field's occupancy probability on a grid of cell centres of its box (sigmoid of the occupancy logit)
  2. its weighted centroid c and the eigenvectors E of its second-moment matrix (columns by decreasing variance)
  3. a rotation mapping view a onto view b maps a's axes onto b's up to signs: R = E_b S E_a^T for the sign matrices S
     that make R proper; the candidate under which b's occupancy best covers a's occupied cells is kept
An object whose principal moments nearly coincide has no well-defined axes, and this reference fails on it.
"""

from __future__ import annotations

import itertools

import torch

from renderer.models.object_field import ObjectField
from renderer.quaternions import matrix
from training.weightspace.grid import probe_points

GRID = 24
"""Cells per box edge in step 1."""
SIGNS = [torch.diag(torch.tensor(s, dtype=torch.float64)) for s in itertools.product((1.0, -1.0), repeat=3)]


@torch.no_grad()
def occupancy(field: ObjectField, n: int = GRID) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 1: cell centres [n^3, 3] (world) of the field's box and the occupancy probability there [n^3]."""
    lo, hi = (torch.tensor(v) for v in field.box)
    points = lo + probe_points(n) * (hi - lo)
    return points, torch.sigmoid(field.raw(points)[:, 0])


def principal_axes(points: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 2: weighted centroid [3] and eigenvectors [3, 3] (columns, by decreasing variance), in float64."""
    p, w = points.double(), weight.double()
    c = (w[:, None] * p).sum(0) / w.sum()
    d = p - c
    _, vectors = torch.linalg.eigh((w[:, None] * d).T @ d / w.sum())
    return c, vectors.flip(1)


@torch.no_grad()
def moment_rotation(a: ObjectField, b: ObjectField) -> torch.Tensor:
    """Step 3: the rotation matrix [3, 3] taking field a's object to field b's (about the centroids)."""
    pa, oa = occupancy(a)
    ca, ea = principal_axes(pa, oa)
    cb, eb = principal_axes(*occupancy(b))
    inside = pa[oa > 0.5].double()
    best, best_score = torch.eye(3, dtype=torch.float64), -1.0
    for s in SIGNS:
        r = eb @ s @ ea.T
        if torch.det(r) < 0:
            continue
        moved = (cb + (inside - ca) @ r.T).float()
        score = float(torch.sigmoid(b.raw(moved)[:, 0]).mean()) if len(inside) else 0.0
        if score > best_score:
            best, best_score = r, score
    return best.float()


def rotation_angle_deg(r_est: torch.Tensor, r_true: torch.Tensor) -> float:
    """Geodesic angle (deg) between two rotation matrices."""
    cos = ((r_true.double().T @ r_est.double()).trace() - 1) / 2
    return float(torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0))))


def rotation_error_deg(r_est: torch.Tensor, q_true: torch.Tensor) -> float:
    """Geodesic angle (deg) between a rotation matrix and a unit quaternion's rotation."""
    return rotation_angle_deg(r_est, matrix(q_true.double()))
