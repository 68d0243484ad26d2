"""An NGP field's coarse hash levels read as a voxel grid of features, and the grids a learner is trained against.

In tiny-cuda-nn's layout a level whose res^3 vertices fit its table is stored densely (`renderer.hashgrid.Level.dense`):
its table IS a voxel grid of features, no hash in between. The data set's default layout (T = 2^12, base resolution 8,
scale 1.5) stores levels 0 and 1 densely (8^3 and 12^3 vertices); level 2 (18^3 = 5,832 vertices in 4,096 entries)
shares an entry between 1.4 vertices on average, level 7 between ~630: there hashing scrambles space.

  1. probe points: the centres [res^3, 3] of a res^3 grid of cells over the box coordinates [0, 1]^3 (x-major)
  2. features: the hash encoding of the first `levels` levels, interpolated at those points exactly as the field reads
     them, from the hash table alone (no MLP): [B, levels * F, res, res, res]. This reads weights only.
  3. rotation for free: reading field a at R^T (p - c) + c (c the box centre) gives the features of the same object
     turned by R, so one field yields every rotation: its quaternion becomes R * q_a (continuous augmentation)
  4. targets for training only: the analytic object's occupancy and face colour at the probe points
     (`renderer.polycubes.polycube_field`), under the field's (augmented) rotation
  5. the function-space reading, for the reference arm: the field's own occupancy (hash grid + MLP) at the points
"""

from __future__ import annotations

import torch

from renderer.errors import RedcubeError
from renderer.hashgrid import HashGridConfig, encode, grid_levels
from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.polycubes import Polycube, polycube_field
from renderer.quaternions import matrix

CENTRE = 0.5
"""The box centre in box coordinates: objects are rotated about it."""


def probe_points(res: int) -> torch.Tensor:
    """Step 1: cell centres [res^3, 3] in [0, 1)^3, x-major (reshape to [res, res, res] indexes (x, y, z))."""
    t = (torch.arange(res) + 0.5) / res
    return torch.stack(torch.meshgrid(t, t, t, indexing="ij"), -1).reshape(-1, 3)


def dense_levels(layout: dict) -> int:
    """How many of the layout's levels, from the coarsest, are stored densely (they always come first)."""
    return sum(level["resolution"] ** 3 <= level["size"] for level in layout["levels"])


def coarse_grid(layout: dict, levels: int) -> tuple[HashGridConfig, list, int]:
    """The hash grid of the first `levels` levels (same offsets as the full grid) and how many flat values they hold."""
    settings = dict(layout["hash_grid"])
    if not 1 <= levels <= settings["n_levels"]:
        raise RedcubeError(f"the grid arm reads 1 to {settings['n_levels']} hash levels of this layout, not {levels}; fix --grid-levels.")
    settings["n_levels"] = levels
    config = HashGridConfig(**settings)
    found = grid_levels(config)
    return config, found, (found[-1].offset + found[-1].size) * config.n_features_per_level


def rotate_points(points: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Step 3: where field a must be read [B, N, 3] so the grid shows its object turned by rotations r [B, 3, 3]."""
    return ((points - CENTRE) @ r + CENTRE).clamp(0.0, 1.0 - 1e-6)  # row vectors: p R == (R^T p^T)^T


def feature_grids(flat: torch.Tensor, layout: dict, levels: int, res: int, r: torch.Tensor | None = None) -> torch.Tensor:
    """Step 2 (+3): flat field vectors [B, P] -> feature grids [B, levels * F, res, res, res], turned by r [B, 3, 3]."""
    config, found, n = coarse_grid(layout, levels)
    points = probe_points(res).expand(len(flat), -1, -1)
    if r is not None:
        points = rotate_points(points, r)
    f = config.n_features_per_level
    out = torch.stack([encode(p, v[:n].float().view(-1, f), config, found) for p, v in zip(points, flat)])  # [B, N, C]
    return out.transpose(1, 2).reshape(len(flat), -1, res, res, res)


def object_grids(objects: list[Polycube], q: torch.Tensor, res: int, box: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 4: occupancy [B, res, res, res] and colour [B, 3, res, res, res] of each object under rotation q [B, 4]."""
    lo, hi = (torch.tensor(v) for v in box)
    world = lo + probe_points(res) * (hi - lo)
    occ, rgb = zip(*(polycube_field(o, qi, world) for o, qi in zip(objects, q)))
    shape = (len(objects), res, res, res)
    return torch.stack(occ).reshape(shape), torch.stack(rgb).transpose(1, 2).reshape(len(objects), 3, *shape[1:])


@torch.no_grad()
def field_occupancy(flat: torch.Tensor, field_config: ObjectFieldConfig, res: int) -> torch.Tensor:
    """Step 5 (function space): each field's own occupancy probability [B, res, res, res] at the probe points."""
    field = ObjectField(field_config)
    lo, hi = (torch.tensor(v) for v in field.box)
    world = lo + probe_points(res) * (hi - lo)
    return torch.stack([torch.sigmoid(field.load_flat(v).raw(world)[:, 0]) for v in flat]).reshape(len(flat), res, res, res)


def random_rotations(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n uniform rotations: quaternions [n, 4] and matrices [n, 3, 3]."""
    q = torch.randn(n, 4, generator=generator)
    q = q / q.norm(dim=1, keepdim=True)
    return q, matrix(q)


def feature_magnitude(features: torch.Tensor) -> torch.Tensor:
    """A shape read from feature grids [B, C, r, r, r] with no learning: each voxel's distance from the field's median
    feature (most of the box is empty space, so the median is what "empty" looks like), scaled to [0, 1] per field."""
    empty = features.flatten(2).median(2).values[:, :, None, None, None]
    w = (features - empty).norm(dim=1)
    return w / w.flatten(1).amax(1).clamp_min(1e-12)[:, None, None, None]
