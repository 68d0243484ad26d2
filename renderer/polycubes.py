"""Seeded asymmetric polycubes with coloured faces (issue 7): objects whose rotation is well defined.

The plain red cube looks the same under 24 rotations, so its rotation cannot be read back. A polycube here
is 4-6 unit cells joined face to face, grown cell by cell from a seeded generator, and kept only when no
rotation other than the identity maps its cells onto themselves (`symmetries`): its shape alone fixes its
rotation. Its faces are coloured by the direction they face (+x, -x, +y, -y, +z, -z: six distinct seeded
hues), which would pin the rotation down even for a symmetric shape.

A rotation mapping a polycube onto itself must map its axis-aligned face normals onto each other, so it
is one of the cube's 24 rotations about the cells' centroid: checking those 24 is exhaustive.

The object sits in the cube world's cube box (centre and edge from the scene config) and is scaled so its
bounding sphere about the centroid has radius `FILL` x half the box: every rotation fits inside the box.
`polycube_field` is its exact field under a rotation q, like `renderer.worlds.field_of_cubes`: occupancy
in {0, 1} and the unshaded colour of the nearest outer face of the cell a point lies in (zero outside).
Unshaded, so the field of the rotated object is exactly the canonical field at R(q)^T-rotated points.
"""

from __future__ import annotations

import colorsys
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from renderer.errors import RedcubeError
from renderer.quaternions import check_quaternion, matrix
from renderer.scene import Scene

MIN_CELLS, MAX_CELLS = 4, 6
FILL = 0.96
"""Bounding-sphere radius as a fraction of half the box edge."""
DIRECTIONS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
"""Face directions, in the order of a polycube's six colours."""
MAX_TRIES = 1000


def cube_rotations() -> np.ndarray:
    """The 24 rotations [24, 3, 3] (integer) of the cube: signed permutation matrices of determinant +1, identity first."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            m[range(3), perm] = signs
            if round(np.linalg.det(m)) == 1:
                out.append(m)
    out.sort(key=lambda m: not (m == np.eye(3, dtype=np.int64)).all())
    return np.stack(out)


CUBE_ROTATIONS = cube_rotations()


@dataclass(frozen=True)
class Polycube:
    """One object: cells [n, 3] (integer centres), colours [6, 3] (one per entry of DIRECTIONS), where it sits."""

    seed: int
    cells: np.ndarray
    colors: np.ndarray
    edge: float
    """Metres per cell."""
    center: tuple[float, float, float]
    """World position of the cells' centroid (the box centre)."""

    @property
    def centroid(self) -> np.ndarray:
        return self.cells.mean(0)


def symmetries(cells: np.ndarray) -> list[np.ndarray]:
    """The rotations other than the identity that map the cells [n, 3] onto themselves; an empty list means the object
    is asymmetric."""
    n = len(cells)
    centred = n * cells - cells.sum(0)  # n x (cell - centroid): exact integers
    own = {tuple(c) for c in centred}
    return [rot for rot in CUBE_ROTATIONS[1:] if {tuple(c) for c in centred @ rot.T} == own]


def grow_cells(rng: np.random.Generator, n: int) -> np.ndarray:
    """n face-connected cells [n, 3]: each new cell is a free face neighbour of a random earlier one."""
    cells = [(0, 0, 0)]
    while len(cells) < n:
        base = np.array(cells[rng.integers(len(cells))])
        new = tuple(base + DIRECTIONS[rng.integers(6)])
        if new not in cells:
            cells.append(new)
    c = np.array(cells, dtype=np.int64)
    return c - c.min(0)


def face_colors(rng: np.random.Generator) -> np.ndarray:
    """Six distinct colours [6, 3]: hues 60 degrees apart from a random start, in a random order."""
    hues = (rng.random() + np.arange(6) / 6) % 1.0
    return np.array([colorsys.hsv_to_rgb(h, 0.8, 0.9) for h in rng.permutation(hues)], dtype=np.float32)


