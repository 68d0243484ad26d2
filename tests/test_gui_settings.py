"""The Worlds and Rotations tabs' choices remembered between launches: the session objects without a GUI (choices
through the real settings file into a fresh session on the same data, and remembered values that no longer fit),
then the real app under Xvfb launched twice on one settings file.

The tiny mNIF and weight-space pair are the Worlds and Rotations tests' own fixtures, imported from their modules.
"""

from __future__ import annotations

import json
import time

import pytest

from app.gui.rotations_session import RotationsSession
from app.gui.settings import Settings, load_settings, save_settings
from app.gui.worlds_session import WorldsSession
from test_gui import run_driver  # the Xvfb subprocess driver (tests/ is on sys.path)
from test_gui_rotations import tiny_weightspace  # noqa: F401  (a fixture: 3 objects x 3 rotations)
from test_gui_worlds import N_WORLDS, tiny_mnif  # noqa: F401  (a fixture: 6 training worlds)


def through_file(tmp_path, **tabs) -> Settings:
    """Settings with these tab choices, written and read back the way the app does at exit and start."""
    path = tmp_path / "settings.json"
    assert save_settings(Settings(**tabs), path) is None
    loaded, note = load_settings(path)
    assert note is None
    return loaded


def load_like_the_tab(session) -> list[tuple[str, str]]:
    """Open the tab the way the app does (a background load); the (text, level) messages it said."""
    said = []
    session.ensure_loaded(lambda text, level: said.append((text, level)))
    t0 = time.time()
    while session.loading is not None and time.time() - t0 < 120:
        time.sleep(0.02)
    return said


def test_an_old_settings_file_loads_and_a_damaged_tab_entry_is_dropped(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"checkpoint": "/x.safetensors", "video": {"fps": 12}}))  # written before the tabs were kept
    s, note = load_settings(path)
    assert note is None and s.checkpoint == "/x.safetensors" and s.video == {"fps": 12} and s.worlds == s.rotations == {}
    path.write_text(json.dumps({"worlds": [1, 2], "rotations": {"object": 2}, "camera": {"speed": 1.0}}))
    s, note = load_settings(path)
    assert s.worlds == {} and s.rotations == {"object": 2} and s.camera == {"speed": 1.0}
    assert note == "settings file: worlds [1, 2] is not a JSON object; its defaults are used."  # a line in the window


def test_worlds_choices_round_trip_into_a_fresh_session(tiny_mnif, scene, tmp_path):
    s = WorldsSession(scene)
    s.load(tiny_mnif[0])
    s.set_corner(0, 5)
    s.set_corner(3, 2)
    s.set_uv(u=0.25, v=0.75)
    s.set_res(32)
    s.set_sampling(steps=20, seed=7)
    s.set_video(frames=10, fps=24, out=str(tmp_path / "w.mp4"))
    kept = through_file(tmp_path, worlds=s.choices()).worlds
    fresh = WorldsSession(scene, default=tmp_path / "none" / "checkpoint.safetensors")
    assert fresh.restore(kept) is None
    assert fresh.choices() == kept  # a launch that never opens the tab loses nothing
    said = load_like_the_tab(fresh)
    assert [level for _, level in said] == ["info"] and str(tiny_mnif[0]) in said[0][0]  # the remembered mNIF
    assert (fresh.corners, fresh.u, fresh.v, fresh.res) == ([5, 1, 2, 2], 0.25, 0.75, 32)
    assert (fresh.steps, fresh.seed, fresh.video) == (20, 7, {"frames": 10, "fps": 24, "out": str(tmp_path / "w.mp4")})
    assert fresh.choices() == s.choices()


def test_worlds_values_that_no_longer_fit_fall_back(tiny_mnif, scene, tmp_path, one_sentence):
    fresh = WorldsSession(scene)
    assert fresh.restore({"mnif": str(tiny_mnif[0]), "corners": [0, N_WORLDS, 2, 3], "u": 7, "v": 0.5, "res": 4096,
                          "steps": 0, "seed": 3, "video": {"frames": 1, "fps": "fast", "out": "keep.mp4"}}) is None
    assert (fresh.u, fresh.v, fresh.res) == (0.0, 0.5, 64)  # u and res out of range: defaults; v kept
    assert (fresh.steps, fresh.seed, fresh.video) == (50, 3, {"frames": 48, "fps": 12, "out": "keep.mp4"})
    said = load_like_the_tab(fresh)
    assert fresh.corners == [0, 1, 2, 3] and [level for _, level in said] == ["info", "info"]
    assert "do not fit" in said[1][0]  # the one note about the drop
    gone = WorldsSession(scene, default=tiny_mnif[0])
    note = gone.restore({"mnif": str(tmp_path / "gone.safetensors"), "corners": [1, 1, 1, 1]})
    assert "gone" in note
    one_sentence(note)
    assert load_like_the_tab(gone)[0][1] == "info" and gone.mnif.path == tiny_mnif[0] and gone.corners == [0, 1, 2, 3]


