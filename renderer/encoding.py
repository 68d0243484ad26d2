"""Inputs of pose-conditioned networks: the blog's 6-D pose input, Plücker rays, NeRF positional encoding."""

from __future__ import annotations

import math

import torch

from renderer.camera import ray_directions
from renderer.scene import Scene

INPUT_DIMS = {"pose": 6, "plucker": 6, "ray": 7}
"""Per-pixel network inputs and their sizes before positional encoding."""
INPUTS = tuple(INPUT_DIMS)


def pose_input(poses: torch.Tensor, uv: torch.Tensor, scene: Scene) -> torch.Tensor:
    """The blog's 6-D input [..., 6]: (x, z) scaled to [-1, 1], cos yaw, sin yaw, pixel u, v."""
    b = scene.pos_bounds
    yaw = poses[..., 3]
    return torch.stack([poses[..., 0] / b, poses[..., 2] / b, torch.cos(yaw), torch.sin(yaw), uv[..., 0], uv[..., 1]], dim=-1)


def plucker_input(poses: torch.Tensor, uv: torch.Tensor, scene: Scene) -> torch.Tensor:
    """The pixel's ray in Plücker coordinates [..., 6]: direction d and moment o x d (o scaled by 1/bounds).

    Unlike the 6-D pose input, two pixels that see along the same line get the same input, so the
    network need not learn perspective from data; height and pitch are included for free.
    """
    d = ray_directions(poses, uv, scene)
    o = poses[..., :3].expand_as(d) / scene.pos_bounds
    return torch.cat([d, torch.linalg.cross(o, d)], dim=-1)


def ray_input(poses: torch.Tensor, uv: torch.Tensor, scene: Scene) -> torch.Tensor:
    """Plücker coordinates plus where the camera sits on that line, o . d [..., 7].

    Plücker coordinates name a line, not a ray: a camera looking away from the cube shares lines with
    a camera behind it looking at the cube. The signed position o . d tells them apart (o = d x m + (o . d) d).
    """
    p = plucker_input(poses, uv, scene)
    o = poses[..., :3].expand_as(p[..., :3]) / scene.pos_bounds
    return torch.cat([p, (o * p[..., :3]).sum(-1, keepdim=True)], dim=-1)


def network_input(kind: str, poses: torch.Tensor, uv: torch.Tensor, scene: Scene) -> torch.Tensor:
    """The per-pixel input named by `kind` (one of INPUTS)."""
    return {"pose": pose_input, "plucker": plucker_input, "ray": ray_input}[kind](poses, uv, scene)


def positional_encoding(x: torch.Tensor, n_freqs: int = 10) -> torch.Tensor:
    """NeRF encoding [..., D * (1 + 2 n_freqs)]: the raw value, then sin and cos of 2^k pi x for k < n_freqs.

    With D = 6 and 10 frequencies this is the blog's 126-dim input.
    """
    freqs = (2.0 ** torch.arange(n_freqs, dtype=x.dtype, device=x.device)) * math.pi
    xf = x[..., None] * freqs  # [..., D, F]
    enc = torch.cat([x[..., None], torch.sin(xf), torch.cos(xf)], dim=-1)  # [..., D, 1 + 2F]
    return enc.flatten(-2)


def encoded_dim(n_inputs: int, n_freqs: int) -> int:
    return n_inputs * (1 + 2 * n_freqs)
