"""The Worlds tab: an mNIF's family of cube worlds. Four corner worlds and a (u, v) scrub, DDIM sampling,
the nearest training world, latent files and an interpolation video. While the tab is open the big viewport shows
the current world from the flying camera beside the nearest training world's ground truth; callbacks only change
the tab's `WorldsSession`."""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

from app.gui.settings import output_path
from app.gui.tab import Panel, Pictures, Tab
from app.gui.widgets import HEAD, PALE, WRAP, export_controls, follow, path_field, path_input, show_export, tooltip
from app.gui.worlds_session import RES_RANGE, WorldsSession, describe_world
from app.gui.worlds_training import WorldsTraining
from app.gui.worlds_view import SAMPLES, WorldsView

RESOLUTIONS = tuple(r for r in (32, 48, 64, 96, 128) if RES_RANGE[0] <= r <= RES_RANGE[1])
CORNERS = ("a (u0 v0)", "b (u1 v0)", "c (u0 v1)", "d (u1 v1)")
GRID = 120  # the interpolation square's edge on screen (px)
SQUARE_AT = 12  # its top-left corner in the drawlist (px)
INTRO = ("One network that holds a whole family of cube worlds (hue, size, height, turn, offset), each one a short "
         "code (a latent). Mix four training worlds with u and v, or sample a new one, and fly round it with the "
         "usual keys: the big viewport shows the mixed world (left) beside the training world whose code is nearest.")
MNIF_TIP = ("mNIF: a mixture of neural implicit functions. A bank of small networks (bases) is mixed, with weights\n"
            "given by the latent code, into one network that maps a 3-D point to colour and density; the picture\n"
            "is volume-rendered from it. Latent diffusion (DDIM) draws new codes like the training ones.")


