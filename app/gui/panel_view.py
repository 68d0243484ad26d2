"""The View tab: the network's render mode (pixels or TinyVAE latents), the shipped networks a click away, view
mode, split, network resolution with dynamic resolution and its target frame rate, upscaling, display size; the
camera's pose and speed."""

from __future__ import annotations

import json
import math

import dearpygui.dearpygui as dpg

from app.gui.state import FLYING_RESOLUTIONS, NETWORK_KINDS, NET_RESOLUTIONS, UPSCALE, VIEW_MODES
from app.gui.tab import Tab
from app.gui.topdown import draw_map
from app.gui.widgets import GREY, HEAD, follow, tooltip
from app.gui.training_session import ASSETS

DISPLAY_SIZES = (320, 384, 448, 512, 640)
MAP = 130  # the top-down map's edge (px)
SHIPPED = (("ngp_256.safetensors", "NGP field"), ("posemlp_64.safetensors", "posemlp 64²"),
           ("posemlp_32.safetensors", "posemlp 32²"))
"""Pixel networks in assets/ a click opens; the first found opens on a first launch."""
TIPS = {
    "_radio_mode": "Abs error heat map: |network - ground truth| per pixel, dark where they agree (keys 1-6 switch views).\n"
                   "Latent channels: what a latent network predicts before the TinyVAE decoder turns it into pixels.",
    "_check_dynamic": "While the camera moves, the network renders at the resolution that keeps this many pictures a "
                      "second (at least 64²);\nonce it stops, at the network res above. Off: always the network res.",
    "_slider_split": "Split slider: ground truth left of the line, network right of it, in one picture.",
    "_combo_net_res": "The network draws a picture this many pixels square when the camera rests;\n"
                      "the window scales it to the display size. More pixels: sharper and slower.",
    "_combo_flying_res": "Latent networks only: while the camera moves they decode at most this size (a 512² decode takes\n"
                         "seconds on a CPU); full size once it rests.",
    "_radio_upscale": "How the network's picture is scaled up to the display: nearest shows its pixels as blocks,\n"
                      "bilinear blends them.",
    "_slider_gain": "Heat-map contrast: an error of 1 / gain is drawn at full brightness.",
}
"""The View tab's tooltips: what each control does, in plain words."""
POSE_FIELDS = (("x", "x (m)", 1.0), ("z", "z (m)", 1.0), ("yaw", "yaw (deg)", math.pi / 180),
               ("y", "height y (m)", 1.0), ("pitch", "pitch (deg)", math.pi / 180))


class ViewTab(Tab):
    name, label = "view", "View"

    def __init__(self, app):
        super().__init__(app)
        self._view_shown = None  # the view settings' version last put in the widgets
        self._mapped = None  # the camera pose the map shows

    def build(self) -> None:
        app, g, v = self.app, self.app.guard, self.app.view
        dpg.add_text(INTRO, color=GREY, wrap=0)
        labels = {label: mode for mode, label in VIEW_MODES.items()}
        kinds = {label: kind for kind, label in NETWORK_KINDS.items()}
        dpg.add_text("Network", color=HEAD)
        dpg.add_radio_button(list(kinds), tag="_radio_network", horizontal=True,
                             default_value=NETWORK_KINDS["pixels"], callback=g(lambda s, a: app.show_network(kinds[a])))
        with dpg.group(horizontal=True):
            dpg.add_text("shipped:")
            for name, label in SHIPPED:
                if (ASSETS / name).exists():
                    tag = f"_button_shipped_{name.split('.')[0]}"
                    dpg.add_button(label=label, tag=tag, user_data=name,
                                   callback=g(lambda s, a, u: app.open_checkpoint(ASSETS / u)))
                    tooltip(tag, _figures(ASSETS / name))
        dpg.add_separator()
        dpg.add_text("Viewport", color=HEAD)
        dpg.add_radio_button(list(labels), tag="_radio_mode", default_value=VIEW_MODES[v.mode],
                             callback=g(lambda s, a: v.set(mode=labels[a])))
        dpg.add_slider_float(label="split", tag="_slider_split", min_value=0.0, max_value=1.0, default_value=v.split,
                             width=200, callback=g(lambda s, a: v.set(split=a)))
        dpg.add_combo([str(r) for r in NET_RESOLUTIONS], label="network res", tag="_combo_net_res", width=200,
                      default_value=str(v.net_res), callback=g(lambda s, a: v.set(net_res=int(a))))
        with dpg.group(horizontal=True):
            dpg.add_checkbox(label="dynamic res, target", tag="_check_dynamic", default_value=v.dynamic,
                             callback=g(lambda s, a: v.set(dynamic=bool(a))))
            dpg.add_input_float(tag="_input_target_fps", width=90, step=0, format="%.0f fps",
                                default_value=v.target_fps, on_enter=True, callback=g(lambda s, a: v.set(target_fps=a)))
        app.text_inputs.append("_input_target_fps")
        dpg.add_combo([str(r) for r in FLYING_RESOLUTIONS], label="latent res while flying", tag="_combo_flying_res",
                      width=200, default_value=str(v.flying_res), callback=g(lambda s, a: v.set(flying_res=int(a))))
        dpg.add_radio_button(list(UPSCALE), tag="_radio_upscale", horizontal=True, default_value=v.upscale,
                             callback=g(lambda s, a: v.set(upscale=a)))
        dpg.add_combo([str(d) for d in DISPLAY_SIZES], label="display size", tag="_combo_display", width=200,
                      default_value=str(v.display), callback=g(lambda s, a: v.set(display=int(a))))
        dpg.add_slider_float(label="error gain", tag="_slider_gain", min_value=1.0, max_value=20.0,
                             default_value=v.error_gain, width=200, callback=g(lambda s, a: v.set(error_gain=a)))
        for tag, tip in TIPS.items():
            tooltip(tag, tip)
        dpg.add_separator()
        _camera(app)

    def refresh(self) -> None:
        app, c, v = self.app, self.app.fly.camera, self.app.view
        if self._view_shown != v.version:  # changed by a key, a load or the settings file
            self._view_shown = v.version
            for tag, value in (("_radio_mode", VIEW_MODES[v.mode]), ("_combo_net_res", str(v.net_res)),
                               ("_combo_flying_res", str(v.flying_res)), ("_radio_upscale", v.upscale),
                               ("_combo_display", str(v.display)), ("_slider_split", v.split),
                               ("_slider_gain", v.error_gain), ("_check_dynamic", v.dynamic),
                               ("_input_target_fps", v.target_fps)):
                dpg.set_value(tag, value)
        for name, _, scale in POSE_FIELDS:
            dpg.configure_item(f"_input_pose_{name}", enabled=app.fly.free or name not in ("y", "pitch"))
        dpg.set_value("_check_free", app.fly.free)
        follow({f"_input_pose_{name}": getattr(c, name) / scale for name, _, scale in POSE_FIELDS} |
               {"_radio_network": NETWORK_KINDS[app.switching or app.shown_kind() or "pixels"],  # or being switched to
                "_slider_speed": app.fly.speed})
        dpg.configure_item("_slider_split", enabled=v.mode == "split")
        pose = tuple(vars(c).values())
        if self.visible() and self._mapped != pose:
            self._mapped = pose
            draw_map("_draw_view_map", MAP, app.scene, c)


