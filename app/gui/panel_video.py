"""The Path & video tab: keyframes, presets, path files, preview playback and mp4 export with progress."""

from __future__ import annotations

import math
import time

import dearpygui.dearpygui as dpg

from app.gui.settings import output_path
from app.gui.tab import Tab
from app.gui.topdown import draw_map
from app.gui.widgets import GREY, HEAD, export_controls, follow, path_field, path_input, show_export
from app.video import PANELS
from app.gui.video_session import VideoSession
from renderer.camera import Camera
from renderer.errors import RedcubeError

MAP = 200  # the top-down map's edge (px)


class VideoTab(Tab):
    name, label, settings_key = "video", "Path & video", "video"

    def __init__(self, app):
        super().__init__(app)
        self.session = VideoSession(app.scene, app.settings.video)
        self._played: int | None = None  # the fly camera's version after the preview last moved it
        self._mapped = None  # (path, camera) the map shows
        self._listed = None  # the keyframes the list shows

    def add_keyframe(self) -> None:
        self.app.message(self.session.add_keyframe(self.app.fly.camera))

    def use_preset(self, name: str) -> None:
        self.app.message(self.session.use_preset(name))

    def load_path(self, file) -> None:
        for text, level in self.session.load(file):
            self.app.message(text, level)

    def save_path(self, file) -> None:
        self.app.message(self.session.save(file))

    def export(self) -> None:
        loaded = self.app.slot.snapshot()
        self.session.export(self.app.rasterizer, loaded.model if loaded else None)

    def keys(self) -> dict:
        return {"k": self.add_keyframe}

    def tick(self, now: float) -> bool:
        """Preview playback moves the fly camera; the user flying it stops the preview."""
        fly, v = self.app.fly, self.session
        if v.playback is not None and self._played is not None and fly.version != self._played:
            v.stop()
        cam = v.camera_at(now)
        if cam is not None:
            fly.set_camera(cam)
            self._played = fly.version
        done = v.outcome()
        if done:
            self.app.message(*done)
        return v.playback is not None

    def restore(self, remembered: dict) -> None:
        """Nothing left to take: the session was made from them."""

    def choices(self) -> dict:
        return dict(self.session.options)

    def close(self) -> None:
        self.session.cancel()

    def set_keyframe(self, i: int, **values: float) -> None:
        """Edit keyframe i: 'here' (the camera's pose), or x, z, yaw (radians) typed in its row."""
        keys = self.session.path.keyframes
        if not 0 <= i < len(keys):
            raise RedcubeError(f"there is no keyframe {i + 1}; the path has {len(keys)}.")
        c = keys[i] if values else Camera(**vars(self.app.fly.camera))
        for name, v in values.items():
            if not math.isfinite(v):
                raise RedcubeError(f"keyframe {i + 1}'s {name} must be a finite number, got {v!r}.")
            setattr(c, name, v % (2 * math.pi) if name == "yaw" else v)
        keys[i] = c

    def delete_keyframe(self, i: int) -> None:
        del self.session.path.keyframes[i]

    def go_to(self, i: int) -> None:
        self.session.stop()
        self.app.fly.set_camera(self.session.path.keyframes[i])

    def build(self) -> None:
        app, g, v = self.app, self.app.guard, self.session.options
        dpg.add_text("A camera path is a few keyframes (poses) the camera glides through; play it here or export it "
                     "as an mp4 of the ground truth beside the network. Add the camera as a keyframe with K.",
                     color=GREY, wrap=0)
        dpg.add_text("Camera path", color=HEAD)
        dpg.add_text("", tag="_text_path")
        with dpg.group(horizontal=True):
            dpg.add_button(label="Add keyframe (K)", callback=g(self.add_keyframe))
            dpg.add_button(label="Clear", callback=g(self.session.clear))
            dpg.add_checkbox(label="loop", tag="_check_loop",
                             callback=lambda s, a: setattr(self.session.path, "loop", a))
        with dpg.group(horizontal=True):
            dpg.add_button(label="Preset: orbit", callback=g(lambda: self.use_preset("orbit")))
            dpg.add_button(label="Preset: walk", callback=g(lambda: self.use_preset("walk")))
        with dpg.group(horizontal=True):
            dpg.add_drawlist(MAP, MAP, tag="_draw_video_map")
            dpg.add_text("map, seen from above:\n\ngreen: the camera\nand what it sees\n\nred: the cube\n\n"
                         "blue: the path\nyellow: keyframes", color=GREY)
        dpg.add_group(tag="_group_keyframes")
        dpg.add_text("Path file (JSON)", color=GREY)
        path_field(app, "_input_path_file", [("Load", self.load_path), ("Save", self.save_path)],
                   "_dialog_path_load", hint="e.g. paths/orbit.json")
        with dpg.group(horizontal=True):
            dpg.add_button(label="Play preview", callback=g(lambda: self.session.play(time.perf_counter())))
            dpg.add_input_float(label="seconds", tag="_input_video_seconds", width=70, step=0, format="%.1f",
                                default_value=float(v["seconds"]), callback=lambda s, a: v.update(seconds=a))
            app.text_inputs.append("_input_video_seconds")
            dpg.add_button(label="Stop", callback=g(self.session.stop))
        dpg.add_separator()
        dpg.add_text("Export mp4", color=HEAD)
        labels = {label: key for key, label in PANELS.items()}
        dpg.add_combo(list(labels), label="panel", tag="_combo_video_panel", width=160,
                      default_value=PANELS.get(v["panel"], "Side by side"),
                      callback=lambda s, a: v.update(panel=labels[a]))
        for key, label in (("res", "resolution"), ("fps", "fps")):
            tag = f"_input_video_{key}"
            dpg.add_input_int(label=label, tag=tag, width=160, step=0, default_value=int(v[key]),
                              callback=lambda s, a, u: v.update({u: a}), user_data=key)
            app.text_inputs.append(tag)
        path_input(app, "_input_video_out", str(v["out"]), lambda path: v.update(out=path), "_dialog_video_out", 260)
        dpg.add_text("", tag="_text_video_frames", color=GREY, wrap=0)
        dpg.add_text("", tag="_text_video_out", color=GREY, wrap=0)
        export_controls(app, "video", self.session, self.export, -1)

    def refresh(self) -> None:
        if not self.visible():
            return
        video, p = self.session, self.session.path
        dpg.set_value("_text_path", f"{len(p.keyframes)} keyframes" + (" (loop)" if p.loop else "") +
                      ("  - playing" if video.playback else ""))
        dpg.set_value("_check_loop", p.loop)
        o = video.options
        follow({f"_input_video_{key}": kind(o[key])  # changes not made by typing
                for key, kind in (("res", int), ("fps", int), ("seconds", float), ("out", str))})
        try:
            dpg.set_value("_text_video_frames",
                          f"{video.frames()} frames: the path lasts {o['seconds']:g} s at {o['fps']} fps")
        except RedcubeError as e:
            dpg.set_value("_text_video_frames", str(e))
        dpg.set_value("_combo_video_panel", PANELS.get(o["panel"], "Side by side"))
        dpg.set_value("_text_video_out", f"writes {output_path(o['out'])}")
        show_export("video", video)
        cam = self.app.fly.camera
        keys = tuple(tuple(vars(c).values()) for c in p.keyframes)
        if self._listed != (keys, p.loop):
            self._listed = (keys, p.loop)
            _keyframe_rows(self)
        mapped = (keys, p.loop, tuple(vars(cam).values()))
        if self._mapped != mapped:
            self._mapped = mapped
            path = p.sample(64 if p.loop else 65) if len(p.keyframes) > 1 else []
            draw_map("_draw_video_map", MAP, self.app.scene, cam, path + path[:1] if p.loop else path, p.keyframes)


