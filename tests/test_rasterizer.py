"""The EGL ground-truth rasterizer against the camera module's math.

Three independent checks tie the rasterizer to `renderer.camera`: projected cube corners land on red
pixels; an analytic ray caster built on `camera.rays` reproduces the aliased (supersample=1) frame
pixel by pixel; depth along the view axis matches by hand-computed distances.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from renderer.camera import Camera, pixel_uv, project, rays, sample_poses
from renderer.errors import RedcubeError
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene

FREE = Scene(height=(0.6, 1.6), pitch_deg=(-25.0, 25.0))


def is_red(rgb: np.ndarray) -> np.ndarray:
    """The cube's shaded red: ambient keeps r >= 0.3; green and blue stay small."""
    return (rgb[..., 0] > 0.3) & (rgb[..., 1] < 0.1) & (rgb[..., 2] < 0.1)


def cube_corners(scene: Scene) -> np.ndarray:
    c, h = np.asarray(scene.cube_center, dtype=np.float64), scene.cube_size / 2
    return np.array([c + h * np.array([sx, sy, sz]) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])


def convex_hull(pts: np.ndarray) -> np.ndarray:
    """Counter-clockwise hull (Andrew's monotone chain) of 2-D points [N, 2] in a y-up frame."""
    pts = sorted(map(tuple, pts))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def signed_distance(hull: np.ndarray, p: np.ndarray) -> float:
    """Min over edges of the distance to the edge's line: > 0 inside (then exact), <= -d means >= d outside."""
    a, b = hull, np.roll(hull, -1, axis=0)
    e = b - a
    return float(np.min((e[:, 0] * (p[1] - a[:, 1]) - e[:, 1] * (p[0] - a[:, 0])) / np.linalg.norm(e, axis=1)))