INTRO = ("Fly the camera (WASD, arrows, drag the picture) and compare the ground truth (left, drawn by the "
         "rasterizer) with what the network draws from the same pose (right). The line under the pictures says how "
         "fast and how close: PSNR is higher when closer, and above 30 dB the two are hard to tell apart.")


def _figures(path) -> str:
    """What a shipped network is and how well it did, from the record beside it."""
    try:
        r = json.loads(path.with_suffix(".json").read_text())
        m, train = r.get("metrics", {}), r.get("train", {})
        return (f"{r['model']['kind']} trained at {train.get('res')}², step {r.get('step')}: held-out PSNR "
                f"{m['test_psnr_pooled']:.1f} dB pooled over pixels at {m.get('res', train.get('res'))}²\n"
                f"(uniform poses; assets/README.md has the aimed-view figures). {path.name}")
    except (OSError, ValueError, KeyError, TypeError):
        return path.name


def _camera(app) -> None:
    g, fly = app.guard, app.fly
    dpg.add_text("Camera (WASD / arrows, drag, Q/E; R resets)", color=HEAD)
    with dpg.group(horizontal=True):
        dpg.add_drawlist(MAP, MAP, tag="_draw_view_map")
        dpg.add_text("seen from above:\ngreen, the camera\nand what it sees;\nred, the cube;\nthe square, where\n"
                     "the networks were\ntrained to look", color=GREY)
    for name, label, scale in POSE_FIELDS:
        tag = f"_input_pose_{name}"
        dpg.add_input_float(label=label, tag=tag, width=200, step=0, format="%.3f", on_enter=True,
                            callback=g(lambda s, a, u: fly.set_pose(**{u[0]: a * u[1]})), user_data=(name, scale))
        app.text_inputs.append(tag)
    dpg.add_checkbox(label="free mode: height and pitch, leave the bounds (F)", tag="_check_free",
                     default_value=fly.free, callback=g(lambda s, a: fly.set_free(a)))
    dpg.add_slider_float(label="speed (m/s)", tag="_slider_speed", min_value=0.1, max_value=5.0, default_value=fly.speed,
                         width=200, callback=g(lambda s, a: setattr(fly, "speed", a)))
    with dpg.group(horizontal=True):
        dpg.add_button(label="Reset camera (R)", callback=g(fly.reset))
        dpg.add_button(label="Into the cube", callback=g(lambda: fly.set_pose(x=0.0, z=0.3, yaw=0.0)))
        dpg.add_button(label="Shortcuts (H)", callback=app.toggle_help)

