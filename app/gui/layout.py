"""The window's widgets: menu bar, the picture with its labels and stats line, the side tabs, the help.

Tags are named by family (`_image`, `_text_*`, `_button_*`, `_input_*`, `_dialog_*`, `_plot_*`).
`build` creates everything once; `refresh` updates what changes each frame; `show_texture` hands the big viewport's
pictures to the window as textures: the viewer's two panels, or the open tab's own pictures when it has some.
"""

from __future__ import annotations

import time
from pathlib import Path

import dearpygui.dearpygui as dpg

from app.gui.panel_model import ModelTab
from app.gui.panel_rotations import RotationsTab
from app.gui.panel_training import TrainingTab
from app.gui.panel_video import VideoTab
from app.gui.panel_view import ViewTab
from app.gui.panel_worlds import WorldsTab
from app.gui.state import SHORTCUTS, VIEW_MODES
from app.gui.tab import Pictures
from app.gui.widgets import blank_image, show_picture
from app.viewport import upscale

BACKGROUND = (37, 37, 38, 255)  # dearpygui's default window colour, painted by the viewport clear
COLORS = {"info": (190, 200, 210), "warn": (255, 190, 80), "error": (255, 100, 90)}
MESSAGE_SHOWN_S = 12.0
TABS = (ViewTab, TrainingTab, ModelTab, VideoTab, WorldsTab, RotationsTab)  # the side tabs, in the tab bar's order
SIDES = ("left", "right", "third")  # the big viewport's picture slots: the viewer uses two, a tab up to three
STALE_AFTER_S = 0.3  # a picture this far behind the camera is marked "rendering..."


def build(app) -> None:
    app.text_inputs = []
    app.path_fields = {}  # file dialog tag -> the typed path field beside it
    app.file_dialogs = {}  # file dialog tag -> what choosing a file does
    _theme()
    dpg.add_texture_registry(tag="_registry")
    app._shown = {}  # side -> (picture shown, its texture)
    app._live = {}  # side -> (raw texture, size, frame it was made)
    app._layout_size = app.view.display
    app._viewport_owner = None  # the tab whose pictures fill the big viewport (None: the viewer's)
    app._tab_pictures = None  # the key of the tab pictures on screen
    _dialogs(app)
    # No window background: the viewport's clear paints the same colour, and in software GL (llvmpipe)
    # a blended full-window quad cost a third of a still frame. Not a dearpygui "primary window" either:
    # that draws its background whatever the flags (an empty 1200x740 window: 10.3 vs 1.5 ms CPU a frame,
    # measured); a plain undecorated window that `refresh` keeps at the viewport's size looks the same.
    with dpg.window(tag="_window_main", no_scrollbar=True, no_background=True, no_title_bar=True, no_move=True,
                    no_resize=True, no_collapse=True, no_bring_to_front_on_focus=True, pos=(0, 0),
                    width=app.size[0], height=app.size[1]):
        _menu(app)
        with dpg.group(horizontal=True):
            with dpg.child_window(tag="_child_view", width=2 * app.view.display + 16, border=False, no_scrollbar=True):
                _picture(app)
            with dpg.child_window(tag="_child_side", width=-1, border=False, no_scrollbar=True):
                with dpg.tab_bar(tag="_tabs"):
                    for tab in app.tabs.values():
                        with dpg.tab(label=tab.label, tag=f"_tab_{tab.name}"):
                            # The tab's own scrolling area: a long panel scrolls under a tab bar that stays put.
                            with dpg.child_window(tag=f"_child_tab_{tab.name}", border=False):
                                tab.build()
    _help(app)
    with dpg.theme() as flat:  # the main window is the whole viewport: no border, no rounded corners
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_style(dpg.mvStyleVar_WindowBorderSize, 0)
            dpg.add_theme_style(dpg.mvStyleVar_WindowRounding, 0)
    dpg.bind_item_theme("_window_main", flat)


