"""Pixel samples: flattening frames into (pose, uv, colour) triples, the fixed dataset and the held-out poses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renderer.camera import Camera, pixel_uv, sample_poses
from training.data import PixelSet, fixed_pixels, heldout_poses

RES = 16


@pytest.fixture(scope="module")
def frames(scene, rasterizer):
    poses = sample_poses(scene, 3, torch.Generator().manual_seed(11))
    rgb, _ = rasterizer.render(poses.numpy(), RES)
    return poses, rgb


def test_from_frames_gives_every_pixel_its_frame_pose_and_uv(frames):
    poses, rgb = frames
    s = PixelSet.from_frames(poses, rgb)
    n = RES * RES
    assert len(s) == 3 * n
    assert s.poses.shape == (3 * n, 5) and s.uv.shape == (3 * n, 2) and s.target.shape == (3 * n, 3)
    uv = pixel_uv(RES)
    for f in range(3):
        block = slice(f * n, (f + 1) * n)
        assert torch.equal(s.poses[block], poses[f].expand(n, 5))
        assert torch.equal(s.uv[block], uv)
        assert torch.equal(s.target[block], torch.from_numpy(rgb[f]).reshape(n, 3))
    # Pixel i is row i // RES, column i % RES of its frame; row 0 is the top (v > 0), column 0 the left (u < 0).
    f, row, col = 2, 5, 11
    i = f * n + row * RES + col
    assert torch.equal(s.target[i], torch.from_numpy(rgb[f, row, col]))
    assert s.uv[i].tolist() == pytest.approx([(col + 0.5) * 2 / RES - 1, 1 - (row + 0.5) * 2 / RES])


def test_from_frames_takes_numpy_or_torch_and_any_channel_count():
    poses = np.arange(10, dtype=np.float32).reshape(2, 5)
    latents = np.random.default_rng(0).random((2, 16, 16, 4), dtype=np.float32)
    a = PixelSet.from_frames(poses, latents)
    b = PixelSet.from_frames(torch.from_numpy(poses), torch.from_numpy(latents))
    assert a.target.shape == (512, 4)
    assert torch.equal(a.poses, b.poses) and torch.equal(a.uv, b.uv) and torch.equal(a.target, b.target)
    assert a.poses[255].tolist() == [0, 1, 2, 3, 4] and a.poses[256].tolist() == [5, 6, 7, 8, 9]


def test_batches_are_seeded_rows_of_the_set(frames):
    s = PixelSet.from_frames(*frames)
    b1 = s.batch(64, torch.Generator().manual_seed(3))
    b2 = s.batch(64, torch.Generator().manual_seed(3))
    b3 = s.batch(64, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(b1, b2))
    assert not torch.equal(b1[2], b3[2])
    # Each sample keeps its pose, uv and colour together.
    rows = torch.cat([s.poses, s.uv, s.target], dim=1)
    for p, uv, t in zip(*b1):
        assert (rows == torch.cat([p, uv, t])).all(dim=1).any()


def test_fixed_set_has_exactly_n_seeded_samples(rasterizer, scene):
    n = 1000  # not a multiple of 16 x 16: four frames, the last one cut short
    a = fixed_pixels(rasterizer, RES, n, seed=0)
    b = fixed_pixels(rasterizer, RES, n, seed=0)
    c = fixed_pixels(rasterizer, RES, n, seed=1)
    assert len(a) == n and a.poses.shape == (n, 5) and a.uv.shape == (n, 2) and a.target.shape == (n, 3)
    assert torch.equal(a.poses, b.poses) and torch.equal(a.target, b.target)
    assert not torch.equal(a.poses, c.poses)
    frames = torch.unique(a.poses, dim=0)
    assert len(frames) == 4
    for p in frames:
        assert Camera.from_pose(p).problems(scene) == []
    # The targets are the rasterizer's pixels of those poses.
    first = a.poses[0]
    rgb, _ = rasterizer.render(first[None].numpy(), RES)
    assert torch.equal(a.target[: RES * RES], torch.from_numpy(rgb[0]).reshape(-1, 3))


def test_heldout_poses_are_seeded_in_bounds_and_apart_from_the_fixed_set(rasterizer, scene):
    h = heldout_poses(scene, 32, seed=0)
    assert h.shape == (32, 5)
    assert torch.equal(h, heldout_poses(scene, 32, seed=0))
    assert not torch.equal(h, heldout_poses(scene, 32, seed=1))
    assert torch.equal(heldout_poses(scene, 8, seed=0), h[:8])  # a smaller set is a prefix: --n picks the same poses
    for p in h:
        assert Camera.from_pose(p).problems(scene) == []
    fixed = torch.unique(fixed_pixels(rasterizer, RES, 20 * RES * RES, seed=0).poses, dim=0)
    gap = (fixed[:, None, :] - h[None, :, :]).abs().amax(dim=2).min()
    assert gap > 1e-4
