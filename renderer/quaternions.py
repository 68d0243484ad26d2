"""Unit quaternions q = (w, x, y, z) for rotations: checking, uniform sampling on SO(3), products and angles.

A rotation by angle a about unit axis u is q = (cos a/2, sin a/2 u); q and -q are the same rotation, so
sampled quaternions are returned with w >= 0. Points rotate as p' = R(q) p with `matrix(q)`.
"""

from __future__ import annotations

import torch

from renderer.errors import RedcubeError

UNIT_TOLERANCE = 1e-4
"""How far |q| may stray from 1 before a quaternion is refused."""


def check_quaternion(q) -> torch.Tensor:
    """q [..., 4] as a float tensor, or one sentence when it is not a finite unit quaternion."""
    q = torch.as_tensor(q, dtype=torch.float32)
    if q.ndim == 0 or q.shape[-1] != 4:
        raise RedcubeError(f"a rotation must be a quaternion (w, x, y, z) of 4 numbers, not shape {list(q.shape)}; pass 4 values per rotation.")
    if not torch.isfinite(q).all():
        raise RedcubeError("a rotation quaternion holds a value that is not a finite number; pass finite unit quaternions.")
    norm = q.norm(dim=-1)
    worst = float((norm - 1).abs().max()) if norm.numel() else 0.0
    if worst > UNIT_TOLERANCE:
        raise RedcubeError(f"a rotation quaternion has norm {float(norm.flatten()[(norm - 1).abs().flatten().argmax()]):.4g}, "
                           f"not 1; normalise it (q / |q|) before passing it.")
    return q


def random_quaternions(n: int, seed: int) -> torch.Tensor:
    """n rotations [n, 4] uniform on SO(3) (a normalised 4-D Gaussian is uniform on S^3), w >= 0, seeded."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    return canonical(q).float()


def canonical(q: torch.Tensor) -> torch.Tensor:
    """The representative with w >= 0 of each rotation q [..., 4]."""
    return torch.where(q[..., :1] < 0, -q, q)


def multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b [..., 4]: the rotation b followed by a."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz,
                        aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx,
                        aw * bz + ax * by - ay * bx + az * bw], -1)


def conjugate(q: torch.Tensor) -> torch.Tensor:
    """The inverse rotation of unit quaternions q [..., 4]."""
    return q * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=q.dtype, device=q.device)


def matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] of unit quaternions q [..., 4]."""
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle [...] in radians, in [0, pi], between the rotations a and b [..., 4] (unit or not):
    2 atan2(|v|, |w|) of the relative rotation conj(a) * b, which is exactly 0 for b = a and b = -a."""
    rel = multiply(conjugate(a), b / b.norm(dim=-1, keepdim=True)) / a.norm(dim=-1, keepdim=True)
    v = rel[..., 1:].square().sum(-1).clamp_min(1e-30).sqrt()  # clamp: a finite gradient at angle 0
    return 2 * torch.atan2(v, rel[..., 0].abs())
