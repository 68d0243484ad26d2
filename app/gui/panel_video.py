"""The Path & video tab: keyframes, presets, path files, preview playback and mp4 export with progress."""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

from app.gui.settings import output_path
from app.gui.tab import Tab
from app.gui.widgets import path_field
from app.gui.video import PANELS
from app.gui.video_session import VideoSession

GREY = (150, 150, 150)


class VideoTab(Tab):
    name, label, settings_key = "video", "Path & video", "video"

    def __init__(self, app):
        super().__init__(app)
        self.session = VideoSession(app.scene, app.settings.video)
        self._played: int | None = None  # the fly camera's version after the preview last moved it

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

    def choices(self) -> dict:
        return dict(self.session.options)

    def close(self) -> None:
        self.session.cancel()

    def build(self) -> None:
        build(self.app, self)

    def refresh(self) -> None:
        refresh(self.app, self.session)


def build(app, tab: VideoTab) -> None:
    g, v = app.guard, tab.session.options
    dpg.add_text("Camera path", color=(150, 200, 255))
    dpg.add_text("", tag="_text_path")
    with dpg.group(horizontal=True):
        dpg.add_button(label="Add keyframe (K)", callback=g(tab.add_keyframe))
        dpg.add_button(label="Clear", callback=g(tab.session.clear))
        dpg.add_checkbox(label="loop", tag="_check_loop", callback=lambda s, a: setattr(tab.session.path, "loop", a))
    with dpg.group(horizontal=True):
        dpg.add_button(label="Preset: orbit", callback=g(lambda: tab.use_preset("orbit")))
        dpg.add_button(label="Preset: walk", callback=g(lambda: tab.use_preset("walk")))
    dpg.add_text("Path file (JSON)", color=GREY)
    path_field(app, "_input_path_file", [("Load", tab.load_path), ("Save", tab.save_path)], "_dialog_path_load",
               hint="e.g. paths/orbit.json")
    with dpg.group(horizontal=True):
        dpg.add_button(label="Play preview", callback=g(lambda: tab.session.play(time.perf_counter())))
        dpg.add_button(label="Stop", callback=g(tab.session.stop))
    dpg.add_separator()
    dpg.add_text("Export mp4", color=(150, 200, 255))
    labels = {label: key for key, label in PANELS.items()}
    dpg.add_combo(list(labels), label="panel", tag="_combo_video_panel", width=160, default_value=PANELS.get(v["panel"], "Side by side"),
                  callback=lambda s, a: v.update(panel=labels[a]))
    for key, label in (("res", "resolution"), ("fps", "fps"), ("frames", "frames")):
        tag = f"_input_video_{key}"
        dpg.add_input_int(label=label, tag=tag, width=160, step=0, default_value=int(v[key]),
                          callback=lambda s, a, u: v.update({u: a}), user_data=key)
        app.text_inputs.append(tag)
    with dpg.group(horizontal=True):
        dpg.add_input_text(tag="_input_video_out", width=260, default_value=str(v["out"]),
                           callback=lambda s, a: v.update(out=a))
        dpg.add_button(label="...", callback=lambda: dpg.show_item("_dialog_video_out"))
    app.text_inputs.append("_input_video_out")
    dpg.add_text("", tag="_text_video_out", color=GREY, wrap=0)
    with dpg.group(horizontal=True):
        dpg.add_button(label="Export", tag="_button_export", callback=g(tab.export))
        dpg.add_button(label="Cancel", tag="_button_cancel", callback=g(tab.session.cancel))
    dpg.add_progress_bar(tag="_progress_video", width=-1, default_value=0.0, overlay="")


def set_out(session: VideoSession, path: str) -> None:
    session.options["out"] = path
    dpg.set_value("_input_video_out", path)


def refresh(app, video: VideoSession) -> None:
    p = video.path
    dpg.set_value("_text_path", f"{len(p.keyframes)} keyframes" + (" (loop)" if p.loop else "") +
                  ("  - playing" if video.playback else ""))
    dpg.set_value("_check_loop", p.loop)
    o = video.options
    for key in ("res", "fps", "frames", "out"):  # follow changes not made by typing (settings, scripts)
        tag = f"_input_video_{key}"
        if not dpg.is_item_active(tag):
            dpg.set_value(tag, o[key] if key == "out" else int(o[key]))
    dpg.set_value("_combo_video_panel", PANELS.get(o["panel"], "Side by side"))
    dpg.set_value("_text_video_out", f"writes {output_path(o['out'])}")
    job, running = video.job, video.running
    dpg.configure_item("_button_export", enabled=not running)
    dpg.configure_item("_button_cancel", enabled=running)
    if job is not None:
        frac = job.done / max(1, job.total)
        dpg.set_value("_progress_video", frac)
        dpg.configure_item("_progress_video", overlay=f"{job.done} / {job.total} frames" + ("" if running else " - done"))