def _theme() -> None:
    """Transparent child-window and plot backgrounds over the viewport's clear colour: same look, but
    software GL (llvmpipe) no longer blends those large quads every frame (28 -> 19 ms CPU a frame here)."""
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvAll):
            dpg.add_theme_color(dpg.mvThemeCol_ChildBg, (0, 0, 0, 0))
            dpg.add_theme_color(dpg.mvPlotCol_FrameBg, (0, 0, 0, 0), category=dpg.mvThemeCat_Plots)
            dpg.add_theme_color(dpg.mvPlotCol_PlotBg, (0, 0, 0, 0), category=dpg.mvThemeCat_Plots)
    dpg.bind_theme(theme)


def _menu(app) -> None:
    g = app.guard
    with dpg.menu_bar():
        with dpg.menu(label="File"):
            dpg.add_menu_item(label="Load checkpoint...", callback=lambda: dpg.show_item("_dialog_load_ckpt"))
            dpg.add_menu_item(label="Save network as...", callback=lambda: dpg.show_item("_dialog_save_ckpt"))
            dpg.add_menu_item(label="Screenshot (F12)", callback=g(lambda: app.screenshot(None)))
            dpg.add_menu_item(label="Screenshot as...", callback=lambda: dpg.show_item("_dialog_screenshot"))
            dpg.add_separator()
            dpg.add_menu_item(label="Quit", tag="_menu_quit", callback=app.guard(lambda: dpg.stop_dearpygui()))
        with dpg.menu(label="View"):
            for i, (mode, label) in enumerate(VIEW_MODES.items()):
                dpg.add_menu_item(label=f"{label}  ({i + 1})", callback=g(lambda s, a, u: app.view.set(mode=u)), user_data=mode)
        with dpg.menu(label="Help"):
            dpg.add_menu_item(label="Keyboard shortcuts (H)", callback=app.toggle_help)


def _picture(app) -> None:
    dpg.add_text("", tag="_text_label_left")
    dpg.add_text("", tag="_text_label_right", pos=(app.view.display + 16, 0))  # placed beside the left one each frame
    dpg.add_text("", tag="_text_label_third", pos=(app.view.display + 16, 0))
    with dpg.group(horizontal=True, horizontal_spacing=0, tag="_group_images"):
        for side in SIDES:
            blank_image(app, side, app.view.display)
    dpg.add_text("", tag="_text_stats", wrap=2 * app.view.display)
    dpg.add_text("", tag="_text_warning", color=COLORS["warn"], wrap=2 * app.view.display)
    dpg.add_text("", tag="_text_message", wrap=2 * app.view.display)


def _dialog(app, tag: str, label: str, exts: tuple[str, ...], on_path, default: str = "") -> None:
    """A file dialog (no extensions: a folder dialog); the typed path field beside it shows what it chose."""
    def chosen(sender, data):
        path = data["file_path_name"]
        field = app.path_fields.get(tag)
        if field is not None:
            dpg.set_value(field, path)
        app.guard(on_path)(path)
    app.file_dialogs[tag] = chosen
    with dpg.file_dialog(label=label, tag=tag, show=False, modal=True, width=640, height=420, callback=chosen,
                         default_filename=default, directory_selector=not exts):
        for ext in exts:
            dpg.add_file_extension(ext)


def _dialogs(app) -> None:
    _dialog(app, "_dialog_load_ckpt", "Load checkpoint", (".safetensors", ".*"), app.open_checkpoint)
    _dialog(app, "_dialog_save_ckpt", "Save network as", (".safetensors",), app.save_checkpoint_as, "network")
    _dialog(app, "_dialog_screenshot", "Screenshot as", (".png",), app.screenshot, "redcube")
    video, worlds, rotations = app.tabs["video"].session, app.tabs["worlds"].session, app.tabs["rotations"].session
    _dialog(app, "_dialog_path_load", "Load camera path", (".json", ".*"), app.tabs["video"].load_path)
    _dialog(app, "_dialog_video_out", "Export video to", (".mp4",), lambda p: video.options.update(out=p), "redcube")
    _dialog(app, "_dialog_mnif_load", "Load mNIF checkpoint", (".safetensors", ".*"), app.tabs["worlds"].load)
    _dialog(app, "_dialog_latent_load", "Load latent", (".safetensors", ".*"),
            lambda p: app.message(worlds.load_latent(p)))
    _dialog(app, "_dialog_ws_checkpoint", "Weight-space checkpoint", (".safetensors", ".*"),
            lambda p: setattr(rotations, "checkpoint", p))
    _dialog(app, "_dialog_ws_fields", "Field data set directory", (), lambda p: setattr(rotations, "data", p), ".")
    _dialog(app, "_dialog_worlds_video", "Export interpolation video to", (".mp4",),
            lambda p: worlds.video.update(out=p), "worlds")