def test_rotations_choices_round_trip_into_a_fresh_session(tiny_weightspace, scene, tmp_path):
    s = RotationsSession(scene, *tiny_weightspace)
    s.load()
    s.set_object(2)
    s.set_rotation(2)
    s.set_reference(1)
    s.set_yaw(-60.0)
    s.set_color_by("rotation")
    kept = through_file(tmp_path, rotations=s.choices()).rotations
    fresh = RotationsSession(scene, tmp_path / "ws" / "checkpoint.safetensors", tmp_path / "ws" / "fields")
    assert fresh.restore(kept) is None
    assert (fresh.checkpoint, fresh.data) == tuple(map(str, tiny_weightspace))  # what the path inputs start with
    assert fresh.choices() == kept  # a launch that never opens the tab loses nothing
    said = load_like_the_tab(fresh)
    assert len(said) == 1 and said[0][1] == "info" and "remembered" not in said[0][0]
    assert (fresh.object, fresh.rotation, fresh.reference, fresh.yaw_deg, fresh.color_by) == (2, 2, 1, -60.0, "rotation")
    assert fresh.choices() == s.choices()


def test_rotations_values_that_no_longer_fit_fall_back(tiny_weightspace, scene, tmp_path, one_sentence):
    ckpt, data = map(str, tiny_weightspace)
    for picked in ({"object": 9, "rotation": 1, "reference": 0}, {"object": 1, "rotation": 5, "reference": 0}):
        fresh = RotationsSession(scene)
        assert fresh.restore({"checkpoint": ckpt, "data": data, "yaw_deg": 999, "color_by": "size", **picked}) is None
        assert (fresh.yaw_deg, fresh.color_by) == (35.0, "object")
        (text, level), = load_like_the_tab(fresh)
        assert level == "info" and "the remembered object" in text  # one note, inside the load message
        assert (fresh.object, fresh.rotation, fresh.reference) == (0, 1, 0)
    gone = RotationsSession(scene)
    note = gone.restore({"checkpoint": str(tmp_path / "gone.safetensors"), "data": data, "object": 1, "rotation": 2, "reference": 0})
    assert "gone" in note and gone.checkpoint == str(gone.default[0]) and gone.choices()["checkpoint"] == gone.checkpoint
    one_sentence(note)


FIRST = """
app = App()
w, r, g = app.tabs["worlds"].session, app.tabs["rotations"].session, app.guard
w.default = Path({mnif!r})                       # the Worlds tab first: it opens this mNIF
dpg.set_value("_tabs", "_tab_worlds")
wait_for(lambda: w.mnif is not None and w.loading is None)
for call in (lambda: w.set_corner(1, 5), lambda: w.set_corner(3, 4), lambda: w.set_uv(u=0.3, v=0.6), lambda: w.set_res(32)):
    g(call)()                                    # the corner inputs', sliders' and combo's handlers
for tag, value in (("steps", 20), ("seed", 7), ("frames", 10), ("fps", 24)):   # typing in the number fields
    tag = "_input_worlds_" + tag
    call, data = dpg.get_item_callback(tag), dpg.get_item_user_data(tag)
    call(tag, value, data) if data else call(tag, value)
for dialog, path in (("_dialog_ws_checkpoint", {ckpt!r}), ("_dialog_ws_fields", {data!r})):
    app.file_dialogs[dialog](dialog, {{"file_path_name": path}})   # what choosing in the file dialogs does
dpg.set_value("_tabs", "_tab_rotations")
wait_for(lambda: r.loaded is not None and r.loading is None)
for call, value in ((r.set_object, 2), (r.set_rotation, 2), (r.set_reference, 1), (r.set_yaw, -60.0),
                    (r.set_color_by, "rotation")):
    g(call)(value)                               # the sliders' and the radio's handlers
out = {{"worlds": w.choices(), "rotations": r.choices()}}
finish(out, 3)  # the window closes: the settings are saved
"""

