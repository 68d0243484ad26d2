"""A family of cube worlds (issue 6): the base scene with the cube's hue, size, height, yaw and offset varied.

Every world is a plain `Scene`; the family only says which scenes exist. Ranges (stated once, here):

  hue      [0, 1)        cube albedo = HSV(hue, 0.85, 0.90), so every hue from red round to red
  size     [0.6, 1.1] m  edge length
  height   [0.75, 1.25] m  y of the cube's centre (its bottom stays >= 0.2 m above the plane)
  yaw      [0, 90) deg   turn about the vertical axis (a cube turned by 90 deg is the same cube)
  offset   [-0.6, 0.6]^2 m  (x, z) of the cube's centre

Splits are seeded: `train_worlds()` and `heldout_worlds()` never share a world (different generators).
`field_of_cubes` is the family's exact field: occupancy and colour at 3-D points of many worlds at once, matching the
rasterizer's shading (grid lines, Lambert + ambient, no view dependence), used to supervise the mNIF.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from renderer.camera import POSE_DIM, sample_poses, yaw_towards
from renderer.errors import RedcubeError
from renderer.scene import Scene

TRAIN_SEED, HELDOUT_SEED = 2024, 7777
N_TRAIN, N_HELDOUT = 256, 32
GROUND_DEPTH = 0.25
"""The plane is a solid slab y in [-GROUND_DEPTH, 0] for volume rendering (cameras never see below it)."""


@dataclass(frozen=True)
class WorldParams:
    """One world of the family; `RANGES` bounds each field."""

    hue: float = 0.0
    size: float = 1.0
    height: float = 1.0
    yaw_deg: float = 0.0
    x: float = 0.0
    z: float = 0.0

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, f.name) for f in fields(self)], dtype=np.float64)


RANGES: dict[str, tuple[float, float]] = {
    "hue": (0.0, 1.0), "size": (0.6, 1.1), "height": (0.75, 1.25), "yaw_deg": (0.0, 90.0), "x": (-0.6, 0.6), "z": (-0.6, 0.6),
}


def hue_color(hue: float) -> tuple[float, float, float]:
    return tuple(float(v) for v in colorsys.hsv_to_rgb(hue % 1.0, 0.85, 0.90))


def world_scene(p: WorldParams, base: Scene | None = None) -> Scene:
    """The Scene of world p: the base scene with the cube replaced."""
    base = base or Scene()
    d = base.to_dict()
    d.update(cube_center=(p.x, p.height, p.z), cube_size=p.size, cube_color=hue_color(p.hue), cube_yaw_deg=p.yaw_deg)
    return Scene.from_dict(d)


def sample_params(n: int, seed: int) -> list[WorldParams]:
    """n worlds drawn uniformly from RANGES with a private generator."""
    rng = np.random.default_rng(seed)
    u = rng.random((n, len(RANGES)))
    lo = np.array([r[0] for r in RANGES.values()])
    hi = np.array([r[1] for r in RANGES.values()])
    return [WorldParams(*map(float, row)) for row in lo + u * (hi - lo)]


def train_worlds(n: int = N_TRAIN) -> list[WorldParams]:
    return sample_params(n, TRAIN_SEED)


def heldout_worlds(n: int = N_HELDOUT) -> list[WorldParams]:
    return sample_params(n, HELDOUT_SEED)


GRID_PER_AXIS = {"hue": 12, "size": 3, "height": 3, "yaw_deg": 3, "x": 3, "z": 3}


def parameter_grid() -> list[WorldParams]:
    """A grid over the family (cell centres on each axis, GRID_PER_AXIS: 12 hues x 3 sizes x 3 heights x 3 yaws x
    3 x 3 offsets)."""
    axes = [lo + (np.arange(GRID_PER_AXIS[k]) + 0.5) / GRID_PER_AXIS[k] * (hi - lo) for k, (lo, hi) in RANGES.items()]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(RANGES))
    return [WorldParams(*map(float, row)) for row in mesh]


def family_box(base: Scene | None = None) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The box (low, high) holding the ground slab and every cube of the family: the volume renderer's bounds."""
    base = base or Scene()
    g = base.ground_half_size
    top = RANGES["height"][1] + RANGES["size"][1] / 2 + 0.05
    return (-g - 0.05, -GROUND_DEPTH, -g - 0.05), (g + 0.05, top, g + 0.05)


