"""The app's plain parts, no window: fly camera and view state, picture composition, camera paths,
settings file, and mp4 export read back with imageio (the real EGL rasterizer and ffmpeg)."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch

from app.paths import CameraPath, preset
from app.gui.settings import Settings, load_settings, save_settings
from app.gui.state import FlyCamera, ViewSettings
from app.video import export_video
from app.viewport import compose, error_map, psnr, split_image, upscale
from renderer.camera import Camera
from renderer.errors import RedcubeError
from renderer.models import build_model


# -- fly camera -----------------------------------------------------------------------------------
def test_w_moves_forward_along_the_view_direction(scene):
    fly = FlyCamera(scene, home=Camera(x=0.0, z=1.9, yaw=0.0))  # looking down -z
    z0 = fly.camera.z
    assert fly.update({"w"}, 0.05)
    assert fly.camera.z == pytest.approx(z0 - fly.speed * 0.05)
    assert fly.camera.x == pytest.approx(0.0)


def test_strafe_turn_and_drag(scene):
    fly = FlyCamera(scene, home=Camera(x=0.0, z=1.9, yaw=0.0))
    fly.update({"d"}, 0.05)
    assert fly.camera.x > 0  # right of -z is +x
    yaw0 = fly.camera.yaw
    fly.update({"q"}, 0.05)
    assert fly.camera.yaw == pytest.approx(yaw0 + fly.turn_rate * 0.05)  # Q turns left: yaw grows
    y1 = fly.camera.yaw
    fly.drag(100, 0)  # drag right turns right
    assert math.remainder(fly.camera.yaw - y1, 2 * math.pi) == pytest.approx(-100 * fly.drag_sensitivity)


def test_turn_then_forward_follows_the_camera_convention(scene):
    fly = FlyCamera(scene)
    fly.set_pose(x=0.0, z=0.0, yaw=math.pi / 2)  # looks down -x
    fly.move(0.5, 0.0)
    assert fly.camera.x == pytest.approx(-0.5) and fly.camera.z == pytest.approx(0.0, abs=1e-9)


def test_reset_and_bounds_clamp_outside_free_mode(scene):
    fly = FlyCamera(scene)
    for _ in range(100):
        fly.update({"s"}, 0.1, fast=True)  # walk backwards out of the world
    assert fly.camera.z == pytest.approx(scene.pos_bounds)
    assert fly.problems() == []
    fly.reset()
    assert (fly.camera.x, fly.camera.z, fly.camera.yaw) == (fly.home.x, fly.home.z, fly.home.yaw)


def test_free_mode_adds_height_pitch_and_reports_problems(scene):
    fly = FlyCamera(scene)
    fly.update({"space"}, 0.1)
    assert fly.camera.y == scene.height[0]  # no height outside free mode
    fly.set_free(True)
    fly.update({"space"}, 0.1)
    fly.drag(0, -50)
    assert fly.camera.y > scene.height[1] and fly.camera.pitch > 0
    assert any("height" in p for p in fly.problems()) and any("pitch" in p for p in fly.problems())
    fly.set_free(False)  # back to the training distribution
    assert fly.problems() == []


def test_flying_into_the_cube_is_allowed(scene):
    fly = FlyCamera(scene)  # home looks at the cube's centre from 2.1 m
    for _ in range(40):
        fly.update({"w"}, 0.05)  # 2 m forward: through the cube's corner
    assert abs(fly.camera.z) < 0.5 and abs(fly.camera.x) < 0.5


def test_pose_edits_are_checked(scene):
    fly = FlyCamera(scene)
    with pytest.raises(RedcubeError):
        fly.set_pose(x=float("nan"))
    with pytest.raises(RedcubeError):
        fly.set_pose(w=1.0)


def test_view_settings_validate_and_roll_back():
    v = ViewSettings()
    v.set(mode="error", net_res=128)
    assert (v.mode, v.net_res, v.version) == ("error", 128, 1)
    with pytest.raises(RedcubeError):
        v.set(net_res=1024)
    assert v.net_res == 128
    assert ViewSettings.from_dict(v.to_dict()) == v


# -- picture composition -----------------------------------------------------------------------
def test_compose_modes_and_upscale():
    gt = np.zeros((8, 8, 3), np.float32)
    net = np.ones((4, 4, 3), np.float32) * 0.5
    big = upscale(net, 8, "nearest")
    assert big.shape == (8, 8, 3) and np.all(big == 0.5)
    assert upscale(net, 8, "bilinear").shape == (8, 8, 3)
    err = error_map(big, gt)
    assert compose("side_by_side", gt, big, err).shape == (8, 16, 3)
    for mode in ("split", "network", "gt", "error"):
        assert compose(mode, gt, big, err).shape == (8, 8, 3)
    s = split_image(gt, big, 0.5)
    assert np.all(s[:, :3] == 0) and np.all(s[:, 5:] == 0.5)
    assert psnr(big, gt) == pytest.approx(-10 * math.log10(0.25))
    assert np.allclose(error_map(gt, gt), error_map(gt, gt)[0, 0])  # zero error: one colour


# -- camera paths --------------------------------------------------------------------------------
def test_orbit_looks_at_the_cube_and_loops(scene):
    path = preset("orbit", scene)
    cams = path.sample(24)
    assert len(cams) == 24 and path.loop
    for c in cams:
        to_center = np.array([-c.x, -c.z]) / math.hypot(c.x, c.z)
        forward = np.array([-math.sin(c.yaw), -math.cos(c.yaw)])
        assert forward @ to_center > 0.99
        assert c.problems(scene) == []


def test_walk_passes_through_the_cube(scene):
    cams = preset("walk", scene).sample(60)
    assert any(abs(c.x) < 0.5 and abs(c.z) < 0.5 for c in cams)
    assert all(c.problems(scene) == [] for c in cams)


def test_path_passes_through_keyframes_and_round_trips(tmp_path):
    path = CameraPath([Camera(0, 1.5, 0.0), Camera(1, 0, 1.0), Camera(0, -1.5, 3.0)])
    cams = path.sample(5)  # t = 0, 0.25, 0.5, 0.75, 1 -> keyframes at 0, 0.5, 1
    assert (cams[2].x, cams[2].z, cams[2].yaw) == pytest.approx((1, 0, 1.0))
    assert (cams[-1].x, cams[-1].z) == pytest.approx((0, -1.5), abs=1e-6)
    back = CameraPath.load(path.save(tmp_path / "p.json"))
    assert len(back.keyframes) == 3 and back.loop is False
    for a, b in zip(back.sample(5), cams):
        assert (a.x, a.z, a.yaw, a.y) == pytest.approx((b.x, b.z, b.yaw, b.y), abs=1e-5)


def test_yaw_takes_the_short_way_round():
    path = CameraPath([Camera(0, 0, 6.2), Camera(0, 0, 0.1)])
    mid = path.sample(3)[1]
    assert min(mid.yaw, 2 * math.pi - mid.yaw) < 0.2


@pytest.mark.parametrize("content", ["{not json", json.dumps({"keyframes": [{"x": 1}]}),
                                     json.dumps({"keyframes": []}), json.dumps({"frames": 3}),
                                     json.dumps({"keyframes": [{"x": "a", "z": 0, "yaw": 0}]})])
def test_broken_path_files_get_one_sentence(write_file, one_sentence, content):
    with pytest.raises(RedcubeError) as e:
        CameraPath.load(write_file("bad.json", content))
    one_sentence(str(e.value))


def test_missing_path_file(tmp_path, one_sentence):
    with pytest.raises(RedcubeError) as e:
        CameraPath.load(tmp_path / "nope.json")
    one_sentence(str(e.value))


# -- settings ------------------------------------------------------------------------------------
def test_settings_round_trip_and_damaged_file(tmp_path):
    p = tmp_path / "cfg" / "settings.json"
    assert load_settings(p) == (Settings(), None)
    s = Settings(checkpoint="/x.safetensors", view={"mode": "split"})
    assert save_settings(s, p) is None
    assert load_settings(p)[0] == s
    p.write_text("{broken")
    fresh, note = load_settings(p)
    assert fresh == Settings() and "unreadable" in note and p.with_suffix(".json.bad").exists()


# -- video ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_net(scene):
    torch.manual_seed(0)
    return build_model("posemlp", {"width": 32, "layers": 2}, scene).eval()


def _read_frames(path):
    import imageio.v3 as iio

    return np.stack(list(iio.imiter(path)))


def test_export_writes_the_expected_frame_count(tmp_path, scene, rasterizer, small_net):
    cams = preset("orbit", scene).sample(12)
    seen = []
    r = export_video(cams, tmp_path / "v.mp4", rasterizer=rasterizer, model=small_net, panel="side_by_side",
                     res=32, fps=12, progress=lambda d, t: seen.append((d, t)))
    frames = _read_frames(r.path)
    assert r.frames == 12 and frames.shape == (12, 32, 64, 3)
    assert seen[-1] == (12, 12)
    # The left half is ground truth: sky blue on top, more blue than red.
    top = frames[0, :4, :32].reshape(-1, 3).mean(0)
    assert top[2] > top[0] + 60
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed away


@pytest.mark.parametrize("panel", ["gt", "network", "error"])
def test_export_panels(tmp_path, scene, rasterizer, small_net, panel):
    cams = preset("walk", scene).sample(4)
    r = export_video(cams, tmp_path / f"{panel}.mp4", rasterizer=rasterizer, model=small_net, panel=panel, res=32, fps=4)
    assert _read_frames(r.path).shape == (4, 32, 32, 3)


def test_cancel_leaves_nothing_and_keeps_an_old_file(tmp_path, scene, rasterizer, small_net):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"old video")
    cancel = threading.Event()
    r = export_video(preset("orbit", scene).sample(40), out, rasterizer=rasterizer, model=small_net, res=32, fps=10,
                     progress=lambda d, t: d == 3 and cancel.set(), cancel=cancel)
    assert r.cancelled and r.frames == 3
    assert out.read_bytes() == b"old video"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_export_bad_arguments(tmp_path, scene, rasterizer, small_net, one_sentence):
    cams = preset("orbit", scene).sample(2)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = [
        dict(out=blocker / "sub" / "v.mp4"),  # a file where a folder should be: unwritable
        dict(out=tmp_path / "v.avi"),
        dict(out=tmp_path / "v.mp4", res=33),
        dict(out=tmp_path / "v.mp4", panel="nope"),
        dict(out=tmp_path / "v.mp4", model=None),
    ]
    for kw in bad:
        args = dict(rasterizer=rasterizer, model=small_net, res=32, fps=10) | kw
        with pytest.raises(RedcubeError) as e:
            export_video(cams, args.pop("out"), **args)
        one_sentence(str(e.value))


# -- the command line ----------------------------------------------------------------------------
def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "app.cli", "export-video", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_export_video_command(tmp_path, scene, small_net, one_sentence):
    from training.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "net.safetensors", small_net, scene)
    p = _cli(ckpt, "--preset", "walk", "--out", tmp_path / "walk.mp4", "--res", 32, "--frames", 6, "--fps", 6)
    assert p.returncode == 0, p.stderr
    assert _read_frames(tmp_path / "walk.mp4").shape == (6, 32, 64, 3)
    (tmp_path / "path.json").write_text('{"keyframes": [{"x": 0, "z": 1}]}')
    p = _cli(ckpt, "--path", tmp_path / "path.json", "--out", tmp_path / "bad.mp4")
    assert p.returncode == 2 and not (tmp_path / "bad.mp4").exists()
    one_sentence(p.stderr.strip().removeprefix("redcube: error: "))


# -- the Path & video tab's state ----------------------------------------------------------------
def test_video_session_preview_and_export(tmp_path, scene, rasterizer, small_net):
    from app.gui.video_session import VideoSession

    v = VideoSession(scene, {"seconds": 0.6, "fps": 10, "res": 32, "out": str(tmp_path / "s.mp4"), "bogus": 1, "panel": 3})
    assert v.options["panel"] == "side_by_side" and "bogus" not in v.options  # bad remembered values are dropped
    with pytest.raises(RedcubeError):
        v.export(rasterizer, small_net)  # no keyframes yet
    v.use_preset("walk")
    v.play(now=0.0)
    assert v.camera_at(0.0).z > 1.0 and v.camera_at(0.55).z < -1.0  # frame 0, then frame 5 of 6
    assert v.camera_at(1.0) is None and v.playback is None  # a non-looping preview ends
    v.export(rasterizer, small_net)
    while v.running:
        threading.Event().wait(0.05)
    text, level = v.outcome()
    assert level == "info" and text.startswith("wrote") and v.outcome() is None
    assert len(_read_frames(tmp_path / "s.mp4")) == 6
    v.options["fps"] = 30
    assert v.frames() == 18  # the path's duration is in seconds: more frames a second, the same 0.6 s


# -- the training panel's state (the process itself is exercised in test_gui.py) --------------------
def test_training_session_config_and_curves(tmp_path, one_sentence):
    from app.gui.training_session import Curves, TrainChoices, TrainingSession

    s = TrainingSession(TrainChoices(model="posemlp", res=32, data="fixed", budget=500, unit="steps"), runs_dir=tmp_path)
    c = s.config()
    assert (c.model, c.res, c.data, c.steps, c.minutes) == ("posemlp", 32, "fixed", 500, None)
    assert c.checkpoint_every_s <= 10 and str(tmp_path) in c.out_dir  # the viewport sees new weights often
    assert s.state == "idle" and s.new_files() == (None, None) and "Start" in s.status()
    s.choices.budget = 0
    with pytest.raises(RedcubeError) as e:
        s.config()
    one_sentence(str(e.value))
    curves = Curves()
    curves.add({"step": 25, "time": 3.0, "train_loss": 0.01})
    curves.add({"step": 100, "time": 9.0, "train_loss": 0.001, "test_psnr": 28.0})
    assert curves.train_step == [25, 100] and curves.train_psnr == pytest.approx([20.0, 30.0])
    assert curves.test_step == [100] and curves.test_loss == pytest.approx([10 ** -2.8])
    # Held-out PSNR is pooled over pixels when the record has it: the same average as the held-out MSE, so the two
    # curves tell one story (a per-image mean climbs with the easy sky-only views while the pooled MSE stays flat).
    curves.add({"step": 200, "test_psnr": 25.8, "test_psnr_pooled": 21.6, "test_loss": 10 ** -2.16})
    assert curves.test_psnr[-1] == 21.6 and curves.test_loss[-1] == pytest.approx(10 ** (-curves.test_psnr[-1] / 10))


def test_training_plots_fit_their_data():
    """The curves' axes hold every point with a margin (a held-out PSNR line once ran off the top of its plot)."""
    from app.gui.panel_training import fit

    lo, hi = fit([14.0, 21.6, 25.8, 31.2], log=False)
    assert lo < 14.0 and hi > 31.2 and hi - lo < 25
    lo, hi = fit([0.05, 0.002, float("nan")], log=True)
    assert lo < 0.002 < 0.05 < hi and lo > 0


def test_shipped_recipe_follows_the_default_asset(tmp_path):
    from app.gui.training_session import ASSETS, TrainChoices, TrainingSession, shipped_recipe

    if not list(ASSETS.glob("posemlp_*.json")):
        pytest.skip("no shipped posemlp checkpoint in assets/")
    recipe = shipped_recipe("posemlp", 64)
    assert "model_config" in recipe and "lr" in recipe
    shipped = TrainingSession(TrainChoices(recipe="shipped"), runs_dir=tmp_path).config()
    plain = TrainingSession(TrainChoices(recipe="defaults"), runs_dir=tmp_path).config()
    assert shipped.model_config == recipe["model_config"] and plain.model_config == {}
    assert shipped_recipe("no-such-model", 64) == {}
