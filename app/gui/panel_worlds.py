"""The Worlds tab: an mNIF's family of cube worlds. Four corner worlds and a (u, v) scrub, DDIM sampling,
the nearest training world, latent files and an interpolation video; callbacks only change `app.worlds`."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from app.gui.worlds_session import RES_RANGE, describe_world
from app.gui.worlds_view import SAMPLES, SHOWN

HEAD = (150, 200, 255)
RESOLUTIONS = tuple(r for r in (32, 48, 64, 96, 128) if RES_RANGE[0] <= r <= RES_RANGE[1])
CORNERS = ("a (u0 v0)", "b (u1 v0)", "c (u0 v1)", "d (u1 v1)")
WRAP = 2 * SHOWN - 16  # text stays clear of the side panel's scroll bar


def build(app) -> None:
    g, w = app.guard, app.worlds
    with dpg.group(horizontal=True):
        dpg.add_button(label="Load mNIF...", callback=lambda: dpg.show_item("_dialog_mnif_load"))
        dpg.add_button(label="Load latent...", callback=lambda: dpg.show_item("_dialog_latent_load"))
        dpg.add_button(label="Save latent...", callback=lambda: dpg.show_item("_dialog_latent_save"))
    dpg.add_text("", tag="_text_worlds_model", wrap=WRAP)
    with dpg.group(horizontal=True):
        t = app.worlds_training
        dpg.add_button(label="Train on", tag="_button_worlds_train", callback=g(app.worlds_train_start))
        dpg.add_button(label="Pause", tag="_button_worlds_pause", callback=g(t.pause))
        dpg.add_button(label="Resume", tag="_button_worlds_resume", callback=g(t.resume))
        dpg.add_button(label="Stop", tag="_button_worlds_stop", callback=g(t.stop))
        dpg.add_input_float(label="minutes", tag="_input_worlds_minutes", width=70, step=0, format="%.1f",
                            default_value=t.minutes, callback=lambda s, a: setattr(t, "minutes", a))
        app.text_inputs.append("_input_worlds_minutes")
    dpg.add_text("", tag="_text_worlds_training", wrap=WRAP, color=(170, 170, 170))
    with dpg.group(horizontal=True):
        dpg.add_text("mNIF render", tag="_text_worlds_left")
        dpg.add_text("nearest world", tag="_text_worlds_right", indent=SHOWN + 8)
    with dpg.group(horizontal=True, tag="_group_worlds_images"):
        for side in ("worlds_net", "worlds_gt"):
            blank = dpg.add_static_texture(1, 1, [0.1, 0.1, 0.1, 1.0], parent="_registry")
            dpg.add_image(blank, tag=f"_image_{side}", width=SHOWN, height=SHOWN)
            app._shown[side] = (None, blank)
    dpg.add_text("", tag="_text_worlds_render", color=(170, 170, 170), wrap=WRAP)
    dpg.add_separator()
    dpg.add_text("Interpolate four training worlds", color=HEAD)
    with dpg.group(horizontal=True):
        for k in range(4):
            dpg.add_input_int(tag=f"_input_worlds_corner_{k}", width=70, step=0, default_value=w.corners[k],
                              callback=g(lambda s, a, u: w.set_corner(u, a)), user_data=k, on_enter=True)
            app.text_inputs.append(f"_input_worlds_corner_{k}")
    dpg.add_text("corners " + ", ".join(CORNERS), color=(170, 170, 170))
    dpg.add_slider_float(label="u", tag="_slider_worlds_u", min_value=0.0, max_value=1.0, width=SHOWN + 100,
                         callback=g(lambda s, a: w.set_uv(u=a)))
    dpg.add_slider_float(label="v", tag="_slider_worlds_v", min_value=0.0, max_value=1.0, width=SHOWN + 100,
                         callback=g(lambda s, a: w.set_uv(v=a)))
    dpg.add_combo([str(r) for r in RESOLUTIONS], label="render res", tag="_combo_worlds_res", width=100,
                  default_value=str(w.res), callback=g(lambda s, a: w.set_res(int(a))))
    dpg.add_text("", tag="_text_worlds_current", wrap=WRAP)
    dpg.add_text("", tag="_text_worlds_nearest", wrap=WRAP)
    dpg.add_separator()
    _sampling(app)
    dpg.add_separator()
    _video(app)


def _sampling(app) -> None:
    g, w = app.guard, app.worlds
    dpg.add_text("Sample a new world (latent diffusion, DDIM)", color=HEAD)
    with dpg.group(horizontal=True):
        dpg.add_input_int(label="steps", tag="_input_worlds_steps", width=80, step=0, default_value=w.steps,
                          callback=lambda s, a: setattr(w, "steps", a))
        dpg.add_input_int(label="seed", tag="_input_worlds_seed", width=80, step=0, default_value=w.seed,
                          callback=lambda s, a: setattr(w, "seed", a))
        dpg.add_button(label="Sample", tag="_button_worlds_sample", callback=g(lambda: app.message(w.sample())))
    app.text_inputs += ["_input_worlds_steps", "_input_worlds_seed"]


def _video(app) -> None:
    g, o = app.guard, app.worlds.video
    dpg.add_text("Interpolation video (this camera, round the corners)", color=HEAD)
    with dpg.group(horizontal=True):
        for key in ("frames", "fps"):
            dpg.add_input_int(label=key, tag=f"_input_worlds_{key}", width=70, step=0, default_value=o[key],
                              callback=lambda s, a, u: o.update({u: a}), user_data=key)
            app.text_inputs.append(f"_input_worlds_{key}")
    with dpg.group(horizontal=True):
        dpg.add_input_text(tag="_input_worlds_out", width=260, default_value=o["out"], callback=lambda s, a: o.update(out=a))
        dpg.add_button(label="...", callback=lambda: dpg.show_item("_dialog_worlds_video"))
    app.text_inputs.append("_input_worlds_out")
    with dpg.group(horizontal=True):
        dpg.add_button(label="Export", tag="_button_worlds_export", callback=g(app.worlds_export))
        dpg.add_button(label="Cancel", tag="_button_worlds_cancel", callback=g(app.worlds.cancel))
    dpg.add_progress_bar(tag="_progress_worlds", width=SHOWN * 2, default_value=0.0, overlay="")


def set_out(app, path: str) -> None:
    app.worlds.video["out"] = path
    dpg.set_value("_input_worlds_out", path)


def visible() -> bool:
    """Whether the Worlds tab is the open one (renders are asked for only then)."""
    return dpg.get_value("_tabs") in ("_tab_worlds", dpg.get_alias_id("_tab_worlds"))


def refresh(app) -> None:
    if not visible():
        return
    w, m, t = app.worlds, app.worlds.mnif, app.worlds_training
    _follow(app)
    dpg.set_value("_text_worlds_training", t.status())
    dpg.configure_item("_button_worlds_train", enabled=m is not None and not t.active)
    dpg.configure_item("_button_worlds_pause", enabled=t.state == "running")
    dpg.configure_item("_button_worlds_resume", enabled=t.state == "paused")
    dpg.configure_item("_button_worlds_stop", enabled=t.active)
    dpg.configure_item("_button_worlds_sample", enabled=m is not None and m.diffusion is not None)
    if m is None:
        dpg.set_value("_text_worlds_model", f"loading {w.loading} ..." if w.loading else f"no mNIF loaded: {w.problem or 'Load mNIF...'}")
    else:
        c = m.model.config
        diffusion = "diffusion model loaded" if m.diffusion is not None else "no diffusion model (Sample is off)"
        dpg.set_value("_text_worlds_model", f"{m.path.name}: step {m.step}, {c.bases} bases, {c.latent_dim}-number latents, "
                                            f"{len(m.latents)} training worlds; {diffusion}")
        i, dist, p = w.nearest()
        dpg.set_value("_text_worlds_right", f"nearest world #{i}")
        dpg.set_value("_text_worlds_current", w.describe())
        dpg.set_value("_text_worlds_nearest", f"nearest training world (L2 in latent space):\n#{i}, at distance {dist:.3f}\n"
                                              + describe_world(p))
    f = app.worlds_view.frame
    dpg.set_value("_text_worlds_left", f"mNIF {f.res}² (volume-rendered)" if f else "mNIF render")
    if f is not None:
        sampled = f"; last DDIM sample {w.sample_ms:.0f} ms" if w.sample_ms is not None else ""
        dpg.set_value("_text_worlds_render", f"mNIF {f.res}² in {f.net_ms:.0f} ms ({SAMPLES} samples/ray, cpu, 1 thread); "
                                             f"rasterizer {f.gt_ms:.1f} ms{sampled}")
    _progress(app)


def _follow(app) -> None:
    """Show state changes not made by typing (a new mNIF resets the corners; Sample moves the seed on)."""
    w = app.worlds
    values = {f"_input_worlds_corner_{k}": w.corners[k] for k in range(4)}
    values.update({"_input_worlds_seed": w.seed, "_input_worlds_steps": w.steps, "_slider_worlds_u": w.u,
                   "_slider_worlds_v": w.v, "_input_worlds_frames": w.video["frames"], "_input_worlds_fps": w.video["fps"],
                   "_input_worlds_out": w.video["out"], "_combo_worlds_res": str(w.res)})
    for tag, value in values.items():
        if not dpg.is_item_active(tag) and dpg.get_value(tag) != value:
            dpg.set_value(tag, value)


def _progress(app) -> None:
    job = app.worlds.job
    running = job is not None and not job.finished
    dpg.configure_item("_button_worlds_export", enabled=not running)
    dpg.configure_item("_button_worlds_cancel", enabled=running)
    if job is not None:
        dpg.set_value("_progress_worlds", job.done / max(1, job.total))
        dpg.configure_item("_progress_worlds", overlay=f"{job.done} / {job.total} frames" + ("" if running else " - done"))