def poses_facing_cube(n: int, seed: int) -> np.ndarray:
    """Eye-level poses 1.3..2.8 m from the cube centre, turned up to 0.35 rad away from it."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        x, z = rng.uniform(-2, 2, 2)
        if not 1.3 < math.hypot(x, z) < 2.8:
            continue
        yaw = (math.atan2(x, z) + rng.uniform(-0.35, 0.35)) % (2 * math.pi)  # forward (-sin, 0, -cos) -> centre
        out.append([x, 1.0, z, yaw, 0.0])
    return np.array(out, dtype=np.float32)


def test_projected_cube_lands_on_red_pixels(rasterizer, scene):
    """Project the 8 corners and the centre; just inside the silhouette is red, just outside is not."""
    res = 96
    g = torch.Generator().manual_seed(11)
    poses = np.concatenate([poses_facing_cube(10, seed=5), sample_poses(scene, 14, g).numpy()])
    rgb, _ = rasterizer.render(poses, res)
    corners = cube_corners(scene)
    inside_checks = outside_checks = posed = 0
    for p, img in zip(poses, rgb):
        pose = torch.from_numpy(p).double()
        px, front = project(np.vstack([corners, scene.cube_center]), pose, scene, res)
        depth = (np.vstack([corners, scene.cube_center]) - p[:3]) @ np.array([-math.sin(p[3]), 0, -math.cos(p[3])])
        if not front.all() or depth.min() < 0.3:
            continue  # the camera is inside or very close to the cube: the silhouette is not the hull
        posed += 1
        centre = px[8]
        flip = np.array([1.0, -1.0])  # (col, row) -> a y-up frame, so the hull is counter-clockwise
        hull = convex_hull(px[:8] * flip)
        if 2 <= centre[0] < res - 2 and 2 <= centre[1] < res - 2:
            c, r = int(centre[0]), int(centre[1])
            assert is_red(img[r, c]), f"pose {p}: the cube centre projects to a non-red pixel {img[r, c]}"
            inside_checks += 1
        for v in hull * flip:  # hull vertices in (col, row)
            towards = (centre - v) / np.linalg.norm(centre - v)
            away = -towards
            for k in np.arange(1.0, 8.0, 0.5):  # the first pixel centre fully inside, walking in from the corner
                q = v + k * towards
                c, r = int(q[0]), int(q[1])
                pc = np.array([c + 0.5, r + 0.5])
                if signed_distance(hull, pc * flip) >= 1.0:
                    if 0 <= c < res and 0 <= r < res:
                        assert is_red(img[r, c]), f"pose {p}: pixel ({c}, {r}) inside the projected cube is {img[r, c]}"
                        inside_checks += 1
                    break
            for k in np.arange(1.0, 8.0, 0.5):  # and the first pixel centre fully outside, walking out
                q = v + k * away
                c, r = int(q[0]), int(q[1])
                pc = np.array([c + 0.5, r + 0.5])
                if signed_distance(hull, pc * flip) <= -1.0:
                    if 0 <= c < res and 0 <= r < res:
                        assert not is_red(img[r, c]), f"pose {p}: pixel ({c}, {r}) outside the projected cube is red"
                        outside_checks += 1
                    break
    assert posed >= 10 and inside_checks >= 40 and outside_checks >= 20, (posed, inside_checks, outside_checks)


def ray_cast(scene: Scene, pose: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference frame from `camera.rays` alone: RGB [res, res, 3] and depth [res, res], sampled at pixel centres."""
    p = torch.from_numpy(np.asarray(pose, dtype=np.float64))
    uv = pixel_uv(res).double()
    o, d = (t.numpy() for t in rays(p.expand(len(uv), 5), uv, scene))
    fwd = np.array([-math.sin(pose[3]) * math.cos(pose[4]), math.sin(pose[4]), -math.cos(pose[3]) * math.cos(pose[4])])
    n_pix = len(uv)
    rgb = np.tile(np.asarray(scene.sky_color), (n_pix, 1))
    t_best = np.full(n_pix, np.inf)
    # Ground: y = 0 inside [-h, h]^2.
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -o[:, 1] / d[:, 1]
    hit = o[:, None, :] + t[:, None, None] * d[:, None, :]
    hit = hit[:, 0]
    h = scene.ground_half_size
    on = (d[:, 1] < 0) & (np.abs(hit[:, 0]) <= h) & (np.abs(hit[:, 2]) <= h)
    dist = np.minimum(np.abs((hit[:, 0] + 0.5) % 1 - 0.5), np.abs((hit[:, 2] + 0.5) % 1 - 0.5))
    ground = np.where((dist < scene.grid_line_width / 2)[:, None], scene.grid_color, scene.ground_color)
    rgb[on], t_best[on] = ground[on], t[on]
    # Cube: slab test; from inside, the far wall is what the camera sees.
    lo = np.asarray(scene.cube_center) - scene.cube_size / 2
    hi = lo + scene.cube_size
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    t_in, t_out = tmin.max(1), tmax.min(1)
    inside = t_in < 0
    t_cube = np.where(inside, t_out, t_in)
    axis = np.where(inside, tmax.argmin(1), tmin.argmax(1))
    cube = (t_in <= t_out) & (t_out > 0) & (t_cube < t_best)
    light = np.asarray(scene.light_dir) / np.linalg.norm(scene.light_dir)
    lambert = np.abs(light[axis])  # |n . l| for an axis-aligned face normal
    shade = np.asarray(scene.cube_color) * (scene.ambient + (1 - scene.ambient) * lambert)[:, None]
    rgb[cube], t_best[cube] = shade[cube], t_cube[cube]
    depth = np.where(np.isfinite(t_best), t_best * (d @ fwd), scene.far)
    return rgb.reshape(res, res, 3), depth.reshape(res, res)