class WorldsTab(Tab):
    name, label, settings_key = "worlds", "Worlds", "worlds"

    def __init__(self, app):
        super().__init__(app)
        self.session = WorldsSession(app.scene)
        self.view = WorldsView(app.rasterizer, app.scene)
        self.training = WorldsTraining()
        self.grid_drawn = None  # the (corners, u, v) the interpolation square shows

    def load(self, path) -> None:
        self.session.load_async(self.app.said, path)

    def train_start(self) -> None:
        """The Train on button: the loaded mNIF trains on in the background; the worlds follow it."""
        sessions = self.app.tabs["training"].session
        out = self.training.start(self.session, sessions.runs_dir, sessions.choices.cpu_share)
        self.app.message(f"training {self.session.mnif.path.name} on for {self.training.minutes:g} min in {out}")

    def export(self) -> None:
        self.session.export(self.app.rasterizer, self.app.fly.camera.pose())
        self.app.message(f"writing the interpolation video to {output_path(self.session.video['out'])} ...")

    def close(self) -> None:
        self.session.cancel()
        self.training.stop()
        self.view.close()

    def key(self) -> tuple:
        """What the picture should be of now: (pose, res, latent version)."""
        pose = tuple(float(v) for v in self.app.fly.camera.pose())
        return pose, self.session.res, self.session.version

    def tick(self, now: float) -> bool:
        """Renders only while the tab is open (the View tab pays nothing); True when a new picture came."""
        visible = self.visible()
        if visible:
            self.session.ensure_loaded(self.app.said)
        self.training.follow(self.session)
        done = self.session.outcome()
        if done:
            self.app.message(*done)
        pose, res, version = self.key()
        return self.view.tick(now, visible, (pose, version), res, self.session.snapshot)

    def settled(self) -> bool:
        """With the tab open: its load has ended and, when an mNIF is loaded, the render is of the current latent."""
        f = self.view.frame
        return not self.visible() or self.session.settled(lambda: f is not None and f.key == self.key())

    def viewport(self) -> Pictures | None:
        f, w = self.view.frame, self.session
        if f is None or w.mnif is None:
            return None
        pose, res, version = self.key()
        stale = (f.key[0], f.key[2]) != (pose, version)
        note = (f"rendering... the picture is {time.perf_counter() - f.done_at:.1f} s old" if stale
                else f"mNIF {f.res}² in {f.net_ms:.0f} ms on the CPU; ground truth {f.gt_ms:.1f} ms")
        quick = "  (quick preview; sharper when still)" if f.res < res and not stale else ""
        return Pictures([Panel(f.net, f"mixed world, network {f.res}²" + ("  (rendering...)" if stale else quick)),
                         Panel(f.gt, f"nearest training world #{f.nearest}, ground truth")], note, key=f)

    def build(self) -> None:
        app, g, w, t = self.app, self.app.guard, self.session, self.training
        dpg.add_text(INTRO, color=PALE, wrap=WRAP)
        dpg.add_text("mNIF checkpoint", color=PALE)
        path_field(app, "_input_worlds_mnif", [("Load", self.load)], "_dialog_mnif_load", default=str(w.default),
                   width=230)
        dpg.add_text("", tag="_text_worlds_model", wrap=WRAP)
        tooltip("_text_worlds_model", MNIF_TIP)
        with dpg.group(horizontal=True):
            buttons = (("Train on", self.train_start), ("Pause", t.pause), ("Resume", t.resume), ("Stop", t.stop))
            for label, fn in buttons:
                dpg.add_button(label=label, tag=f"_button_worlds_{label.split()[0].lower()}", callback=g(fn))
            dpg.add_input_float(label="minutes", tag="_input_worlds_minutes", width=70, step=0, format="%.1f",
                                default_value=t.minutes, callback=lambda s, a: setattr(t, "minutes", a))
            app.text_inputs.append("_input_worlds_minutes")
        dpg.add_text("", tag="_text_worlds_training", wrap=WRAP, color=PALE)
        dpg.add_separator()
        dpg.add_text("Mix four training worlds", color=HEAD)
        with dpg.group(horizontal=True):
            for k in range(4):
                dpg.add_input_int(tag=f"_input_worlds_corner_{k}", width=70, step=0, default_value=w.corners[k],
                                  callback=g(lambda s, a, u: w.set_corner(u, a)), user_data=k, on_enter=True)
                app.text_inputs.append(f"_input_worlds_corner_{k}")
        dpg.add_text("corners " + ", ".join(CORNERS) + "; click in the square to move the mix (the dot)", color=PALE,
                     wrap=WRAP)
        with dpg.group(horizontal=True):
            with dpg.group():
                for key in "uv":
                    dpg.add_slider_float(label=key, tag=f"_slider_worlds_{key}", min_value=0.0, max_value=1.0,
                                         width=150, callback=g(lambda s, a, u: w.set_uv(**{u: a})), user_data=key)
            dpg.add_drawlist(GRID + 24, GRID + 34, tag="_draw_worlds_grid")
        with dpg.item_handler_registry() as clicks:  # a click in the square puts (u, v) there
            dpg.add_item_clicked_handler(callback=g(lambda: w.set_uv(*_mouse_uv())))
        dpg.bind_item_handler_registry("_draw_worlds_grid", clicks)

        dpg.add_combo([str(r) for r in RESOLUTIONS], label="render res", tag="_combo_worlds_res", width=100,
                      default_value=str(w.res), callback=g(lambda s, a: w.set_res(int(a))))
        dpg.add_text("", tag="_text_worlds_render", color=PALE, wrap=WRAP)
        dpg.add_text("", tag="_text_worlds_current", wrap=WRAP)
        dpg.add_text("", tag="_text_worlds_nearest", wrap=WRAP)
        dpg.add_separator()
        _sampling(app, w)
        dpg.add_separator()
        _video(app, self)

    def refresh(self) -> None:
        if not self.visible():
            return
        w, m, t = self.session, self.session.mnif, self.training
        _follow(w)
        _grid(self)
        dpg.set_value("_text_worlds_training", t.status())
        enabled = {"train": m is not None and not t.active, "pause": t.state == "running",
                   "resume": t.state == "paused", "stop": t.active, "sample": m is not None and m.diffusion is not None}
        for name, on in enabled.items():
            dpg.configure_item(f"_button_worlds_{name}", enabled=on)
        if m is None:
            dpg.set_value("_text_worlds_model", f"loading {w.loading} ..." if w.loading
                          else f"no mNIF loaded: {w.problem or 'Load mNIF...'}")
        else:
            c = m.model.config
            diffusion = "diffusion model loaded" if m.diffusion is not None else "no diffusion model (Sample is off)"
            dpg.set_value("_text_worlds_model", f"{m.path.name}: step {m.step}, {c.bases} bases, {c.latent_dim}-number "
                                                f"latents, {len(m.latents)} training worlds; {diffusion}")
            i, dist, p = w.nearest()
            dpg.set_value("_text_worlds_current", w.describe())
            dpg.set_value("_text_worlds_nearest", f"nearest training world: #{i}, at code distance {dist:.3f}\n"
                                                  + describe_world(p) + "\n(nearest by code, not by looks: a mix of "
                                                  "four worlds need not look like any one of them)")
        f = self.view.frame
        if f is not None:
            sampled = f"; last DDIM sample {w.sample_ms:.0f} ms" if w.sample_ms is not None else ""
            dpg.set_value("_text_worlds_render", f"mNIF {f.res}² in {f.net_ms:.0f} ms ({SAMPLES} samples/ray, cpu, "
                                                 f"1 thread); rasterizer {f.gt_ms:.1f} ms{sampled}")
        _progress(w)


