"""The Rotations tab (issue 7 item 4, issue 19 item 3): weight-space arms on NGP fields of rotated polycubes. Pick an
object, a rotation, a reference rotation and an arm; the big viewport shows the selected field, the reference field
and the selected one with the arm's rotation undone, the flying camera's heading orbiting them. The side panel holds
the true relative rotation beside every arm's prediction and error (and what each arm reads), the hash features per
level, and a 2-D PCA of every field's embedding. Callbacks only change `tab.session`; pictures arrive from `tab.view`."""

from __future__ import annotations

import math
import time

import dearpygui.dearpygui as dpg

from app.gui.rotations_session import COLOR_BY, RotationsSession
from app.gui.rotations_view import RES, SLICE_Z, RotationsView
from app.gui.tab import Panel, Pictures, Tab
from app.gui.widgets import HEAD, PALE, WRAP, blank_image, follow, path_input, show_picture, tooltip
from app.viewport import upscale
from training.weightspace.arms import READS

THUMB = 88  # the side panel's one picture: the field undone by the true rotation (the check that undoing works)
INTRO = ("A field here is a small network (a hash grid of learned features plus a tiny MLP) fitted to one object, "
         "the way Instant-NGP stores a scene. The same object, turned, gives a field with different weights. "
         "Can the rotation be read from the weights alone? Pick an object and two of its turns; each method (arm) "
         "guesses the turn between them, and the viewport undoes it: if the guess is right, the right-hand picture "
         "matches the middle one.")
HEADLINE = ("What to look for: the error column, in degrees (0 is perfect, 180 is the worst). The principal-axes "
            "reference learns nothing and is near 0; the learned transformer arm (sane-tokens) is tens of degrees "
            "off, the voxel-grid arm (grid-axes) a few. A learned arm worse than the reference is the finding, not a bug.")
TIPS = {
    "NT-Xent": "a contrastive loss: embeddings of the same object (any rotation) are pulled together, others pushed apart",
    "geodesic error": "the angle of the smallest turn that takes the predicted rotation onto the true one (degrees)",
    "[POS] token": "the transformer's summary vector for a field's pose; the rotation head compares two of them",
    "hash levels": "the field's feature grids, coarse to fine; each level stores features at its own resolution",
    "PCA": "principal component analysis: the two directions along which the embeddings spread most, as x and y",
}
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
"""Object colours (tab10); with more objects than colours, object o takes colour o mod 10."""
ANGLE_COLOURS = ((40, 90, 255), (0, 190, 230), (60, 200, 80), (235, 220, 40), (255, 140, 20), (230, 40, 40))
"""Rotation angles (0-180 deg from the identity) are coloured in len(ANGLE_COLOURS) bins of equal width, blue to red."""
ANGLE_BINS = len(ANGLE_COLOURS)
MARGIN = 0.12
"""Share of the points' spread left free around them in the PCA plot (the highlights are drawn whole)."""