def bounding_radius(cells: np.ndarray) -> float:
    """Largest distance (cells) from the centroid to a corner of any cell."""
    corners = (cells[:, None, :] + (np.array(list(itertools.product((-0.5, 0.5), repeat=3))))[None]).reshape(-1, 3)
    return float(np.linalg.norm(corners - cells.mean(0), axis=1).max())


def polycube(seed: int, scene: Scene | None = None) -> Polycube:
    """The asymmetric polycube of `seed` (4-6 cells, seeded colours), fitted into the scene's cube box."""
    scene = scene or Scene()
    rng = np.random.default_rng(seed)
    for _ in range(MAX_TRIES):
        cells = grow_cells(rng, int(rng.integers(MIN_CELLS, MAX_CELLS + 1)))
        if not symmetries(cells):
            break
    else:  # unreachable in practice: most 5- and 6-cell polycubes are asymmetric
        raise RedcubeError(f"no asymmetric polycube was found for seed {seed} in {MAX_TRIES} tries; pick another seed.")
    edge = FILL * scene.cube_size / 2 / bounding_radius(cells)
    return Polycube(seed, cells, face_colors(rng), edge, tuple(float(v) for v in scene.cube_center))


def to_cells(obj: Polycube, q: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """World points [N, 3] of the object rotated by q -> its canonical cell coordinates [N, 3] (cell c spans c +- 0.5)."""
    rot = matrix(check_quaternion(q)).to(points.dtype)
    center = torch.tensor(obj.center, dtype=points.dtype)
    return (points - center) @ rot / obj.edge + torch.tensor(obj.centroid, dtype=points.dtype)  # R^T (p - c) per row


def to_world(obj: Polycube, q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse of `to_cells`: canonical cell coordinates [N, 3] -> world points [N, 3] of the object rotated by q."""
    rot = matrix(check_quaternion(q)).to(u.dtype)
    return ((u - torch.tensor(obj.centroid, dtype=u.dtype)) * obj.edge) @ rot.T + torch.tensor(obj.center, dtype=u.dtype)


def outer_faces(obj: Polycube) -> tuple[np.ndarray, np.ndarray]:
    """The faces on the object's surface: their cells [F, 3] and direction indices [F] into DIRECTIONS."""
    own = {tuple(c) for c in obj.cells}
    pairs = [(c, k) for c in obj.cells for k in range(6) if tuple(c + DIRECTIONS[k]) not in own]
    return np.array([c for c, _ in pairs]), np.array([k for _, k in pairs])


def polycube_field(obj: Polycube, q, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact field of `obj` rotated by unit quaternion q [4] about its centre: occupancy [N] in {0, 1} and colour
    [N, 3] at world points [N, 3] (the nearest outer face's colour inside, zero outside)."""
    u = to_cells(obj, torch.as_tensor(q), points)
    cell = torch.floor(u + 0.5).long()
    lo, hi = obj.cells.min(0), obj.cells.max(0)
    shape = tuple(int(v) for v in hi - lo + 1)
    occupied = torch.zeros(shape, dtype=torch.bool)
    cells = torch.from_numpy(obj.cells - lo)
    occupied[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    rel = cell - torch.from_numpy(lo)
    occ = _occupied_at(occupied, rel)
    # nearest outer face of the point's cell: 0.5 - (signed offset along the face's direction)
    outer = ~_occupied_at(occupied, rel[:, None, :] + torch.from_numpy(DIRECTIONS))  # [N, 6]
    offset = (u - cell.to(u.dtype)) @ torch.from_numpy(DIRECTIONS).to(u.dtype).T  # [N, 6]
    dist = torch.where(outer, 0.5 - offset, torch.full_like(offset, float("inf")))
    rgb = torch.from_numpy(obj.colors).to(points.dtype)[dist.argmin(-1)]
    return occ.to(points.dtype), torch.where(occ[:, None], rgb, torch.zeros_like(rgb))


def _occupied_at(occupied: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Whether grid cells [..., 3] are occupied (a cell outside the grid is not)."""
    shape = torch.tensor(occupied.shape)
    valid = ((cells >= 0) & (cells < shape)).all(-1)
    cells = cells.clamp_min(0).minimum(shape - 1)
    return occupied[cells[..., 0], cells[..., 1], cells[..., 2]] & valid