def _sampling(app, w: WorldsSession) -> None:
    g = app.guard
    dpg.add_text("Sample a new world (latent diffusion, DDIM)", color=HEAD)
    dpg.add_text("latent file: the current world's code", color=PALE)
    path_field(app, "_input_worlds_latent", [("Load", lambda p: app.message(w.load_latent(p))),
                                             ("Save", lambda p: app.message(w.save_latent(p)))],
               "_dialog_latent_load", hint="e.g. latents/mine.safetensors", width=180)
    with dpg.group(horizontal=True):
        for key in ("steps", "seed"):
            dpg.add_input_int(label=key, tag=f"_input_worlds_{key}", width=80, step=0, default_value=getattr(w, key),
                              callback=lambda s, a, u: setattr(w, u, a), user_data=key)
            app.text_inputs.append(f"_input_worlds_{key}")
        dpg.add_button(label="Sample", tag="_button_worlds_sample", callback=g(lambda: app.message(w.sample())))
    tooltip("_button_worlds_sample", "DDIM: a diffusion model turns random noise into a new latent code in a few dozen "
            "steps;\nmore steps, closer to the codes it learned. Each press draws another (the seed moves on).")


def _video(app, tab: WorldsTab) -> None:
    o = tab.session.video
    dpg.add_text("Interpolation video (this camera, round the corners)", color=HEAD)
    with dpg.group(horizontal=True):
        for key in ("frames", "fps"):
            dpg.add_input_int(label=key, tag=f"_input_worlds_{key}", width=70, step=0, default_value=o[key],
                              callback=lambda s, a, u: o.update({u: a}), user_data=key)
            app.text_inputs.append(f"_input_worlds_{key}")
    path_input(app, "_input_worlds_out", o["out"], lambda path: o.update(out=path), "_dialog_worlds_video", 260)
    dpg.add_text("", tag="_text_worlds_out", color=PALE, wrap=WRAP)
    export_controls(app, "worlds", tab.session, tab.export, WRAP)


def _mouse_uv() -> tuple[float, float]:
    """(u, v) under the mouse in the interpolation square's drawlist, clamped to the square."""
    (mx, my), (x, y) = dpg.get_mouse_pos(local=False), dpg.get_item_rect_min("_draw_worlds_grid")
    clamp = lambda t: min(1.0, max(0.0, t))
    return clamp((mx - x - SQUARE_AT) / GRID), clamp(1 - (my - y - SQUARE_AT) / GRID)


def _grid(tab: WorldsTab) -> None:
    """The interpolation square: the four corner worlds and where (u, v) lies between them."""
    w = tab.session
    key = (tuple(w.corners), w.u, w.v, w.override is not None)
    if tab.grid_drawn == key:
        return
    tab.grid_drawn = key
    dpg.delete_item("_draw_worlds_grid", children_only=True)
    o, n = SQUARE_AT, GRID
    dpg.draw_rectangle((o, o), (o + n, o + n), color=(120, 120, 130), parent="_draw_worlds_grid")
    for k in range(1, 4):  # quarter lines
        t = o + n * k / 4
        dpg.draw_line((t, o), (t, o + n), color=(70, 70, 80), parent="_draw_worlds_grid")
        dpg.draw_line((o, t), (o + n, t), color=(70, 70, 80), parent="_draw_worlds_grid")
    for (cu, cv), name, idx in zip(((0, 0), (1, 0), (0, 1), (1, 1)), "abcd", w.corners):
        x, y = o + cu * n, o + (1 - cv) * n
        dpg.draw_text((x - 10 if cu == 0 else x - 20, y + 1 if cv == 0 else y - 12), f"{name}{idx}", size=11,
                      color=(200, 200, 210), parent="_draw_worlds_grid")
    colour = (120, 120, 120) if w.override is not None else (255, 210, 90)  # grey: a sampled latent, off the square
    dpg.draw_circle((o + w.u * n, o + (1 - w.v) * n), 5, fill=colour, color=colour, parent="_draw_worlds_grid")


def _follow(w: WorldsSession) -> None:
    """Show state changes not made by typing (a new mNIF resets the corners; Sample moves the seed on)."""
    follow({f"_input_worlds_corner_{k}": w.corners[k] for k in range(4)} |
           {"_input_worlds_seed": w.seed, "_input_worlds_steps": w.steps, "_slider_worlds_u": w.u,
            "_slider_worlds_v": w.v, "_input_worlds_frames": w.video["frames"], "_input_worlds_fps": w.video["fps"],
            "_input_worlds_out": w.video["out"], "_combo_worlds_res": str(w.res)})


def _progress(w: WorldsSession) -> None:
    dpg.set_value("_text_worlds_out", f"writes {output_path(w.video['out'])}")
    show_export("worlds", w)