class RotationsTab(Tab):
    name, label, settings_key = "rotations", "Rotations", "rotations"

    def __init__(self, app):
        super().__init__(app)
        self.session = RotationsSession(app.scene)
        self.view = RotationsView(app.scene)
        self._rot_shown = self._rot_themes = self._rot_plotted = self._rot_levels = None  # what the widgets show
        self._fly_yaw: float | None = None  # the flying camera's heading (deg) at the last frame with the tab open

    def load(self) -> None:
        """The Load button: the checkpoint and data set in the path inputs, loaded and encoded in the background."""
        r = self.session
        r.load_async(self.app.said)
        self.app.message(f"loading {r.checkpoint} with the fields in {r.data} ...")

    def close(self) -> None:
        self.view.close()

    def tick(self, now: float) -> bool:
        """Loads and renders only while the tab is open; the flying camera's heading is the orbit's. True when a new
        set of pictures came."""
        visible = self.visible()
        if visible:
            self.session.ensure_loaded(self.app.said)
        self._follow_camera(visible)
        r = self.session
        return self.view.tick(now, visible, (r.version, id(r.loaded)), RES, r.snapshot)

    def _follow_camera(self, visible: bool) -> None:
        """While the tab is open, turning the flying camera (Q / E, arrows, a drag) turns the orbit by as much; opening
        the tab leaves the camera where it was."""
        yaw = math.degrees(self.app.fly.camera.yaw)
        seen, self._fly_yaw = self._fly_yaw, (yaw if visible else None)
        turn = math.remainder(yaw - seen, 360.0) if visible and seen is not None else 0.0
        if abs(turn) > 0.05 and self.session.loaded is not None:
            self.session.set_yaw(round(math.remainder(self.session.yaw_deg + turn, 360.0), 1))

    def settled(self) -> bool:
        """With the tab open: its load has ended and, when a pair is loaded, its pictures are current."""
        f = self.view.frame
        return not self.visible() or self.session.settled(
            lambda: f is not None and f.key[0] == self.session.version and f.res == RES and f is self._rot_shown)

    def viewport(self) -> Pictures | None:
        f, r = self.view.frame, self.session
        if f is None or r.loaded is None:
            return None
        stale = f.key[0] != r.version
        note = (f"rendering... these pictures are {time.perf_counter() - f.done_at:.1f} s old" if stale else
                f"undone by {r.arm}: {f.psnr['undo_pred']:.1f} dB against the reference (by the true turn: "
                f"{f.psnr['undo_true']:.1f} dB; higher is closer, above 30 dB is hard to tell apart)")
        mark = "  (rendering...)" if stale else ("  (quick preview)" if f.res < RES else "")
        return Pictures([Panel(f.images["selected"], f"selected: object {r.object}, turn {r.rotation}{mark}"),
                         Panel(f.images["reference"], f"reference: turn {r.reference}"),
                         Panel(f.images["undo_pred"], f"selected, {r.arm}'s turn undone")], note, key=f)

    def build(self) -> None:
        dpg.add_text(INTRO, color=PALE, wrap=WRAP)
        _inputs(self)
        dpg.add_text("", tag="_text_rot_model", wrap=WRAP)
        _selection(self)
        _arms(self)
        with dpg.group(horizontal=True):
            blank_image(self.app, "rot_undo_true", THUMB)
            dpg.add_text("the selected field undone by the true turn: the check that undoing works "
                         "(it should match the reference)", color=PALE, wrap=WRAP - THUMB - 8)
        dpg.add_text("", tag="_text_rot_render", color=PALE, wrap=WRAP)
        dpg.add_separator()
        dpg.add_text(f"Hash features per level on the plane z = {SLICE_Z} (box coordinates), coarse to fine",
                     color=HEAD, wrap=WRAP, tag="_text_rot_levels_head")
        tooltip("_text_rot_levels_head", "hash levels: " + TIPS["hash levels"])
        dpg.add_group(horizontal=True, horizontal_spacing=4, tag="_group_rot_slices")
        dpg.add_text("", tag="_text_rot_slices", color=PALE, wrap=WRAP)
        dpg.add_separator()
        _pca(self)

    def refresh(self) -> None:
        refresh(self)
        show(self)


def _inputs(tab) -> None:
    r = tab.session
    dpg.add_text("Weight-space checkpoint and the field data set it was trained on", color=HEAD, wrap=WRAP)
    for key, dialog in (("checkpoint", "_dialog_ws_checkpoint"), ("data", "_dialog_ws_fields")):
        path_input(tab.app, f"_input_rot_{key}", getattr(r, key), lambda path, key=key: setattr(r, key, path), dialog,
                   WRAP - 40)
    dpg.add_text("Grid-arm checkpoint (train-weightspace --arm grid; empty: none)", color=PALE, wrap=WRAP)
    dpg.add_input_text(tag="_input_rot_grid", width=WRAP - 40, default_value=r.grid, callback=lambda s, a: setattr(r, "grid", a))
    tab.app.text_inputs.append("_input_rot_grid")
    dpg.add_button(label="Load", tag="_button_rot_load", callback=tab.app.guard(tab.load))


def _selection(tab) -> None:
    g, r = tab.app.guard, tab.session
    for key, label, setter in (("object", "object", r.set_object), ("rotation", "rotation", r.set_rotation),
                               ("reference", "reference rotation", r.set_reference)):
        dpg.add_slider_int(label=label, tag=f"_slider_rot_{key}", min_value=0, max_value=0, width=200,
                           callback=g(lambda s, a, u: u(a)), user_data=setter)
    dpg.add_slider_float(label="camera yaw (deg)", tag="_slider_rot_yaw", min_value=-180.0, max_value=180.0,
                         default_value=r.yaw_deg, width=200, callback=g(lambda s, a: r.set_yaw(a)))
    tooltip("_slider_rot_yaw", "the orbit's heading: Q / E, the arrow keys or a drag on the pictures turn it too")


def _arms(tab) -> None:
    """Which arm's rotation the renders undo, the table of every arm's rotation, and what every arm reads."""
    r = tab.session
    dpg.add_text(HEADLINE, wrap=WRAP, color=(235, 215, 150))
    dpg.add_text("the arm whose turn the viewport undoes:", tag="_text_rot_arm_head")
    tooltip("_text_rot_arm_head", "\n".join(f"{k}: {v}" for k, v in TIPS.items()))
    dpg.add_radio_button(list(READS), tag="_radio_rot_arm", default_value=r.arm, callback=tab.app.guard(lambda s, a: r.set_arm(a)))
    dpg.add_text("", tag="_text_rot_rotation")
    dpg.add_text("\n".join(f"{name}: {words}" for name, words in READS.items()), color=PALE, wrap=WRAP)