def _help(app) -> None:
    with dpg.window(label="Keyboard shortcuts", tag="_window_help", show=False, width=520, height=370, pos=(260, 110),
                    on_close=lambda: setattr(app, "show_help", False)):
        with dpg.table(header_row=False, borders_innerH=True):
            dpg.add_table_column(width_fixed=True, init_width_or_weight=150)
            dpg.add_table_column()
            for key, what in SHORTCUTS:
                with dpg.table_row():
                    dpg.add_text(key, color=(255, 210, 120))
                    dpg.add_text(what)


def show_texture(app) -> None:
    """Show the big viewport's new pictures: the open tab's, else the viewer's two panels."""
    tab = app.shown_tab()
    pictures = tab.viewport() if tab is not None else None
    owner = tab.name if pictures is not None else None
    if owner != app._viewport_owner:  # another owner: every slot is configured afresh
        app._viewport_owner, app._tab_pictures = owner, None
        for side in SIDES:
            app._shown[side] = (None, app._shown[side][1])
        app._layout_size = None
    if pictures is not None:
        _show_pictures(app, pictures)
    else:
        _show_viewer(app)


def _show_pictures(app, p: Pictures) -> None:
    """A tab's pictures, side by side in the width of the viewer's two panels, each upscaled once per new set."""
    if app._tab_pictures is p.key:
        return
    app._tab_pictures = p.key
    s = app.view.display
    size = 2 * s // len(p.panels) if len(p.panels) > 1 else s
    for side, panel in zip(SIDES, p.panels):
        show_picture(app, side, upscale(panel.image, size), False, size)
        dpg.configure_item(f"_image_{side}", width=size, height=size, show=True)
    for side in SIDES[len(p.panels):]:
        dpg.configure_item(f"_image_{side}", show=False)