@pytest.mark.parametrize("which", ["default", "free"])
def test_aliased_frame_matches_ray_caster(rasterizer, which):
    """supersample=1 samples each pixel at its centre, exactly where camera.rays shoots its ray."""
    res = 64
    if which == "default":
        scene, r = rasterizer.scene, rasterizer
        poses = np.concatenate([poses_facing_cube(3, seed=2),
                                [[0, 1, 2, 0, 0], [1.9, 1, 1.9, math.pi / 2 + 0.2, 0], [0.2, 1, 0.1, 1.0, 0]]])
    else:
        scene, r = FREE, Rasterizer(FREE)
        poses = sample_poses(FREE, 6, torch.Generator().manual_seed(4)).numpy()
    try:
        rgb, depth = r.render(poses.astype(np.float32), res, supersample=1)
    finally:
        if r is not rasterizer:
            r.close()
    for p, img, dep in zip(poses, rgb, depth):
        ref_rgb, ref_depth = ray_cast(scene, p, res)
        wrong = np.abs(img - ref_rgb).max(-1) > 0.01
        assert wrong.mean() < 0.005, f"pose {p}: {wrong.sum()} of {res * res} pixels differ from the ray caster"
        ok = ~wrong
        np.testing.assert_allclose(img[ok], ref_rgb[ok], atol=2e-3)
        np.testing.assert_allclose(dep[ok], ref_depth[ok], rtol=1e-3, atol=1e-3)