def _pca(tab) -> None:
    r = tab.session
    dpg.add_text("Every field's embedding, flattened to 2-D (PCA)", color=HEAD, tag="_text_rot_pca_head")
    tooltip("_text_rot_pca_head", f"The transformer arm maps each field to a vector, trained with NT-Xent: "
            f"{TIPS['NT-Xent']}.\nPCA: {TIPS['PCA']}.\nGood: one tight cluster per object, whatever its turn.")
    dpg.add_text("good: points of one object (one colour, colour by object) close together", color=PALE, wrap=WRAP)
    dpg.add_text("rotation: the field's angle from the identity", color=PALE)
    with dpg.group(horizontal=True):
        dpg.add_text("colour by:")
        dpg.add_radio_button(list(COLOR_BY), tag="_radio_rot_color", horizontal=True, default_value=r.color_by,
                             callback=tab.app.guard(lambda s, a: r.set_color_by(a)))
    with dpg.plot(tag="_plot_rot_pca", height=300, width=-1, no_menus=True, no_box_select=True, no_title=True):
        dpg.add_plot_legend(location=dpg.mvPlot_Location_NorthEast, outside=False)
        dpg.add_plot_axis(dpg.mvXAxis, label="PC 1", tag="_axis_rot_x")
        dpg.add_plot_axis(dpg.mvYAxis, label="PC 2", tag="_axis_rot_y")
    tab._rot_themes = _themes()


def _marker_theme(color, marker, size: float):
    """A scatter series' look: one colour, one marker shape and size."""
    with dpg.theme() as theme:
        with dpg.theme_component(dpg.mvScatterSeries):
            for col in (dpg.mvPlotCol_Line, dpg.mvPlotCol_MarkerFill, dpg.mvPlotCol_MarkerOutline):
                dpg.add_theme_color(col, color, category=dpg.mvThemeCat_Plots)
            dpg.add_theme_style(dpg.mvPlotStyleVar_Marker, marker, category=dpg.mvThemeCat_Plots)
            dpg.add_theme_style(dpg.mvPlotStyleVar_MarkerSize, size, category=dpg.mvThemeCat_Plots)
    return theme


def _themes() -> dict:
    """The palette's themes, the angle ramp's, and the two highlights'."""
    return {"object": [_marker_theme(c, dpg.mvPlotMarker_Circle, 4) for c in PALETTE],
            "rotation": [_marker_theme(c, dpg.mvPlotMarker_Circle, 4) for c in ANGLE_COLOURS],
            # white and light grey: in neither palette (the angle ramp has a yellow)
            "selected": _marker_theme((255, 255, 255), dpg.mvPlotMarker_Diamond, 9),
            "reference": _marker_theme((185, 185, 185), dpg.mvPlotMarker_Square, 7)}


def groups(r) -> list[tuple[str, list[int], int]]:
    """(legend label, data-set rows, colour index) of each non-empty group of PCA points, for the colour choice."""
    values = r.colors()
    if r.color_by == "object":
        ids = values.long()
        n = len(PALETTE)
        label = (lambda k: f"object {k}") if int(ids.max()) < n else (lambda k: f"objects {k} mod {n}")
        return [(label(k), (ids % n == k).nonzero().squeeze(1).tolist(), k) for k in range(n) if (ids % n == k).any()]
    width = 180 / ANGLE_BINS
    bins = (values / width).long().clamp(0, ANGLE_BINS - 1)
    return [(f"angle {k * width:.0f}-{(k + 1) * width:.0f} deg", (bins == k).nonzero().squeeze(1).tolist(), k)
            for k in range(ANGLE_BINS) if (bins == k).any()]


def _plot(tab) -> None:
    """Rebuild the scatter series when the data, the colour choice or the selection changed."""
    r, m = tab.session, tab.session.loaded
    key = (id(m), r.color_by, r.version)
    if m is None or key == tab._rot_plotted:
        return
    tab._rot_plotted = key
    themes, xy = tab._rot_themes, m.pca.tolist()
    dpg.delete_item("_axis_rot_y", children_only=True)
    for label, rows, colour in groups(r):
        s = dpg.add_scatter_series([xy[j][0] for j in rows], [xy[j][1] for j in rows], label=label, parent="_axis_rot_y")
        dpg.bind_item_theme(s, themes[r.color_by][colour])
    sel, ref = r.rows()
    for name, row in (("reference", ref), ("selected", sel)):
        s = dpg.add_scatter_series([xy[row][0]], [xy[row][1]], label=name, parent="_axis_rot_y")
        dpg.bind_item_theme(s, themes[name])
    _limits(m.pca)


