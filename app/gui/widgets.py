"""What the tabs' widgets share: colours, typed paths beside their file dialogs, widgets that follow state, and the
pictures shown as textures (`show_picture`)."""

from __future__ import annotations

import dearpygui.dearpygui as dpg
import numpy as np

from renderer.errors import RedcubeError

HEAD = (150, 200, 255)  # a heading in a side tab
GREY = (150, 150, 150)  # intros and notes of the View, Training, Model and Path & video tabs
PALE = (170, 170, 170)  # intros and notes of the Worlds and Rotations tabs
WRAP = 336  # text stays clear of the side panel's scroll bar (Worlds and Rotations tabs)
PATH_WIDTH = 210


def path_field(app, tag: str, buttons: list[tuple[str, object]], dialog: str, default: str = "", hint: str = "",
               width: int = PATH_WIDTH) -> None:
    """A path typed by hand beside the file dialog that fills it: `buttons` are (label, fn(path)); Enter in the
    field does the first. The dialog (`...`) puts its choice in the field (and does what it always did)."""
    with dpg.group(horizontal=True):
        dpg.add_input_text(tag=tag, width=width, default_value=default, hint=hint, on_enter=True,
                           callback=app.guard(lambda s, a: buttons[0][1](a)))
        for label, fn in buttons:
            dpg.add_button(label=label, tag=f"{tag}_{label.lower().split()[0]}",
                           callback=app.guard(lambda s, a, u: u(_typed(tag))), user_data=fn)
        dpg.add_button(label="...", callback=lambda: dpg.show_item(dialog))
    app.text_inputs.append(tag)
    app.path_fields[dialog] = tag


def _typed(tag: str) -> str:
    path = dpg.get_value(tag).strip()
    if not path:
        raise RedcubeError("the path field is empty; type a file's path there or pick one with the ... button.")
    return path


def path_input(app, tag: str, value: str, on_change, dialog: str, width: int) -> None:
    """A typed path (on_change(path) on every edit) with the `...` button of the file dialog that puts its choice in
    the field (`layout._dialogs` hands that choice to the same setter)."""
    with dpg.group(horizontal=True):
        dpg.add_input_text(tag=tag, width=width, default_value=value, callback=lambda s, a: on_change(a))
        dpg.add_button(label="...", callback=lambda: dpg.show_item(dialog))
    app.text_inputs.append(tag)
    app.path_fields[dialog] = tag


def tooltip(tag: str, text: str) -> None:
    with dpg.tooltip(tag):
        dpg.add_text(text)


def export_controls(app, name: str, session, export, width: int) -> None:
    """Export and Cancel (`_button_{name}_export`, `_button_{name}_cancel`) over the progress bar `_progress_{name}`."""
    with dpg.group(horizontal=True):
        dpg.add_button(label="Export", tag=f"_button_{name}_export", callback=app.guard(export))
        dpg.add_button(label="Cancel", tag=f"_button_{name}_cancel", callback=app.guard(session.cancel))
    dpg.add_progress_bar(tag=f"_progress_{name}", width=width, default_value=0.0, overlay="")


def show_export(name: str, session) -> None:
    """A session's export (`Exports`) in its `export_controls`."""
    job, running = session.job, session.running
    dpg.configure_item(f"_button_{name}_export", enabled=not running)
    dpg.configure_item(f"_button_{name}_cancel", enabled=running)
    if job is not None:
        dpg.set_value(f"_progress_{name}", job.done / max(1, job.total))
        finished = "" if running else " - done"
        dpg.configure_item(f"_progress_{name}", overlay=f"{job.done} / {job.total} frames{finished}")


def follow(values: dict) -> None:
    """Show state changes not made in these widgets (tag -> value): a widget the user is editing keeps its value."""
    for tag, value in values.items():
        if not dpg.is_item_active(tag) and dpg.get_value(tag) != value:
            dpg.set_value(tag, value)


def blank_image(app, side: str, size: int, **where) -> None:
    """The image `_image_{side}`, blank until `show_picture` shows something there."""
    blank = dpg.add_static_texture(1, 1, [0.1, 0.1, 0.1, 1.0], parent="_registry")
    dpg.add_image(blank, tag=f"_image_{side}", width=size, height=size, **where)
    app._shown[side] = (None, blank)


def show_picture(app, side: str, img: np.ndarray, live: bool, size: int) -> None:
    """Show img on one side (an image tag `_image_{side}` registered in `app._shown`) at size x size on screen (a
    smaller picture is scaled by the window's GL)."""
    shown, old = app._shown[side]
    if img is shown:
        return
    h, w = img.shape[:2]
    if live:
        tag, ready = _live_texture(app, side, w, h, img)
        dpg.set_value(tag, img)
        if not ready:
            return  # keep the old picture up until the new texture holds this one (tried again next frame)
    else:
        rgba = np.empty((h, w, 4), dtype=np.float32)
        rgba[..., :3], rgba[..., 3] = img, 1.0
        tag = dpg.add_static_texture(w, h, rgba, parent="_registry")
    if tag != old:
        dpg.configure_item(f"_image_{side}", texture_tag=tag, width=size, height=size)
        if old != app._live.get(side, (None,))[0]:
            dpg.delete_item(old)  # a static texture nobody shows any more
    app._shown[side] = (img, tag)


RAW_WARMUP_FRAMES = 3


def _live_texture(app, side: str, w: int, h: int, img: np.ndarray) -> tuple[int | str, bool]:
    """The side's raw texture for pictures that change every frame (made again when the size changes),
    and whether it is ready to show. dearpygui fills a raw texture through a buffer one frame behind, so
    a new one shows an empty (black) frame first: it is shown only after RAW_WARMUP_FRAMES frames."""
    tag, size, born = app._live.get(side, (None, None, 0))
    if size != (w, h):
        if tag is not None and tag != app._shown[side][1]:
            dpg.delete_item(tag)
        tag = dpg.add_raw_texture(w, h, img, format=dpg.mvFormat_Float_rgb, parent="_registry")
        born = app.frame
        app._live[side] = (tag, (w, h), born)
    return tag, app.frame - born >= RAW_WARMUP_FRAMES