SECOND = """
app = App(width=1560, height=980)
w, r = app.tabs["worlds"].session, app.tabs["rotations"].session
out = {{"inputs": [dpg.get_value("_input_rot_checkpoint"), dpg.get_value("_input_rot_data")]}}
dpg.set_value("_tabs", "_tab_worlds")
wait_for(lambda: w.mnif is not None and app.tabs["worlds"].view.frame is not None and app.tabs["worlds"].view.frame.key[2] == w.version)
frames(4)
out["worlds"] = [w.corners, w.u, w.v, w.res, str(w.mnif.path)]
out["worlds_widgets"] = [[dpg.get_value(f"_input_worlds_corner_{{k}}") for k in range(4)],
                         dpg.get_value("_slider_worlds_u"), dpg.get_value("_slider_worlds_v"), dpg.get_value("_combo_worlds_res"),
                         [dpg.get_value(f"_input_worlds_{{k}}") for k in ("steps", "seed", "frames", "fps")]]
app.screenshot({worlds_shot!r})
frames(3)
dpg.set_value("_tabs", "_tab_rotations")
wait_for(lambda: r.loaded is not None and app.tabs["rotations"].view.frame is not None and app.tabs["rotations"].view.frame.key[0] == r.version)
frames(4)
out["state"] = [r.object, r.rotation, r.reference, r.yaw_deg, r.color_by]
out["widgets"] = [dpg.get_value(f"_slider_rot_{{k}}") for k in ("object", "rotation", "reference", "yaw")]
out["radio"] = dpg.get_value("_radio_rot_color")
out["messages"] = [[m.level, m.text] for m in app.messages]
x, y = dpg.get_item_rect_min("_image_left")      # the big viewport: the selected field
out["display"] = app.view.display
out["image_min"] = [int(x), int(y)]
app.screenshot({shot!r})
frames(3)
dpg.set_y_scroll("_child_tab_rotations", dpg.get_y_scroll_max("_child_tab_rotations"))   # down to the colour-by radio
frames(4)
app.screenshot({shot2!r})
finish(out, 3)
"""


def test_tab_choices_survive_a_restart_of_the_app(tiny_weightspace, tiny_mnif, tmp_path):
    import imageio.v3 as iio

    ckpt, data = map(str, tiny_weightspace)
    chosen = run_driver(FIRST.format(mnif=str(tiny_mnif[0]), ckpt=ckpt, data=data), tmp_path)
    assert chosen["rotations"] == {"yaw_deg": -60.0, "color_by": "rotation", "checkpoint": ckpt, "data": data,
                                   "object": 2, "rotation": 2, "reference": 1}
    assert chosen["worlds"] == {"u": 0.3, "v": 0.6, "res": 32, "mnif": str(tiny_mnif[0]), "corners": [0, 5, 2, 4],
                                "steps": 20, "seed": 7, "video": {"frames": 10, "fps": 24, "out": "worlds.mp4"}}
    saved = json.loads((tmp_path / "config" / "redcube" / "settings.json").read_text())  # run_gui's XDG_CONFIG_HOME
    assert {k: saved[k] for k in ("worlds", "rotations")} == chosen
    shots = {k: tmp_path / f"{k}.png" for k in ("worlds_shot", "shot", "shot2")}
    out = run_driver(SECOND.format(**{k: str(v) for k, v in shots.items()}), tmp_path)  # the same settings file
    assert out["worlds"] == [[0, 5, 2, 4], 0.3, 0.6, 32, str(tiny_mnif[0])]  # no default set: the remembered mNIF
    assert out["worlds_widgets"] == [[0, 5, 2, 4], pytest.approx(0.3), pytest.approx(0.6), "32", [20, 7, 10, 24]]
    assert out["inputs"] == [ckpt, data]  # the path inputs show the remembered pair before it loads
    assert out["state"] == [2, 2, 1, -60.0, "rotation"]
    assert out["widgets"] == [2, 2, 1, pytest.approx(-60.0)] and out["radio"] == "rotation"
    assert not [m for m in out["messages"] if m[0] != "info"], out["messages"]  # no warning, no error
    img = iio.imread(shots["shot"])[..., :3].astype("float32")
    x, y = out["image_min"]
    s = out["display"]
    assert img[y:y + s, x:x + 2 * s].std() > 5  # the restored selection's pictures are on screen