@dataclass
class Cubes:
    """The cubes of B worlds as tensors: centre [B, 3], size [B], yaw [B] (radians), colour [B, 3]."""

    center: torch.Tensor
    size: torch.Tensor
    yaw: torch.Tensor
    color: torch.Tensor

    @classmethod
    def of(cls, scenes: list[Scene]) -> "Cubes":
        t = lambda v: torch.tensor(v, dtype=torch.float32)
        return cls(t([s.cube_center for s in scenes]), t([s.cube_size for s in scenes]),
                   t([math.radians(s.cube_yaw_deg) for s in scenes]), t([s.cube_color for s in scenes]))

    def local(self, points: torch.Tensor) -> torch.Tensor:
        """Points [B, N, 3] in each cube's own frame (centre at 0, axes along its faces)."""
        c, s = torch.cos(self.yaw)[:, None], torch.sin(self.yaw)[:, None]
        q = points - self.center[:, None, :]
        # inverse of the rasterizer's yaw_matrix: x_local = c x - s z, z_local = s x + c z
        return torch.stack([c * q[..., 0] - s * q[..., 2], q[..., 1], s * q[..., 0] + c * q[..., 2]], dim=-1)

    def face_normals(self) -> torch.Tensor:
        """World-space normals [B, 3, 3] of the face pairs along the cube's local x, y and z axes."""
        c, s = torch.cos(self.yaw), torch.sin(self.yaw)
        z, o = torch.zeros_like(c), torch.ones_like(c)
        return torch.stack([torch.stack([c, z, -s], -1), torch.stack([z, o, z], -1), torch.stack([s, z, c], -1)], 1)

    def to_world(self, local: torch.Tensor) -> torch.Tensor:
        """Inverse of `local`: cube-frame points [B, N, 3] -> world points."""
        c, s = torch.cos(self.yaw)[:, None], torch.sin(self.yaw)[:, None]
        x, y, z = local.unbind(-1)
        return torch.stack([c * x + s * z, y, -s * x + c * z], -1) + self.center[:, None, :]


def field_of_cubes(base: Scene, cubes: Cubes, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact field of B worlds (the base scene with `cubes`): occupancy [B, N] in {0, 1} and colour [B, N, 3]
    at world points [B, N, 3].

    Inside a cube the colour is the shaded colour of the nearest face (the face a ray entering there crossed);
    inside the ground slab it is the grid pattern of the plane above; outside both, the sky colour.
    """
    dev, dt = points.device, points.dtype
    vec = lambda v: torch.tensor(v, dtype=dt, device=dev)
    local = cubes.local(points)
    h = cubes.size[:, None, None] / 2
    in_cube = (local.abs() <= h).all(-1)
    g = base.ground_half_size
    y = points[..., 1]
    in_ground = (y <= 0) & (y >= -GROUND_DEPTH) & (points[..., 0].abs() <= g) & (points[..., 2].abs() <= g)
    # cube: nearest face -> its world normal -> Lambert + ambient, as the rasterizer's shader
    axis = (h - local.abs()).argmin(-1)  # [B, N]
    light = vec(base.light_dir)
    lambert = (cubes.face_normals() @ (light / light.norm())).abs()  # [B, 3]
    shade = base.ambient + (1 - base.ambient) * lambert.gather(1, axis)
    cube_rgb = cubes.color[:, None, :] * shade[..., None]
    d = (torch.frac(points[..., [0, 2]] + 0.5 + 1e3) - 0.5).abs()  # + 1e3 keeps frac's argument positive (GLSL fract)
    on_line = d.min(-1).values < base.grid_line_width / 2
    ground_rgb = torch.where(on_line[..., None], vec(base.grid_color), vec(base.ground_color))
    rgb = torch.where(in_cube[..., None], cube_rgb, torch.where(in_ground[..., None], ground_rgb, vec(base.sky_color)))
    return (in_cube | in_ground).to(dt), rgb


def inside_cube(scene: Scene, points: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Whether points [N, 3] lie within `margin` metres of the scene's cube (in its own frame)."""
    local = Cubes.of([scene]).local(points[None].float())[0]
    return (local.abs() <= scene.cube_size / 2 + margin).all(-1)


AIM_JITTER_DEG = 15.0  # an aimed camera's yaw is off the cube's direction by at most this (the view is 60° wide)


def world_poses(scene: Scene, n: int, seed: int, margin: float = 0.2, aim: bool = False,
                jitter_deg: float = AIM_JITTER_DEG) -> torch.Tensor:
    """[n, 5] camera poses inside the scene's bounds and at least `margin` metres outside the cube (seeded).
    `aim`: each camera turns towards the cube, within ±jitter_deg (uniform yaws mostly look at sky and ground,
    which any world's field renders alike: an evaluation on them says little about the cube)."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(0, POSE_DIM)
    while len(out) < n:
        p = sample_poses(scene, 4 * n, gen)
        out = torch.cat([out, p[~inside_cube(scene, p[:, :3], margin)]])
    out = out[:n]
    if aim:
        cx, _, cz = scene.cube_center
        jitter = (torch.rand(n, generator=gen, dtype=out.dtype) * 2 - 1) * math.radians(jitter_deg)
        yaw = yaw_towards(cx - out[:, 0], cz - out[:, 2]) + jitter  # each camera looks at the cube
        out[:, 3] = yaw % (2 * math.pi)
    return out


def check_index(index: int, n: int, what: str = "world") -> int:
    """A valid index into a list of n worlds, or one sentence."""
    if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise RedcubeError(f"{what} index {index!r} is out of range; choose a whole number from 0 to {n - 1}.")
    return int(index)
