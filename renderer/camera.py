"""The one camera model: a square pinhole camera posed by (x, y, z, yaw, pitch).

Poses travel as float tensors of shape [..., 5] = (x, y, z, yaw, pitch), radians, metres.
Yaw turns about +Y; forward is (-sin yaw cos pitch, sin pitch, -cos yaw cos pitch), so yaw 0 looks
down -Z and yaw pi/2 looks down -X. Pixel centres are (u, v) in [-1, 1]: u grows to the right and v
grows upwards; images are stored row-major from the top-left, as arrays [row, col].
Everything that needs camera math (rasterizer, models, trainer, app) calls this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from renderer.errors import RedcubeError
from renderer.numbers import fits_float32
from renderer.scene import Scene

POSE_DIM = 5
MIN_RES, MAX_RES = 16, 2048


@dataclass
class Camera:
    """A single camera pose; the GUI's fly camera and the CLI's --pose both build one."""

    x: float = 0.0
    z: float = 2.0
    yaw: float = 0.0
    y: float = 1.0
    pitch: float = 0.0

    def pose(self) -> torch.Tensor:
        """[5] float32 pose tensor (x, y, z, yaw, pitch)."""
        return torch.tensor([self.x, self.y, self.z, self.yaw, self.pitch], dtype=torch.float32)

    @classmethod
    def from_pose(cls, pose) -> "Camera":
        x, y, z, yaw, pitch = (float(v) for v in pose)
        return cls(x=x, z=z, yaw=yaw, y=y, pitch=pitch)

    def problems(self, scene: Scene) -> list[str]:
        """Ways this pose lies outside the scene's training distribution (empty if inside)."""
        b, eps = scene.pos_bounds, 1e-6
        out = []
        if not (-b - eps <= self.x <= b + eps and -b - eps <= self.z <= b + eps):
            out.append(f"position (x={self.x:.3g}, z={self.z:.3g}) is outside [-{b:g}, {b:g}]")
        lo, hi = scene.height
        if not lo - eps <= self.y <= hi + eps:
            out.append(f"height y={self.y:.3g} is outside [{lo:g}, {hi:g}]")
        plo, phi = (math.radians(p) for p in scene.pitch_deg)
        if not plo - eps <= self.pitch <= phi + eps:
            out.append(f"pitch {math.degrees(self.pitch):.3g} deg is outside [{scene.pitch_deg[0]:g}, {scene.pitch_deg[1]:g}] deg")
        if not all(fits_float32(v) for v in (self.x, self.y, self.z, self.yaw, self.pitch)):
            out.append("a pose value is not a finite float32 number (poses are float32 tensors)")
        return out

    def validate(self, scene: Scene) -> "Camera":
        """Raise a RedcubeError if the pose lies outside the scene's bounds."""
        problems = self.problems(scene)
        if problems:
            raise RedcubeError(f"camera pose out of bounds: {'; '.join(problems)}; choose a pose inside the scene config's bounds.")
        return self


def check_res(res: int) -> int:
    if not isinstance(res, (int, np.integer)) or not MIN_RES <= res <= MAX_RES:
        raise RedcubeError(f"resolution {res!r} is out of range; choose a whole number from {MIN_RES} to {MAX_RES}.")
    return int(res)