def _keyframe_rows(tab: VideoTab) -> None:
    """One row per keyframe: its number, x, z and yaw (typed), and go / here / delete."""
    g, keys = tab.app.guard, tab.session.path.keyframes
    dpg.delete_item("_group_keyframes", children_only=True)
    tab.app.text_inputs[:] = [t for t in tab.app.text_inputs if not str(t).startswith("_input_key_")]
    for i, c in enumerate(keys):
        with dpg.group(horizontal=True, parent="_group_keyframes"):
            dpg.add_text(f"{i + 1:2d}", color=(255, 210, 90))
            for name, value, scale in (("x", c.x, 1.0), ("z", c.z, 1.0), ("yaw", math.degrees(c.yaw), math.pi / 180)):
                tag = f"_input_key_{i}_{name}"
                dpg.add_input_float(tag=tag, width=58, step=0, format="%.2f" if name != "yaw" else "%.0f°",
                                    default_value=value, on_enter=True, user_data=(i, name, scale),
                                    callback=g(lambda s, a, u: tab.set_keyframe(u[0], **{u[1]: a * u[2]})))
                tab.app.text_inputs.append(tag)
            for label, fn in (("go", tab.go_to), ("here", tab.set_keyframe), ("x", tab.delete_keyframe)):
                dpg.add_button(label=label, user_data=(fn, i), callback=g(lambda s, a, u: u[0](u[1])))
    if keys:
        dpg.add_text("keyframe: x, z (m), yaw; go: fly there; here: move it to the camera; x: delete",
                     color=GREY, wrap=0, parent="_group_keyframes")
