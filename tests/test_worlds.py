"""The cube-world family: the rasterizer's cube yaw, seeded splits, and the analytic field against the rasterizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renderer.camera import Camera
from renderer.errors import RedcubeError
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from renderer.volume import render_views
from renderer.worlds import (RANGES, Cubes, check_index, family_box, field_of_cubes, heldout_worlds, parameter_grid,
                             train_worlds, world_poses, world_scene)
from training.metrics import psnr

POSES = np.stack([Camera(x=0.3, z=2.0, yaw=0.2).pose().numpy(), Camera(x=-1.5, z=1.2, yaw=-0.9).pose().numpy()])


def _render(scene: Scene) -> np.ndarray:
    with Rasterizer(scene) as r:
        return r.render(POSES, 48, supersample=1)[0]


def test_cube_yaw_90_equals_0_and_30_differs():
    base = Scene(cube_center=(0.2, 1.0, -0.3), cube_size=0.8)
    img0 = _render(base)
    img90 = _render(Scene(cube_center=(0.2, 1.0, -0.3), cube_size=0.8, cube_yaw_deg=90.0))
    img30 = _render(Scene(cube_center=(0.2, 1.0, -0.3), cube_size=0.8, cube_yaw_deg=30.0))
    assert np.abs(img0 - img90).max() < 1e-3  # a square turned by 90 degrees is the same square (same face shades)
    assert (np.abs(img0 - img30).max(-1) > 0.05).mean() > 0.005


def test_bad_yaw_is_one_sentence():
    with pytest.raises(RedcubeError, match="cube_yaw_deg"):
        Scene(cube_yaw_deg=float("nan"))


def test_splits_are_seeded_disjoint_and_in_range():
    a, b = train_worlds(), heldout_worlds()
    assert len(a) >= 200 and len(b) >= 16 and a == train_worlds()
    assert not set(a) & set(b)
    for p in a + b:
        for name, (lo, hi) in RANGES.items():
            assert lo <= getattr(p, name) <= hi
    assert len(parameter_grid()) == 12 * 3 ** 5


def test_analytic_field_renders_like_the_rasterizer():
    """The exact field through the volume renderer matches the rasterizer (2x2 supersampled at 64²): the renderer is not the bottleneck."""
    scene = world_scene(train_worlds(1)[0])
    poses = world_poses(scene, 2, seed=3, margin=0.5)
    lo, hi = family_box(scene)

    def field(x):
        occ, rgb = field_of_cubes(scene, Cubes.of([scene]), x[None])
        return 400.0 * occ[0], rgb[0]

    pred = render_views(field, scene, poses, 64, lo, hi, 128, supersample=2)
    with Rasterizer(scene) as r:
        gt = torch.from_numpy(r.render(poses.numpy(), 64, supersample=2)[0])
    assert psnr(pred, gt) > 30


def test_world_poses_stay_outside_the_cube():
    scene = world_scene(train_worlds(2)[1])
    poses = world_poses(scene, 32, seed=0, margin=0.3)
    c = torch.tensor(scene.cube_center)
    assert ((poses[:, [0, 2]] - c[[0, 2]]).norm(dim=1) > scene.cube_size / 2 + 0.29).all()


def test_aimed_world_poses_see_the_cube():
    scene = world_scene(train_worlds(4)[3])
    poses = world_poses(scene, 8, seed=1, margin=0.5, aim=True)
    c = torch.tensor(scene.cube_center, dtype=poses.dtype)
    to_cube = torch.atan2(poses[:, 0] - c[0], poses[:, 2] - c[2])
    off = torch.remainder(poses[:, 3] - to_cube + math.pi, 2 * math.pi) - math.pi
    assert (off.abs() <= math.radians(15) + 1e-6).all() and (poses[:, 3] >= 0).all()
    with Rasterizer(scene) as r:  # the cube's colour fills the middle of every picture
        rgb = r.render(poses.numpy(), 32, supersample=1)[0]
    centre = torch.from_numpy(rgb[:, 14:18, 14:18]).reshape(8, -1, 3).mean(1)
    assert (centre - torch.tensor(scene.cube_color)).abs().max(1).values.lt(0.35).float().mean() >= 0.75


def test_index_out_of_range_is_one_sentence():
    with pytest.raises(RedcubeError, match="out of range; choose a whole number from 0 to 3"):
        check_index(4, 4, "corner world")


def test_render_of_a_borrowed_world_leaves_the_rasterizer_scene(rasterizer, scene, one_sentence):
    """`render(world=...)` draws another world of the family in one job and puts the shared cube back."""
    world = world_scene(train_worlds(3)[2], scene)
    before = rasterizer.render(POSES, 32, supersample=1)[0]
    borrowed = rasterizer.render(POSES, 32, supersample=1, world=world)[0]
    with Rasterizer(world) as own:
        want = own.render(POSES, 32, supersample=1)[0]
    assert np.abs(borrowed - want).max() < 1e-6 and np.abs(borrowed - before).mean() > 0.01
    assert np.array_equal(rasterizer.render(POSES, 32, supersample=1)[0], before) and rasterizer.scene == scene
    with pytest.raises(RedcubeError) as e:  # only the cube may differ
        rasterizer.render(POSES, 32, world=Scene(fov_deg=45.0))
    one_sentence(str(e.value))