def sample_poses(scene: Scene, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[n, 5] poses drawn uniformly inside the scene's camera bounds."""
    r = torch.rand(n, POSE_DIM, generator=generator, dtype=torch.float64)
    b = scene.pos_bounds
    lo_y, hi_y = scene.height
    lo_p, hi_p = (math.radians(p) for p in scene.pitch_deg)
    poses = torch.stack([
        (2 * r[:, 0] - 1) * b,
        lo_y + r[:, 1] * (hi_y - lo_y),
        (2 * r[:, 2] - 1) * b,
        r[:, 3] * 2 * math.pi,
        lo_p + r[:, 4] * (hi_p - lo_p),
    ], dim=1)
    return poses.float()


def pixel_uv(res: int, device: torch.device | str | None = None) -> torch.Tensor:
    """[res*res, 2] pixel-centre coordinates (u, v) in [-1, 1], row-major from the top-left."""
    c = (torch.arange(res, dtype=torch.float32, device=device) + 0.5) * (2.0 / res) - 1.0
    v, u = torch.meshgrid(-c, c, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=1)


def forward(yaw, pitch=0.0):
    """Unit view direction of a camera: (x, y, z) floats for float angles, [..., 3] for tensors; `camera_basis` is the
    same formula on pose tensors."""
    if torch.is_tensor(yaw) or torch.is_tensor(pitch):
        yaw, pitch = torch.as_tensor(yaw), torch.as_tensor(pitch)
        cp = torch.cos(pitch)
        return torch.stack([-torch.sin(yaw) * cp, torch.sin(pitch).expand_as(cp), -torch.cos(yaw) * cp], dim=-1)
    cp = math.cos(pitch)
    return -math.sin(yaw) * cp, math.sin(pitch), -math.cos(yaw) * cp


def yaw_towards(dx, dz):
    """The yaw whose level forward (-sin yaw, -cos yaw) points along the ground direction (dx, dz) (look-at)."""
    if torch.is_tensor(dx) or torch.is_tensor(dz):
        return torch.atan2(-torch.as_tensor(dx), -torch.as_tensor(dz))
    return math.atan2(-dx, -dz)


def look_at(eye, target) -> tuple[float, float]:
    """(yaw in [0, 2 pi), pitch) of a camera at `eye` (x, y, z) looking at `target`: the inverse of `forward`."""
    dx, dy, dz = (float(t) - float(e) for e, t in zip(eye, target))
    return yaw_towards(dx, dz) % (2 * math.pi), math.atan2(dy, math.hypot(dx, dz))


def orbit_poses(target, yaw: torch.Tensor, pitch: torch.Tensor, distance: float) -> torch.Tensor:
    """Poses [N, 5] of cameras `distance` metres from `target` (x, y, z), each looking at it along yaw [N], pitch [N]."""
    position = torch.as_tensor(target, dtype=torch.float32) - distance * forward(yaw, pitch)
    return torch.cat([position, yaw[:, None], pitch[:, None]], 1).float()


def camera_basis(poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward, right and up unit vectors, each [..., 3], for poses [..., 5]."""
    yaw, pitch = poses[..., 3], poses[..., 4]
    ahead = forward(yaw, pitch)
    right = torch.stack([torch.cos(yaw), torch.zeros_like(yaw), -torch.sin(yaw)], dim=-1)
    up = torch.linalg.cross(right, ahead)
    return ahead, right, up


def ray_directions(poses: torch.Tensor, uv: torch.Tensor, scene: Scene) -> torch.Tensor:
    """Unit world-space ray directions [..., 3] through pixel centres uv [..., 2] of cameras poses [..., 5]."""
    ahead, right, up = camera_basis(poses)
    t = scene.tan_half_fov
    d = ahead + (uv[..., :1] * t) * right + (uv[..., 1:2] * t) * up
    return d / d.norm(dim=-1, keepdim=True)


def rays(poses: torch.Tensor, uv: torch.Tensor, scene: Scene) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins and unit directions, each [..., 3]."""
    return poses[..., :3].expand(*uv.shape[:-1], 3), ray_directions(poses, uv, scene)


def view_matrix(pose: torch.Tensor) -> np.ndarray:
    """4x4 world-to-camera matrix (OpenGL convention: camera looks down its -Z)."""
    f, r, u = (t.double().numpy() for t in camera_basis(pose))
    eye = pose[:3].double().numpy()
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = r, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def projection_matrix(scene: Scene) -> np.ndarray:
    """4x4 OpenGL perspective matrix for the scene's square field of view."""
    n, f, t = scene.near, scene.far, scene.tan_half_fov
    m = np.zeros((4, 4))
    m[0, 0] = m[1, 1] = 1.0 / t
    m[2, 2] = (f + n) / (n - f)
    m[2, 3] = 2 * f * n / (n - f)
    m[3, 2] = -1.0
    return m


def project(points: np.ndarray, pose: torch.Tensor, scene: Scene, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (col, row) coordinates [N, 2] of world points [N, 3], and whether each lies in front of the camera."""
    pts = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    clip = (projection_matrix(scene) @ view_matrix(pose) @ pts.T).T
    ndc = clip[:, :2] / clip[:, 3:4]
    col = (ndc[:, 0] + 1) / 2 * res
    row = (1 - ndc[:, 1]) / 2 * res
    return np.stack([col, row], axis=1), clip[:, 3] > 0