def _show_viewer(app) -> None:
    """Show the viewer's new panels. A still picture becomes a static texture, uploaded once (a raw
    texture is uploaded again every frame: ~1.5 ms a panel of every software-GL frame); pictures that
    change every frame while flying go to a raw texture instead (making a static one costs more)."""
    s, v = app.view.display, app.viewer
    if v.left is None or v.left.shape[0] not in (s, s // 2) or (v.right is not None and v.right.shape[0] != s):
        return  # composed for an older display size
    live = v.gt is not None and not v.gt.still  # flying
    show_picture(app, "left", v.left, live, s)
    if v.right is not None:
        show_picture(app, "right", v.right, live, s)
    dpg.configure_item("_image_right", show=v.right is not None)
    dpg.configure_item("_image_third", show=False)
    if app._layout_size != s:
        app._layout_size = s
        dpg.configure_item("_child_view", width=2 * s + 16)
        for tag in ("_text_stats", "_text_warning", "_text_message"):
            dpg.configure_item(tag, wrap=2 * s)


def _labels(app) -> tuple[str, str]:
    v, s = app.view, app.view.display
    gt = app.viewer.gt
    still = gt is not None and gt.still and gt.size == s
    gt_label = f"Ground truth  {s}², " + (f"anti-aliased {gt.supersample}x{gt.supersample}" if still else "half size while moving")
    loaded, net = app.slot.snapshot(), app.viewer.net
    if loaded is None:
        net_label = "no network"
    else:  # what the picture on screen was drawn with: its weights' step and its (dynamic) resolution
        step, res = (net.step, net.res) if net is not None else (loaded.step, v.net_res)
        stale = _stale(app)  # the marker replaces the upscaling note: the caption must fit above its picture
        net_label = (f"{loaded.record['model']['kind']} step {step}  {res}²"
                     + (stale or f" -> {s}² {v.upscale}" + ("" if net is None or net.still else " (moving)")))
    if v.mode == "side_by_side":
        return gt_label, net_label
    if v.mode == "split":
        return f"<- ground truth | network ->   {net_label}", ""
    if v.mode == "error":
        return f"|network - ground truth|, gain x{v.error_gain:g}   {net_label}", ""
    if v.mode == "latent":
        latent = loaded is not None and loaded.record.get("vae")
        return (f"latent channels 1-3 at {max(16, v.net_res // 8)}²   {net_label}" if latent else "latent view: load a latent network"), ""
    return (gt_label if v.mode == "gt" else net_label), ""


def _stale(app) -> str:
    """'rendering...' and the picture's age while the network picture on screen is not of the current camera or
    weights (a slow network keeps its old picture up until the new one is done)."""
    net, loaded = app.viewer.net, app.slot.snapshot()
    if net is None or loaded is None:
        return ""
    pose = tuple(float(x) for x in app.fly.camera.pose())
    age = time.perf_counter() - net.done_at
    behind = net.pose != pose or net.version != loaded.version or not app.viewer.net_view.worker.idle
    return f"  rendering... ({age:.1f} s old)" if behind and age > STALE_AFTER_S else ""


def _captions(app) -> tuple[list[str], int, str]:
    """The big viewport's captions, the width of one picture, and the line under the pictures."""
    tab = app.shown_tab()
    pictures = tab.viewport() if tab is not None else None
    s = app.view.display
    if pictures is None:
        stale = _stale(app)
        stats = app.viewer.stats.line()
        return list(_labels(app)) + [""], s, ("PSNR below is of an older picture. " if stale else "") + stats
    n = len(pictures.panels)
    return [p.caption for p in pictures.panels] + [""] * (3 - n), 2 * s // n if n > 1 else s, pictures.note


def refresh(app) -> None:
    size = (dpg.get_viewport_client_width(), dpg.get_viewport_client_height())
    if size != getattr(app, "_fitted", None) and min(size) > 0:  # the main window covers the viewport, resized too
        app._fitted = size
        dpg.configure_item("_window_main", width=size[0], height=size[1])
    captions, width, line = _captions(app)
    x, y = dpg.get_item_pos("_text_label_left")
    for k, (side, text) in enumerate(zip(SIDES, captions)):
        dpg.set_value(f"_text_label_{side}", text)
        if k:
            dpg.set_item_pos(f"_text_label_{side}", (x + k * width, y))
    dpg.set_value("_text_stats", line)
    problems = app.fly.problems()
    dpg.set_value("_text_warning", ("Outside the training distribution: " + "; ".join(problems) +
                                    ". A pose-conditioned network has never seen this view.") if problems else "")
    _message(app)
    _open_on_double_click(app)
    dpg.configure_item("_window_help", show=app.show_help)
    for tab in app.tabs.values():
        tab.refresh()


def _open_on_double_click(app) -> None:
    """dearpygui's file dialog only selects a double-clicked file: here the double-click also opens it (as OK)."""
    if not dpg.is_mouse_button_double_clicked(dpg.mvMouseButton_Left):
        return
    for tag, chosen in app.file_dialogs.items():
        if dpg.is_item_shown(tag):
            info = dpg.get_file_dialog_info(tag)
            path = info.get("file_path_name", "")
            if info.get("selections") and Path(path).is_file():
                dpg.hide_item(tag)
                chosen(tag, {"file_path_name": path})
            return


def _message(app) -> None:
    if not app.messages:
        return
    m = app.messages[-1]
    shown = m.level == "error" or time.time() - m.at < MESSAGE_SHOWN_S
    dpg.set_value("_text_message", m.text if shown else "")
    dpg.configure_item("_text_message", color=COLORS[m.level])