def test_ground_and_grid_below_the_horizon(rasterizer, scene):
    """A level camera looking away from the cube: sky above, grey ground and dark grid lines below."""
    res = 64
    rgb, depth = rasterizer.render(np.array([1.9, 1, 1.9, math.pi / 2 + 0.2, 0], np.float32), res, supersample=1)
    top, bottom = rgb[: res // 2], rgb[res // 2:]
    np.testing.assert_allclose(top, np.broadcast_to(scene.sky_color, top.shape), atol=1e-6)
    assert np.all(depth[: res // 2] == scene.far)
    ground = np.all(np.abs(bottom - scene.ground_color) < 1e-5, -1)
    grid = np.all(np.abs(bottom - scene.grid_color) < 1e-5, -1)
    sky = np.all(np.abs(bottom - scene.sky_color) < 1e-5, -1)
    assert ground.sum() > 200 and grid.sum() >= 10
    assert np.all(ground | grid | sky)  # nothing else: the cube is behind the camera
    assert np.all(depth[res // 2:][ground | grid] < 4 * math.sqrt(2))
    # The ground plane is finite: beyond its edge, below the horizon, the sky shows through.
    assert sky[0].all() and not sky[-1].all()


def test_sky_on_top_row_and_depth_at_centre(rasterizer, scene):
    """Camera (0, 1, 2), yaw 0 looks at the cube's front face z = 0.5: 1.5 m along the view axis."""
    rgb, depth = rasterizer.render(Camera(x=0, z=2, yaw=0).pose().numpy(), 64)
    np.testing.assert_allclose(rgb[0], np.broadcast_to(scene.sky_color, (64, 3)), atol=1e-5)
    assert np.all(depth[0] == pytest.approx(scene.far))
    np.testing.assert_allclose(depth[30:34, 30:34], 1.5, atol=1e-4)
    assert is_red(rgb[30:34, 30:34]).all()
    # Front face only: its normal is +Z, so its shade is fixed by the light.
    light = np.asarray(scene.light_dir) / np.linalg.norm(scene.light_dir)
    expect = np.asarray(scene.cube_color) * (scene.ambient + (1 - scene.ambient) * abs(light[2]))
    np.testing.assert_allclose(rgb[32, 32], expect, atol=1e-4)


def test_inside_the_cube_sees_red_walls(rasterizer):
    rgb, depth = rasterizer.render(np.array([0, 1, 0, 0.3, 0], np.float32), 32)
    assert is_red(rgb).all()
    assert depth.max() < 0.5 * math.sqrt(3) * 1.01  # nearest walls, never the far plane


def test_supersampling_changes_only_edges(rasterizer):
    """Above the horizon only cube and sky: ss=4 equals ss=1 wherever the 5x5 neighbourhood is flat."""
    res = 64
    poses = poses_facing_cube(4, seed=9)
    sharp, _ = rasterizer.render(poses, res, supersample=1)
    smooth, _ = rasterizer.render(poses, res, supersample=4)
    default, _ = rasterizer.render(poses, res)
    np.testing.assert_array_equal(default, smooth)  # the scene's factor is 4
    half = res // 2
    for a, b in zip(sharp[:, :half], smooth[:, :half]):
        pad = np.pad(a, ((2, 2), (2, 2), (0, 0)), mode="edge")
        win = np.lib.stride_tricks.sliding_window_view(pad, (5, 5), axis=(0, 1))  # [h, w, 3, 5, 5]
        lo, hi = win.min(axis=(-2, -1)), win.max(axis=(-2, -1))
        flat = np.all(hi - lo < 1e-6, axis=-1)
        np.testing.assert_allclose(b[flat], a[flat], atol=1e-5)
        changed = np.abs(b - a).max(-1) > 0.02
        assert changed.any() and not (changed & flat).any()
        assert changed.mean() < 0.15
        # An anti-aliased pixel is a mix of the colours around it.
        assert np.all(b[changed] >= lo[changed] - 1e-4) and np.all(b[changed] <= hi[changed] + 1e-4)


def test_batch_equals_single_renders(rasterizer, scene):
    poses = sample_poses(scene, 5, torch.Generator().manual_seed(21)).numpy()
    rgb, depth = rasterizer.render(poses, 32)
    assert rgb.shape == (5, 32, 32, 3) and depth.shape == (5, 32, 32)
    assert rgb.dtype == depth.dtype == np.float32
    for i, p in enumerate(poses):
        one_rgb, one_depth = rasterizer.render(p, 32)
        assert one_rgb.shape == (32, 32, 3) and one_depth.shape == (32, 32)
        np.testing.assert_array_equal(one_rgb, rgb[i])
        np.testing.assert_array_equal(one_depth, depth[i])
    assert 0 <= rgb.min() and rgb.max() <= 1
    # Torch poses work too.
    np.testing.assert_array_equal(rasterizer.render(torch.from_numpy(poses), 32)[0], rgb)


def test_render_from_other_threads(rasterizer, scene):
    """The EGL context stays on its own thread; callers on any thread get the same frames."""
    poses = sample_poses(scene, 4, torch.Generator().manual_seed(2)).numpy()
    here = rasterizer.render(poses, 24)[0]
    with ThreadPoolExecutor(2) as ex:
        there = list(ex.map(lambda p: rasterizer.render(p, 24)[0], poses))
    np.testing.assert_array_equal(np.stack(there), here)


@pytest.mark.parametrize("res", [16, 17, 31, 100, 257, 2048])
def test_resolutions_accepted(rasterizer, res):
    rgb, depth = rasterizer.render(np.array([0, 1, 2, 0, 0], np.float32), res, supersample=1)
    assert rgb.shape == (res, res, 3) and depth.shape == (res, res)
    c = res // 2
    assert is_red(rgb[c, c]) and rgb[0, c, 2] > 0.9  # cube in the middle, sky at the top


@pytest.mark.parametrize("res", [15, 2049, 0, 64.0])
def test_resolutions_rejected(rasterizer, res, one_sentence):
    with pytest.raises(RedcubeError, match="resolution") as e:
        rasterizer.render(np.array([0, 1, 2, 0, 0], np.float32), res)
    one_sentence(str(e.value))
    assert rasterizer.render(np.array([0, 1, 2, 0, 0], np.float32), 16)[0].shape == (16, 16, 3)  # still usable


def test_context_manager_and_close(scene):
    with Rasterizer(scene) as r:
        assert r.render(np.array([0, 1, 2, 0, 0], np.float32), 16)[0].shape == (16, 16, 3)
    assert not r._thread.is_alive()
    r.close()  # closing twice is harmless


def test_render_after_close_raises(scene):
    r = Rasterizer(scene)
    r.close()
    with ThreadPoolExecutor(1) as ex:
        fut = ex.submit(r.render, np.array([0, 1, 2, 0, 0], np.float32), 16)
        try:
            with pytest.raises(RedcubeError, match="closed"):
                fut.result(timeout=3)
        finally:
            if not fut.done():  # a hang would keep the worker alive: unblock the test run, then fail
                r._jobs.get()[1].set_exception(RuntimeError("render after close hung"))


@pytest.mark.parametrize("ss", [0, 9, 2.5])
def test_bad_supersample_override_is_one_error(rasterizer, ss, one_sentence):
    with pytest.raises(RedcubeError, match="supersample") as e:
        rasterizer.render(Camera().pose().numpy(), 32, supersample=ss)
    one_sentence(str(e.value))
