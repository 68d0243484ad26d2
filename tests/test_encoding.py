"""Network inputs: the blog's 6-D pose input, Plücker rays, and the 126-dim NeRF positional encoding."""

from __future__ import annotations

import math

import numpy as np
import torch

from renderer.camera import project, ray_directions, sample_poses
from renderer.encoding import encoded_dim, network_input, plucker_input, pose_input, positional_encoding
from renderer.scene import Scene

FREE = Scene(height=(0.6, 1.6), pitch_deg=(-20.0, 20.0))


def test_encoding_of_the_6d_input_is_126_dim(scene):
    g = torch.Generator().manual_seed(0)
    poses = sample_poses(scene, 10, g)
    uv = torch.rand(10, 2, generator=g) * 2 - 1
    x = pose_input(poses, uv, scene)
    assert x.shape == (10, 6)
    assert positional_encoding(x).shape == (10, 126) == (10, encoded_dim(6, 10))
    assert positional_encoding(x, n_freqs=4).shape == (10, encoded_dim(6, 4)) == (10, 54)
    assert positional_encoding(x, n_freqs=0).shape == (10, 6)
    assert positional_encoding(x[None, None]).shape == (1, 1, 10, 126)  # any leading shape


def test_encoding_values_by_hand():
    """Per input: the raw value first, then sin(2^k pi x) for k < F, then cos(2^k pi x)."""
    x = torch.tensor([[0.25, -0.5, 0.0, 1.0, 0.125, 0.75]], dtype=torch.float64)
    enc = positional_encoding(x, n_freqs=10).reshape(6, 21)
    torch.testing.assert_close(enc[:, 0], x[0])  # raw values first
    r = math.sqrt(0.5)
    # x = 0.25: angles pi/4, pi/2, pi, 2pi, 4pi, ...
    torch.testing.assert_close(enc[0, 1:5], torch.tensor([r, 1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(enc[0, 11:15], torch.tensor([r, 0.0, -1.0, 1.0], dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(enc[0, 15:21], torch.ones(6, dtype=torch.float64), atol=1e-9, rtol=0)
    # x = -0.5: angles -pi/2, -pi, -2pi: sin -1, 0, 0; cos 0, -1, 1.
    torch.testing.assert_close(enc[1, 1:4], torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(enc[1, 11:14], torch.tensor([0.0, -1.0, 1.0], dtype=torch.float64), atol=1e-12, rtol=0)
    # x = 0: sin 0, cos 1 at every frequency.
    torch.testing.assert_close(enc[2, 1:11], torch.zeros(10, dtype=torch.float64))
    torch.testing.assert_close(enc[2, 11:21], torch.ones(10, dtype=torch.float64))
    # A general case, frequency by frequency.
    k = torch.arange(10, dtype=torch.float64)
    torch.testing.assert_close(enc[4, 1:11], torch.sin(2.0 ** k * math.pi * 0.125))
    torch.testing.assert_close(enc[5, 11:21], torch.cos(2.0 ** k * math.pi * 0.75))


def test_pose_input(scene):
    poses = torch.tensor([[1.0, 1.0, -2.0, math.pi / 2, 0.0], [-0.5, 1.0, 0.5, math.pi, 0.0]])
    uv = torch.tensor([[0.25, -0.75], [-1.0, 1.0]])
    x = pose_input(poses, uv, scene)
    expect = torch.tensor([[0.5, -1.0, 0.0, 1.0, 0.25, -0.75], [-0.25, 0.25, -1.0, 0.0, -1.0, 1.0]])
    torch.testing.assert_close(x, expect, atol=1e-6, rtol=0)
    torch.testing.assert_close(network_input("pose", poses, uv, scene), x)


def test_plucker_input_is_direction_and_moment(scene):
    poses = torch.tensor([[1.0, 1.0, 2.0, 0.0, 0.0]])
    uv = torch.zeros(1, 2)
    x = plucker_input(poses, uv, scene)
    d = torch.tensor([0.0, 0.0, -1.0])
    o = torch.tensor([1.0, 1.0, 2.0]) / scene.pos_bounds
    torch.testing.assert_close(x[0], torch.cat([d, torch.linalg.cross(o, d)]))
    torch.testing.assert_close(network_input("plucker", poses, uv, scene), x)


def test_two_cameras_on_one_line_get_the_same_ray():
    """Camera B stands on camera A's pixel ray and looks along it: the pixel it sees there has A's Plücker input."""
    scene, res = FREE, 64
    g = torch.Generator().manual_seed(5)
    poses_a = sample_poses(scene, 16, g).double()
    uv_a = (torch.rand(16, 2, generator=g, dtype=torch.float64) * 1.6 - 0.8)
    d = ray_directions(poses_a, uv_a, scene)
    checked = 0
    for pa, ua, da in zip(poses_a, uv_a, d):
        t = 0.3 + 1.5 * torch.rand(1, generator=g, dtype=torch.float64)
        pb = pa.clone()
        pb[:3] = pa[:3] + t * da  # B sits on the same line, further along it (or behind it: t < 0 works too)
        pb[3] = pa[3] + 0.15  # and is turned a little, so the line goes through a different pixel
        px, front = project((pb[:3] + 2.0 * da).numpy()[None], pb, scene, res)
        col, row = px[0]
        if not (front[0] and 0 < col < res and 0 < row < res):
            continue
        ub = torch.tensor([col / res * 2 - 1, 1 - row / res * 2], dtype=torch.float64)
        xa = plucker_input(pa[None], ua[None], scene)[0]
        xb = plucker_input(pb[None], ub[None], scene)[0]
        torch.testing.assert_close(xa, xb, atol=1e-6, rtol=0)
        assert not torch.allclose(pose_input(pa[None], ua[None], scene), pose_input(pb[None], ub[None], scene))
        # A parallel line through a different point is a different ray.
        pc = pb.clone()
        pc[1] += 0.1
        assert (plucker_input(pc[None], ub[None], scene)[0] - xa).abs().max() > 1e-3
        checked += 1
    assert checked >= 10


def test_plucker_ignores_the_point_on_the_line(scene):
    """Moving the camera along its own optical axis keeps the centre pixel's Plücker input."""
    p = torch.tensor([[0.3, 1.0, 1.2, 0.7, 0.0]], dtype=torch.float64)
    uv = torch.zeros(1, 2, dtype=torch.float64)
    f = ray_directions(p, uv, scene)
    q = p.clone()
    q[0, :3] += 0.8 * f[0]
    torch.testing.assert_close(plucker_input(p, uv, scene), plucker_input(q, uv, scene))
    np.testing.assert_allclose(plucker_input(p, uv, scene)[0, :3].norm().item(), 1.0)
