"""The Path & video tab: keyframes, presets, path files, preview playback and mp4 export with progress."""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

from app.video import PANELS


def build(app) -> None:
    g, v = app.guard, app.video.options
    dpg.add_text("Camera path", color=(150, 200, 255))
    dpg.add_text("", tag="_text_path")
    with dpg.group(horizontal=True):
        dpg.add_button(label="Add keyframe (K)", callback=g(app.add_keyframe))
        dpg.add_button(label="Clear", callback=g(app.video.clear))
        dpg.add_checkbox(label="loop", tag="_check_loop", callback=lambda s, a: setattr(app.video.path, "loop", a))
    with dpg.group(horizontal=True):
        dpg.add_button(label="Preset: orbit", callback=g(lambda: app.use_preset("orbit")))
        dpg.add_button(label="Preset: walk", callback=g(lambda: app.use_preset("walk")))
    with dpg.group(horizontal=True):
        dpg.add_button(label="Load path...", callback=lambda: dpg.show_item("_dialog_path_load"))
        dpg.add_button(label="Save path...", callback=lambda: dpg.show_item("_dialog_path_save"))
    with dpg.group(horizontal=True):
        dpg.add_button(label="Play preview", callback=g(lambda: app.video.play(time.perf_counter())))
        dpg.add_button(label="Stop", callback=g(app.video.stop))
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
    with dpg.group(horizontal=True):
        dpg.add_button(label="Export", tag="_button_export", callback=g(app.export))
        dpg.add_button(label="Cancel", tag="_button_cancel", callback=g(app.video.cancel))
    dpg.add_progress_bar(tag="_progress_video", width=-1, default_value=0.0, overlay="")


def set_out(app, path: str) -> None:
    app.video.options["out"] = path
    dpg.set_value("_input_video_out", path)


def refresh(app) -> None:
    p = app.video.path
    dpg.set_value("_text_path", f"{len(p.keyframes)} keyframes" + (" (loop)" if p.loop else "") +
                  ("  - playing" if app.video.playback else ""))
    dpg.set_value("_check_loop", p.loop)
    o = app.video.options
    for key in ("res", "fps", "frames", "out"):  # follow changes not made by typing (settings, scripts)
        tag = f"_input_video_{key}"
        if not dpg.is_item_active(tag):
            dpg.set_value(tag, o[key] if key == "out" else int(o[key]))
    dpg.set_value("_combo_video_panel", PANELS.get(o["panel"], "Side by side"))
    job, running = app.video.job, app.video.running
    dpg.configure_item("_button_export", enabled=not running)
    dpg.configure_item("_button_cancel", enabled=running)
    if job is not None:
        frac = job.done / max(1, job.total)
        dpg.set_value("_progress_video", frac)
        dpg.configure_item("_progress_video", overlay=f"{job.done} / {job.total} frames" + ("" if running else " - done"))
