"""The desktop app under Xvfb, each run in a subprocess (dearpygui's GLX window must not share a
process with the test session's EGL rasterizer; see DESIGN.md).

A driver script opens the real app, calls its input handlers the way the key / mouse polling does,
and prints what happened as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from renderer.models import build_model
from training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, scene):
    """A small untrained posemlp: enough for a non-blank network picture."""
    torch.manual_seed(0)
    model = build_model("posemlp", {"width": 32, "layers": 2}, scene)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "net.safetensors", model, scene, step=7,
                           metrics={"test_psnr": 12.5}, train={"res": 32})


def run_gui(args: list[str], tmp_path: Path, timeout: int = 120, display: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               REDCUBE_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, *args]
    if display:
        if shutil.which("xvfb-run") is None:
            pytest.skip("needs xvfb-run (apt-get install xvfb)")
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *cmd]
    else:
        env.pop("DISPLAY", None)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


# Every driver starts with this: the imports, `frames(n)` (n steps of the app), `wait_for(cond, limit)` (steps the
# app until cond holds or limit seconds pass, and returns cond()) and `finish(out)` (closes the window, prints out as
# JSON for run_driver); the driver itself defines `app`.
PRELUDE = """
import json, time
from pathlib import Path
import dearpygui.dearpygui as dpg
from app.gui.app import App

sync = lambda: None                          # XTEST drivers: the X connection's sync, between frames

def frames(n=1):
    for _ in range(n):
        app.step()
        sync()

def wait_for(cond, limit={wait_s}):
    t0 = time.time()
    while not cond() and time.time() - t0 < limit:
        frames()
    return cond()

def finish(out, n=2):
    app.run(frames=app.frame + n)            # n more frames, then the window closes (and saves the settings)
    print(json.dumps(out))
"""

# For drivers that send real input through the X server (XTEST): the connection `d`, `click_at(x, y)` (a left click
# at window coordinates) and `press(tag)` (a click in the middle of a widget).
XTEST = """
from Xlib import X, XK, display
from Xlib.ext import xtest

d = display.Display()
sync = d.sync

def click_at(x, y):
    vx, vy = dpg.get_viewport_pos()           # window coordinates -> the X screen's
    xtest.fake_input(d, X.MotionNotify, x=int(vx + x), y=int(vy + y))
    wait_for(lambda: False, 0.3)
    xtest.fake_input(d, X.ButtonPress, 1)
    wait_for(lambda: False, 0.2)
    xtest.fake_input(d, X.ButtonRelease, 1)
    wait_for(lambda: False, 0.3)

def press(tag):
    wait_for(lambda: dpg.get_item_rect_size(tag)[0] > 0, 10)   # laid out (a tab just opened is drawn next frame)
    (x, y), (w, h) = dpg.get_item_rect_min(tag), dpg.get_item_rect_size(tag)
    click_at(x + w / 2, y + h / 2)