def _limits(xy) -> None:
    """Fixed axis limits around the points with a margin (fitting them exactly cuts the edge markers in half)."""
    lo, hi = xy.min(0).values, xy.max(0).values
    pad = (hi - lo).clamp_min(1e-6) * MARGIN
    for k, axis in enumerate(("_axis_rot_x", "_axis_rot_y")):
        dpg.set_axis_limits(axis, float(lo[k] - pad[k]), float(hi[k] + pad[k]))


def refresh(tab) -> None:
    if not tab.visible():
        return
    r, m = tab.session, tab.session.loaded
    dpg.configure_item("_button_rot_load", enabled=r.loading is None)
    dpg.set_value("_text_rot_model", _status(r))
    for key in ("object", "rotation", "reference"):
        dpg.configure_item(f"_slider_rot_{key}", enabled=m is not None)
    if m is not None:
        _follow(tab)
        dpg.set_value("_text_rot_rotation", f"relative rotation, reference {r.reference} -> rotation {r.rotation} (deg):\n"
                                            + r.describe() + _reference_row(tab))
        _plot(tab)
    f, error = tab.view.frame, tab.view.worker.error
    if error:  # a render that failed (the worker keeps serving the next selection)
        dpg.set_value("_text_rot_render", f"could not render this field: {error}")
    elif f is not None:
        dpg.set_value("_text_rot_render", f"{f.res}² volume renders ({f.ms:.0f} ms, cpu, 1 thread); against the reference: "
                                          f"undone by the picked arm ({r.arm}) {f.psnr['undo_pred']:.1f} dB, by true {f.psnr['undo_true']:.1f} dB; "
                                          f"the principal-axes reference (no learning) is {f.moment_error_deg:.1f} deg off")


def _reference_row(tab) -> str:
    """The principal-axes reference's error for the shown pair, once the render thread has measured it."""
    f = tab.view.frame
    if f is None or f.key[0] != tab.session.version:
        return ""
    return f"\n  {'principal-axes reference, no learning':<39} {f.moment_error_deg:6.1f}"


def _status(r) -> str:
    if r.loading is not None:
        done, total = r.loading
        return f"loading and encoding fields ({done} / {total}) ..." if total else "loading ..."
    if r.loaded is None:
        return r.problem or "no weight-space model loaded"
    m = r.loaded
    held = "unseen by training" if r.object in m.heldout else "a training object"
    n = len(m.rows_of(r.object))
    return (f"{m.checkpoint.name} (step {m.step}) on {len(m.fields['params'])} fields of {len(m.objects)} objects; "
            f"object {r.object} ({held}) has {n} rotations")


def _follow(tab) -> None:
    """Show state changes not made by the sliders (a new object resets its rotations; a load resets all)."""
    r, m = tab.session, tab.session.loaded
    n = len(m.rows_of(r.object)) - 1
    limits = {"object": (m.objects[0], m.objects[-1]), "rotation": (0, n), "reference": (0, n)}
    for key, (lo, hi) in limits.items():
        dpg.configure_item(f"_slider_rot_{key}", min_value=lo, max_value=hi)
    dpg.configure_item("_radio_rot_arm", items=list(m.arms))
    follow({"_slider_rot_object": r.object, "_slider_rot_rotation": r.rotation, "_slider_rot_reference": r.reference,
            "_slider_rot_yaw": r.yaw_deg, "_radio_rot_color": r.color_by, "_radio_rot_arm": r.arm})


def show(tab) -> None:
    """Hand a new frame's side-panel pictures to the window, once per frame."""
    f = tab.view.frame
    if f is None or tab._rot_shown is f:
        return
    tab._rot_shown = f
    show_picture(tab.app, "rot_undo_true", upscale(f.images["undo_true"], THUMB), False, THUMB)
    _slices(tab, f)


FEATURE_COLOURS = {1: "grey", 2: "feature 1 red, feature 2 blue", 3: "features 1-3 as red, green, blue"}


def _slices(tab, f) -> None:
    """One small image per level; the images are made when the level count is first known (or changes)."""
    levels = len(f.slices)
    size = max(24, min(96, (WRAP + 4) // levels - 4))
    if tab._rot_levels != levels:
        tab._rot_levels = levels
        dpg.delete_item("_group_rot_slices", children_only=True)
        for l in range(levels):
            blank_image(tab.app, f"rot_slice_{l}", size, parent="_group_rot_slices")
    for l in range(levels):
        show_picture(tab.app, f"rot_slice_{l}", f.slices[l], False, size)
    m = tab.session.loaded
    res = [lv["resolution"] for lv in m.tokenizer.layout["levels"]] if m is not None else []
    features = m.tokenizer.layout["hash_grid"]["n_features_per_level"] if m is not None else 2
    dpg.set_value("_text_rot_slices", f"{levels} levels, grid resolutions {', '.join(map(str, res))}; colour: "
                                      f"{FEATURE_COLOURS[min(features, 3)]}, each stretched over its own range")
