"""The one camera model: basis, pixel grid, pose sampling and validation, rays against projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renderer.camera import (
    MAX_RES, MIN_RES, Camera, camera_basis, check_res, pixel_uv, project, ray_directions, rays, sample_poses,
    view_matrix,
)
from renderer.errors import RedcubeError
from renderer.scene import Scene

# A scene whose height and pitch ranges are not 0-width, so the general formulas are exercised too.
FREE = Scene(height=(0.5, 1.5), pitch_deg=(-20.0, 20.0))


def pose(x=0.0, y=1.0, z=2.0, yaw=0.0, pitch=0.0) -> torch.Tensor:
    return torch.tensor([x, y, z, yaw, pitch], dtype=torch.float64)


@pytest.mark.parametrize("yaw,forward,right", [
    (0.0, (0, 0, -1), (1, 0, 0)),
    (math.pi / 2, (-1, 0, 0), (0, 0, -1)),
    (math.pi, (0, 0, 1), (-1, 0, 0)),
])
def test_basis_matches_design(yaw, forward, right):
    f, r, u = camera_basis(pose(yaw=yaw))
    torch.testing.assert_close(f, torch.tensor(forward, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(r, torch.tensor(right, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(u, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)


def test_basis_is_orthonormal_right_handed():
    g = torch.Generator().manual_seed(1)
    poses = sample_poses(FREE, 64, g).double()
    f, r, u = camera_basis(poses)
    for a in (f, r, u):
        torch.testing.assert_close(a.norm(dim=-1), torch.ones(64, dtype=torch.float64))
    for a, b in ((f, r), (f, u), (r, u)):
        assert (a * b).sum(-1).abs().max() < 1e-6
    # OpenGL camera frame: x right, y up, z backwards, so right x up = -forward.
    torch.testing.assert_close(torch.linalg.cross(r, u), -f)
    # Forward follows DESIGN.md: (-sin yaw cos pitch, sin pitch, -cos yaw cos pitch); pitch > 0 looks up.
    yaw, pitch = poses[:, 3], poses[:, 4]
    expect = torch.stack([-torch.sin(yaw) * torch.cos(pitch), torch.sin(pitch), -torch.cos(yaw) * torch.cos(pitch)], -1)
    torch.testing.assert_close(f, expect)


def test_pixel_uv_centres_and_orientation():
    uv = pixel_uv(2)
    expect = torch.tensor([[-0.5, 0.5], [0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])  # TL, TR, BL, BR
    torch.testing.assert_close(uv, expect)
    res = 4
    uv = pixel_uv(res).reshape(res, res, 2)  # [row, col, (u, v)]
    c = torch.tensor([-0.75, -0.25, 0.25, 0.75])
    torch.testing.assert_close(uv[0, :, 0], c)  # u grows to the right along a row
    torch.testing.assert_close(uv[:, 0, 1], -c)  # v grows upwards: the top row has v > 0
    assert torch.all(uv[:, :, 0] == uv[0:1, :, 0]) and torch.all(uv[:, :, 1] == uv[:, 0:1, 1])


@pytest.mark.parametrize("res", [16, 17, 64])
def test_pixel_uv_grid(res):
    uv = pixel_uv(res)
    assert uv.shape == (res * res, 2) and uv.dtype == torch.float32
    assert uv.abs().max() == pytest.approx(1 - 1 / res)
    torch.testing.assert_close(uv.mean(0), torch.zeros(2), atol=1e-6, rtol=0)
    # Pixel centres sit 2/res apart: (col, row) -> u = (col + 0.5) * 2/res - 1, v = 1 - (row + 0.5) * 2/res.
    idx = torch.arange(res * res)
    col, row = idx % res, idx // res
    torch.testing.assert_close(uv[:, 0], (col + 0.5) * 2 / res - 1)
    torch.testing.assert_close(uv[:, 1], 1 - (row + 0.5) * 2 / res)


def test_sample_poses_inside_bounds_and_seeded():
    for scene in (Scene(), FREE):
        p = sample_poses(scene, 2000, torch.Generator().manual_seed(3))
        assert p.shape == (2000, 5) and p.dtype == torch.float32
        b = scene.pos_bounds
        assert p[:, 0].abs().max() <= b and p[:, 2].abs().max() <= b
        assert p[:, 0].abs().max() > 0.95 * b  # fills the range, not a corner of it
        assert scene.height[0] <= p[:, 1].min() and p[:, 1].max() <= scene.height[1]
        assert 0 <= p[:, 3].min() and p[:, 3].max() < 2 * math.pi and p[:, 3].max() > 6.0
        lo, hi = (math.radians(v) for v in scene.pitch_deg)
        assert lo - 1e-6 <= p[:, 4].min() and p[:, 4].max() <= hi + 1e-6
        for row in p[:50]:
            Camera.from_pose(row).validate(scene)
    a = sample_poses(FREE, 10, torch.Generator().manual_seed(7))
    b = sample_poses(FREE, 10, torch.Generator().manual_seed(7))
    c = sample_poses(FREE, 10, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_default_scene_samples_eye_level():
    p = sample_poses(Scene(), 100, torch.Generator().manual_seed(0))
    assert torch.all(p[:, 1] == 1.0) and torch.all(p[:, 4] == 0.0)


def test_camera_pose_round_trip():
    cam = Camera(x=0.5, z=-1.25, yaw=1.0, y=1.0, pitch=0.0)
    p = cam.pose()
    assert p.shape == (5,) and p.tolist() == [0.5, 1.0, -1.25, 1.0, 0.0]
    assert Camera.from_pose(p) == cam
    assert Camera().pose().tolist() == [0.0, 1.0, 2.0, 0.0, 0.0]


def test_validate_accepts_the_boundary(scene):
    for x, z in ((2, 2), (-2, -2), (2, -2), (0, 0)):
        assert Camera(x=x, z=z, yaw=5.0).validate(scene).x == x
    assert Camera(x=0, z=0, yaw=100.0).problems(scene) == []  # yaw is periodic: any finite value is a pose


@pytest.mark.parametrize("cam,words", [
    (Camera(x=2.5, z=0.0), "position"),
    (Camera(x=0.0, z=-3.0), "position"),
    (Camera(y=1.2), "height"),
    (Camera(pitch=math.radians(5)), "pitch"),
    (Camera(x=float("nan")), "finite"),
    (Camera(yaw=float("inf")), "finite"),
])
def test_validate_rejects_out_of_bounds(scene, cam, words, one_sentence):
    assert cam.problems(scene)
    with pytest.raises(RedcubeError, match=words) as e:
        cam.validate(scene)
    one_sentence(str(e.value))


def test_validate_uses_the_scene_ranges():
    cam = Camera(y=1.4, pitch=math.radians(15))
    assert cam.problems(FREE) == []
    assert len(cam.problems(Scene())) == 2


def test_check_res():
    assert [check_res(r) for r in range(MIN_RES, MAX_RES + 1)] == list(range(16, 2049))
    assert check_res(np.int64(32)) == 32
    for bad in (15, 2049, 0, -16, 32.0, "32", None):
        with pytest.raises(RedcubeError, match="resolution"):
            check_res(bad)


def test_ray_directions_unit_and_centre():
    d = ray_directions(pose(yaw=math.pi / 2), torch.zeros(2, dtype=torch.float64), Scene())
    torch.testing.assert_close(d, torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64))
    # The top-right corner of the image plane is at (tan(fov/2), tan(fov/2), -1) in camera space.
    t = Scene().tan_half_fov
    d = ray_directions(pose(), torch.tensor([1.0, 1.0], dtype=torch.float64), Scene())
    torch.testing.assert_close(d, torch.tensor([t, t, -1.0], dtype=torch.float64) / math.sqrt(2 * t * t + 1))


def test_rays_shapes():
    poses = sample_poses(FREE, 3, torch.Generator().manual_seed(0))[:, None].expand(3, 7, 5)
    uv = torch.rand(3, 7, 2) * 2 - 1
    o, d = rays(poses, uv, FREE)
    assert o.shape == d.shape == (3, 7, 3)
    torch.testing.assert_close(o, poses[..., :3])
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(3, 7))


def test_view_matrix_maps_eye_and_forward():
    p = pose(x=0.3, y=1.2, z=-0.7, yaw=2.0, pitch=0.3)
    m = view_matrix(p)
    f, _, _ = camera_basis(p)
    eye = p[:3].numpy()
    np.testing.assert_allclose(m @ np.r_[eye, 1], [0, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(m @ np.r_[eye + 2 * f.numpy(), 1], [0, 0, -2, 1], atol=1e-12)


@pytest.mark.parametrize("res", [16, 33, 128])
def test_rays_agree_with_project(res):
    """A point along a pixel's ray projects back to that pixel's centre."""
    g = torch.Generator().manual_seed(res)
    poses = sample_poses(FREE, 20, g).double()
    uv = pixel_uv(res).double()
    for p in poses:
        idx = torch.randint(0, res * res, (30,), generator=g)
        d = ray_directions(p.expand(30, 5), uv[idx], FREE)
        t = 0.1 + 10 * torch.rand(30, 1, generator=g, dtype=torch.float64)
        pts = (p[:3] + t * d).numpy()
        px, in_front = project(pts, p, FREE, res)
        assert in_front.all()
        col, row = (idx % res).numpy(), (idx // res).numpy()
        np.testing.assert_allclose(px, np.stack([col + 0.5, row + 0.5], 1), atol=1e-6)
        # And a point behind the camera is flagged as such.
        _, front = project(p[:3].numpy()[None] - d[:1].numpy(), p, FREE, res)
        assert not front[0]


def test_look_at_helpers_agree_with_the_camera_basis():
    from renderer.camera import camera_basis, forward, orbit_poses, yaw_towards

    yaw, pitch = torch.tensor([0.3, 2.0, -1.2]), torch.tensor([0.0, 0.35, -0.35])
    poses = orbit_poses((0.0, 1.0, 0.0), yaw, pitch, 2.0)
    ahead, _, _ = camera_basis(poses)
    assert torch.allclose(ahead, forward(yaw, pitch))
    assert torch.allclose(poses[:, :3] + 2.0 * ahead, torch.tensor([0.0, 1.0, 0.0]).expand(3, 3), atol=1e-6)  # they look at it
    assert abs(yaw_towards(-1.0, 0.0) - math.pi / 2) < 1e-12  # -X is yaw pi/2


@pytest.mark.parametrize("yaw,pitch", [(0.0, 0.0), (math.pi / 2, 0.3), (4.0, -0.7), (2 * math.pi - 0.01, 0.0)])
def test_forward_and_look_at_agree_with_the_basis(yaw, pitch):
    """The scalar helpers the app uses are the tensor basis's formula, and look_at inverts forward."""
    from renderer.camera import forward, look_at

    f = forward(yaw, pitch)
    want, _, _ = camera_basis(torch.tensor([0.0, 1.0, 0.0, yaw, pitch]))
    assert torch.allclose(torch.tensor(f), want, atol=1e-6)
    eye = (0.3, 1.0, -0.2)
    y2, p2 = look_at(eye, [e + 2.5 * d for e, d in zip(eye, f)])
    assert math.isclose(math.remainder(y2 - yaw, 2 * math.pi), 0.0, abs_tol=1e-9) and math.isclose(p2, pitch, abs_tol=1e-9)