"""


def run_driver(code: str, tmp_path: Path, wait_s: float = 90, xtest: bool = False, timeout: int = 120) -> dict:
    """Runs PRELUDE (and XTEST) + code in the app's own process under Xvfb; the last JSON line it printed."""
    if xtest:
        pytest.importorskip("Xlib")  # python-xlib
    prelude = PRELUDE.format(wait_s=wait_s) + (XTEST if xtest else "")
    p = run_gui(["-c", prelude + textwrap.dedent(code)], tmp_path, timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    assert p.returncode == 0 and lines, p.stdout[-2000:] + p.stderr[-3000:]
    return json.loads(lines[-1])


def test_screenshot_shows_ground_truth_and_network(tmp_path, checkpoint, rasterizer):
    shot = tmp_path / "shot.png"
    p = run_gui(["-m", "app.cli", "gui", "--checkpoint", str(checkpoint), "--screenshot", str(shot),
                 "--pose", "0.4", "1.6", "0.3"], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    img = iio.imread(shot)[..., :3].astype(np.float32)
    layout = json.loads(Path(str(shot) + ".json").read_text())
    (x, y), s = layout["image_min"], layout["display"]
    assert layout["mode"] == "side_by_side" and layout["image_size"] == [2 * s, s]
    gt_half, net_half = img[y:y + s, x:x + s], img[y:y + s, x + s:x + 2 * s]
    # The left half is the rasterizer's image of the same pose (anti-aliased, as the app shows a still camera).
    want, _ = rasterizer.render(np.asarray(layout["pose"], np.float32), s, supersample=layout["gt_supersample"])
    diff = np.abs(gt_half - np.clip(want * 255 + 0.5, 0, 255).astype(np.uint8))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3
    # The right half is a network picture, not the grey placeholder.
    assert layout["net_res"] == 32 and layout["psnr"] is not None  # first shown at its training resolution
    assert net_half.std() > 2.0 and np.abs(net_half - 0.2 * 255).mean() > 10
    # The settings file remembers the checkpoint and the pose for the next launch.
    settings = json.loads((tmp_path / "config" / "redcube" / "settings.json").read_text())
    assert settings["checkpoint"] == str(checkpoint)
    assert settings["camera"]["pose"]["x"] == pytest.approx(0.4)


DRIVER = """
import math

app = App(checkpoint=Path({ckpt!r}))
frames(3)
out = {{}}
wait_for(lambda: app.slot.current is not None)
out["info"] = dict(app.model_info())
c = app.fly.camera
x0, z0, yaw = c.x, c.z, c.yaw
app.on_keys({{"w"}}, 0.1)                 # W held for 0.1 s: 0.1 m along (-sin yaw, -cos yaw)
out["forward"] = (x0 - c.x) * math.sin(yaw) + (z0 - c.z) * math.cos(yaw)
yaw0 = app.fly.camera.yaw
app.on_drag(50, 0)                         # drag to the right
out["drag_yaw"] = math.remainder(app.fly.camera.yaw - yaw0, 2 * math.pi)
app.on_key_press("3")                      # network-only view
out["mode"] = app.view.mode
app.on_key_press("r")
out["reset_z"] = app.fly.camera.z
app.on_key_press("f")
app.on_keys({{"space"}}, 0.1)
out["free_height"] = app.fly.camera.y
out["warning"] = bool(app.fly.problems())
app.on_key_press("r")                      # R: home pose and out of free mode
out["free_after_reset"] = app.fly.free
app.on_key_press("6")                      # the latent-channels view
out["mode6"] = app.view.mode
frames(5)
app.view.set(display=320)                  # a new display size: textures are made again
for mode in ("split", "error", "gt", "latent", "side_by_side"):  # latent: grey for a pixel network
    app.view.set(mode=mode)
    frames(3)
wait_for(lambda: app.viewer.gt.still and app.viewer.gt.size == 320, 20)  # flying frames are half size: the still one
out["resized"] = app.viewer.left.shape[:2] == (320, 320) and app.layout_record()["image_size"] == [640, 320]
app.open_checkpoint(Path({bad!r}))         # a damaged checkpoint: a message, the old network stays
while app.slot.loading is not None:
    app.step()
app.step()
out["error"] = [m.text for m in app.messages if m.level == "error"]
out["still_loaded"] = app.slot.current is not None and app.slot.current.path.name == "net.safetensors"
app.guard(app.tabs["video"].load_path)({bad_path!r})     # a broken path file, the way the file dialog calls it
out["path_error"] = app.messages[-1].text
app.guard(app.screenshot)("/proc/nope/x.png")  # an unwritable screenshot
out["shot_error"] = app.messages[-1].text
app.tabs["video"].use_preset("orbit")                    # the Path & video tab: export 4 frames, then to a bad place
app.tabs["video"].session.options.update(seconds=1.0, res=32, fps=4, panel="side_by_side")
for target in ({video!r}, "/proc/nope/v.mp4"):
    app.tabs["video"].session.options["out"] = target
    app.guard(app.tabs["video"].export)()
    while app.tabs["video"].session.running:
        app.step()
    app.step()
    out.setdefault("video_msgs", []).append(app.messages[-1].text)
finish(out, 3)
"""


def test_handlers_move_the_camera_and_bad_input_becomes_a_message(tmp_path, checkpoint, one_sentence):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    bad_path = tmp_path / "bad_path.json"
    bad_path.write_text("{oops")
    video = tmp_path / "v.mp4"
    out = run_driver(DRIVER.format(ckpt=str(checkpoint), bad=str(bad), bad_path=str(bad_path), video=str(video)), tmp_path)
    assert out["forward"] == pytest.approx(0.1, rel=1e-3)
    assert out["drag_yaw"] < 0  # right drag turns right
    info = out["info"]
    assert info["kind"] == "posemlp" and info["training step"] == "7" and info["training res"] == "32²"
    assert info["held-out PSNR"].startswith("12.50 dB") and info["hash-grid backend"].startswith("n/a")
    assert out["mode"] == "network"
    assert out["reset_z"] == pytest.approx(1.5)  # back at the home pose
    assert out["free_height"] > 1.0 and out["warning"]
    assert out["free_after_reset"] is False and out["mode6"] == "latent"
    assert out["resized"]
    assert len(out["error"]) == 1 and "bad.safetensors" in out["error"][0]
    one_sentence(out["error"][0])
    assert out["still_loaded"]
    assert "not valid JSON" in out["path_error"]
    assert "cannot write the screenshot" in out["shot_error"]
    assert out["video_msgs"][0].startswith("wrote") and len(list(iio.imiter(video))) == 4
    assert "cannot write the video" in out["video_msgs"][1]


def test_no_display_is_one_clear_error(tmp_path, one_sentence):
    p = run_gui(["-m", "app.cli", "gui", "--frames", "1"], tmp_path, display=False)
    assert p.returncode == 2
    msg = p.stderr.strip().removeprefix("redcube: error: ")
    assert "xvfb-run" in msg
    one_sentence(msg)


TRAIN_DRIVER = """
app = App(checkpoint=Path({ckpt!r}))
app.tabs["training"].session.runs_dir = Path({runs!r})
c = app.tabs["training"].session.choices
c.model, c.res, c.data, c.budget, c.unit = "posemlp", 32, "stream", 2, "minutes"
states = [app.tabs["training"].session.state]
wait_for(lambda: app.slot.current is not None)  # the opening network reaches the screen on a frame of the GUI thread
app.guard(app.tabs["training"].start)()                 # the Start button's handler
if {wait}:
    wait_for(lambda: app.tabs["training"].session.curves.train_step)  # running and logging
states.append(app.tabs["training"].session.state)
app.on_key_press("p")                        # P pauses
wait_for(lambda: True, 0)
states.append(app.tabs["training"].session.state)
app.guard(app.tabs["training"].session.resume)()              # the Resume button
states.append(app.tabs["training"].session.state)
if {wait}:
    wait_for(lambda: app.slot.current.path.parent.name.startswith("gui-"))  # the viewport follows the run
followed = app.slot.current.path.parent.name
app.guard(app.tabs["training"].reset)()                 # Reset stops the run, keeps its checkpoint
states.append(app.tabs["training"].session.state)
app.guard(app.tabs["training"].start)()                 # a second run whose process dies
import os, signal
os.kill(app.tabs["training"].session.proc._proc.pid, signal.SIGKILL)
wait_for(lambda: any(m.level == "error" for m in app.messages), 30)
died = [m.text for m in app.messages if m.level == "error"]
finish({{"states": states, "followed": followed, "died": died}})
"""


def test_training_panel_start_pause_resume_reset(tmp_path, checkpoint):
    out = run_driver(TRAIN_DRIVER.format(ckpt=str(checkpoint), runs=str(tmp_path / "runs"), wait=False), tmp_path)
    assert out["states"] == ["idle", "running", "paused", "running", "idle"]
    assert len(out["died"]) == 1 and "training stopped" in out["died"][0]  # a dying trainer: a message, the app lives


@pytest.mark.slow
def test_training_run_feeds_the_plots_and_the_viewport(tmp_path, checkpoint):
    out = run_driver(TRAIN_DRIVER.format(ckpt=str(checkpoint), runs=str(tmp_path / "runs"), wait=True), tmp_path)
    assert out["states"] == ["idle", "running", "paused", "running", "idle"]
    assert out["followed"].startswith("gui-")
    run = next((tmp_path / "runs").iterdir())
    assert (run / "checkpoint.safetensors").exists() and (run / "log.jsonl").exists()


XEVENTS_DRIVER = """
app = App(checkpoint=Path({ckpt!r}))
frames(5)
x0, y0 = (int(v) for v in app.layout_record()["image_min"])
xtest.fake_input(d, X.MotionNotify, x=x0 + 100, y=y0 + 100)  # keys go to the window under the pointer
frames(3)
start = [app.fly.camera.x, app.fly.camera.z]
w = d.keysym_to_keycode(XK.string_to_keysym("w"))
xtest.fake_input(d, X.KeyPress, w)
t0 = time.perf_counter()
while time.perf_counter() - t0 < 0.5:
    frames()
xtest.fake_input(d, X.KeyRelease, w)
frames(3)
after_w = [app.fly.camera.x, app.fly.camera.z]
yaw0 = app.fly.camera.yaw
xtest.fake_input(d, X.ButtonPress, 1)
frames(2)
for i in range(10):
    xtest.fake_input(d, X.MotionNotify, x=x0 + 110 + 10 * i, y=y0 + 100)
    frames()
xtest.fake_input(d, X.ButtonRelease, 1)
frames(2)
finish({{"start": start, "after_w": after_w, "yaw0": yaw0, "yaw1": app.fly.camera.yaw, "speed": app.fly.speed}}, 0)
"""


def test_real_x_key_and_mouse_events_fly_the_camera(tmp_path, checkpoint):
    """Key and button events injected into the X server (XTEST), not handler calls: the whole input path."""
    out = run_driver(XEVENTS_DRIVER.format(ckpt=str(checkpoint)), tmp_path, xtest=True)
    (x0, z0), (x1, z1) = out["start"], out["after_w"]
    step = np.hypot(x1 - x0, z1 - z0)
    # W held for about half a second at `speed` m/s moves forward: from (1.5, 1.5) at yaw 45°, toward the cube.
    assert 0.2 * out["speed"] < step < 1.0 * out["speed"]
    assert x1 < x0 and z1 < z0
    assert out["yaw1"] < out["yaw0"] - 0.05  # dragging right across the picture turns right


QUIT_DRIVER = """
import sys

app = App(checkpoint=Path({ckpt!r}))
frames(5)
click_at(20, 9)                               # File
click_at(30, 105)                             # Quit: the sixth row, under the separator (dearpygui's default font)
errors = [m.text for m in app.messages if m.level == "error"]
running = dpg.is_dearpygui_running()
rc = app.run(frames=app.frame + 300)          # returns at once once the window is asked to close
print(json.dumps({{"rc": rc, "errors": errors, "running_after_quit": running}}))
sys.exit(rc)
"""


def test_file_quit_closes_the_window_with_rc_0(tmp_path, checkpoint):
    """File > Quit clicked through the X server (XTEST): the app closes cleanly and the process exits with 0."""
    out = run_driver(QUIT_DRIVER.format(ckpt=str(checkpoint)), tmp_path, xtest=True)
    assert out == {"rc": 0, "errors": [], "running_after_quit": False}


STOP_DRIVER = """
app = App(checkpoint=Path({ckpt!r}))
tab = app.tabs["training"]
c = tab.session.choices
c.model, c.res, c.data, c.budget, c.unit = "posemlp", 32, "stream", 2, "minutes"

app.open_tab("training")
wait_for(lambda: app.slot.current is not None)
opened = str(app.slot.current.path)
press("_button_start")
wait_for(lambda: len(tab.session.curves.train_step) >= 2)
press("_button_stop")
wait_for(lambda: tab.session.state == "finished", 60)
wait_for(lambda: False, 0.5)
s = tab.session
out = {{"state": s.state, "curves": len(s.curves.train_step), "plots": dpg.is_item_shown("_group_plots"),
        "checkpoint": (s.out_dir / "checkpoint.safetensors").exists(), "folder": dpg.get_value("_text_train_folder"),
        "out_dir": str(s.out_dir), "status": dpg.get_value("_text_train_status"),
        "start_enabled": dpg.get_item_configuration("_button_start")["enabled"]}}
wait_for(lambda: s.owns(app.slot.current.path) and app.viewer.net.version == app.slot.current.version, 20)
frames(3)
out["followed"] = s.owns(app.slot.current.path)       # the viewport shows the run's network
out["steps"] = [dpg.get_value("_text_train_status"), dpg.get_value("_text_label_right")]
press("_button_reset")
wait_for(lambda: str(app.slot.current.path) == opened, 20)
out["after_reset"] = [s.state, len(s.curves.train_step), str(app.slot.current.path) == opened]
app.settings.pixels_checkpoint = None
press("_button_train_shipped")
wait_for(lambda: app.slot.current.path.name == "ngp_256.safetensors", 30)
out["shipped"] = app.slot.current.path.name
finish(out)
"""


def test_training_stop_keeps_the_curves_and_the_checkpoint(tmp_path, checkpoint):
    """Stop, Reset and Back to the shipped network, pressed through the X server: Stop ends the run with its
    checkpoint and keeps the curves; Reset clears them and puts the network from before the run back."""
    out = run_driver(STOP_DRIVER.format(ckpt=str(checkpoint)), tmp_path, xtest=True)
    assert out["state"] == "finished" and out["curves"] >= 2 and out["plots"], out
    assert out["checkpoint"] and out["out_dir"] in out["folder"] and out["start_enabled"]
    assert out["out_dir"].startswith(str(tmp_path / "home" / "runs"))  # under REDCUBE_HOME
    assert out["status"].startswith("finished | step"), out["status"]
    assert out["followed"]
    status, caption = out["steps"]  # one step number: the status line's is the one the viewport's caption shows
    assert re.search(r"step (\d+)", status).group(1) == re.search(r"step (\d+)", caption).group(1), out["steps"]
    assert out["after_reset"] == ["idle", 0, True]
    assert out["shipped"] == "ngp_256.safetensors"


TYPED_DRIVER = """
app = App(checkpoint=Path({first!r}))

app.open_tab("model")
wait_for(lambda: app.slot.current is not None)
out = {{"first": app.slot.current.path.name}}
SHIFT = d.keysym_to_keycode(XK.string_to_keysym("Shift_L"))
NAMES = {{"/": "slash", ".": "period", "-": "minus", "_": "underscore"}}

def type_text(text):
    for ch in text:
        sym = XK.string_to_keysym(NAMES.get(ch, ch))
        code = d.keysym_to_keycode(sym)
        shift = d.keycode_to_keysym(code, 0) != sym
        if shift:
            xtest.fake_input(d, X.KeyPress, SHIFT)
        xtest.fake_input(d, X.KeyPress, code)
        xtest.fake_input(d, X.KeyRelease, code)
        if shift:
            xtest.fake_input(d, X.KeyRelease, SHIFT)
        wait_for(lambda: False, 0.03)

press("_input_ckpt_path")                     # into the field; type the path with the keyboard
type_text({second!r})
wait_for(lambda: dpg.get_value("_input_ckpt_path") == {second!r}, 5)   # the last keys reach the field a frame later
out["field"] = dpg.get_value("_input_ckpt_path")
press("_input_ckpt_path_load")                # the Load button beside it
wait_for(lambda: app.slot.current.path.name != out["first"])
out["typed"] = str(app.slot.current.path)
dpg.set_value("_input_ckpt_path", "/nope/missing.safetensors")
press("_input_ckpt_path_load")
wait_for(lambda: app.messages[-1].level == "error")
out["missing"] = app.messages[-1].text
out["kept"] = str(app.slot.current.path)
dpg.set_value("_input_ckpt_path", "saved.safetensors")   # a bare name: into the outputs folder
press("_input_ckpt_path_save")
out["saved"] = app.messages[-1].text
finish(out)
"""


def test_a_typed_checkpoint_path_loads(tmp_path, checkpoint, one_sentence):
    """The Model tab's path field: a typed path and the Load button beside it open that network; a missing file is
    one sentence and the network stays; Save with a bare name writes into the outputs folder (REDCUBE_HOME)."""
    second = tmp_path / "second.safetensors"
    shutil.copy(checkpoint, second)
    shutil.copy(checkpoint.with_suffix(".json"), second.with_suffix(".json"))
    out = run_driver(TYPED_DRIVER.format(first=str(checkpoint), second=str(second)), tmp_path, 30, xtest=True)
    assert out["field"] == str(second), out  # the keys reached the field
    assert out["first"] == "net.safetensors" and out["typed"] == str(second)
    assert "missing.safetensors" in out["missing"] and out["kept"] == str(second)
    one_sentence(out["missing"])
    saved = tmp_path / "home" / "saved.safetensors"
    assert saved.exists() and str(saved) in out["saved"]


PATH_DRIVER = """
app = App(checkpoint=None)
tab = app.tabs["video"]
app.open_tab("video")
tab.use_preset("orbit")
frames(4)

def call(tag, value=None):
    fn, data = dpg.get_item_callback(tag), dpg.get_item_user_data(tag)
    fn(tag, value, data)                       # as dearpygui calls it
    frames(3)

out = {{"rows": len(dpg.get_item_children("_group_keyframes", 1)), "map_items": len(dpg.get_item_children("_draw_video_map", 2))}}
call("_input_key_1_x", 0.25)                   # typed into keyframe 2's x
out["x2"] = tab.session.path.keyframes[1].x
row = dpg.get_item_children("_group_keyframes", 1)[0]
delete = dpg.get_item_children(row, 1)[-1]     # keyframe 1's x button
call(delete)
out["after_delete"] = [len(tab.session.path.keyframes), len(dpg.get_item_children("_group_keyframes", 1))]
tab.session.options.update(seconds=4.0, fps=10)
out["frames"] = tab.session.frames()
tab.session.options.update(fps=30)
out["frames30"] = tab.session.frames()
finish(out)
"""


def test_path_tab_lists_keyframes_and_draws_the_map(tmp_path):
    """The orbit preset's 12 keyframes are listed (and editable), the map draws them, and the path lasts its
    seconds at any frame rate."""
    out = run_driver(PATH_DRIVER.format(), tmp_path)
    assert out["rows"] == 13 and out["map_items"] > 12 + 12  # 12 rows and the help line; keyframes, labels, grid
    assert out["x2"] == pytest.approx(0.25)
    assert out["after_delete"] == [11, 12]
    assert out["frames"] == 40 and out["frames30"] == 120


STALE_DRIVER = """
app = App(checkpoint=Path({ckpt!r}))
app.view.set(net_res=256, dynamic=False)      # the shipped field at 256²: tens of ms a picture here
wait_for(lambda: app.viewer.net is not None and app.viewer.net.res == 256 and app.viewer.idle())
wait_for(lambda: False, 0.5)
out = {{"still": dpg.get_value("_text_label_right")}}
app.on_keys({{"w"}}, 0.05)                      # the camera moves: the old picture stays up until the new one is done
app.step()
out["moved"] = dpg.get_value("_text_label_right")
out["stats"] = dpg.get_value("_text_stats")
wait_for(lambda: app.viewer.idle() and app.viewer.net.pose == tuple(float(v) for v in app.fly.camera.pose()))
app.step()
out["caught_up"] = dpg.get_value("_text_label_right")
finish(out)
"""


def test_an_old_network_picture_is_marked_rendering_with_its_age(tmp_path):
    out = run_driver(STALE_DRIVER.format(ckpt=str(REPO / "assets" / "ngp_256.safetensors")), tmp_path, 60)
    assert "rendering" not in out["still"]
    assert "rendering... (" in out["moved"] and " s old)" in out["moved"], out
    assert out["stats"].startswith("PSNR below is of an older picture")
    assert "rendering" not in out["caught_up"]


DOUBLE_CLICK_DRIVER = """
app = App(checkpoint=None)
frames(5)
dpg.configure_item("_dialog_load_ckpt", default_path={folder!r})
dpg.show_item("_dialog_load_ckpt")            # File > Load checkpoint...
frames(10)
vx, vy = dpg.get_viewport_pos()
w, h = app.size
x0, y0 = (w - 640) // 2, (h - 420) // 2        # the dialog (640 x 420) opens in the window's middle
xtest.fake_input(d, X.MotionNotify, x=vx + x0 + 70, y=vy + y0 + 99)   # its first row: the one file in the folder
frames(4)
for _ in range(2):
    xtest.fake_input(d, X.ButtonPress, 1)
    frames(1)
    xtest.fake_input(d, X.ButtonRelease, 1)
    frames(1)
frames(20)
out = {{"open": dpg.is_item_shown("_dialog_load_ckpt"), "field": dpg.get_value("_input_ckpt_path")}}
for _ in range(200):
    if app.slot.current is not None and app.slot.current.path.name == "picked.safetensors":
        break
    frames()
out["loaded"] = str(app.slot.current.path) if app.slot.current else None
finish(out)
"""


def test_a_double_click_in_the_file_dialog_opens_the_file(tmp_path, checkpoint):
    folder = tmp_path / "pick"
    folder.mkdir()
    shutil.copy(checkpoint, folder / "picked.safetensors")
    shutil.copy(checkpoint.with_suffix(".json"), folder / "picked.json")
    out = run_driver(DOUBLE_CLICK_DRIVER.format(folder=str(folder)), tmp_path, xtest=True)
    picked = str(folder / "picked.safetensors")
    assert out == {"open": False, "field": picked, "loaded": picked}
