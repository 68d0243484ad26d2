"""The Training tab: choose a run, Start / Pause / Resume / Reset, status and live loss / PSNR plots."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from app.gui.training_session import BUDGET_UNITS, RECIPES, TRAIN_KINDS, TRAIN_RESOLUTIONS
from renderer.models import PIXEL_MODELS

DATA_MODES = ("stream", "fixed")


def build(app) -> None:
    g, c = app.guard, app.session.choices
    dpg.add_combo(list(TRAIN_KINDS), label="kind", tag="_combo_train_kind", width=160, default_value=c.kind,
                  callback=lambda s, a: setattr(app.session.choices, "kind", a))
    with dpg.tooltip("_combo_train_kind"):
        dpg.add_text("pixel: the model learns pictures; latent: it learns the scene TinyVAE's latents (res 128 or more)\n"
                     "and the viewport decodes them; vae: the scene TinyVAE itself learns the renders")
    dpg.add_combo(list(PIXEL_MODELS), label="model", tag="_combo_train_model", width=160, default_value=c.model,
                  callback=lambda s, a: setattr(app.session.choices, "model", a))
    dpg.add_combo([str(r) for r in TRAIN_RESOLUTIONS], label="resolution", tag="_combo_train_res", width=160,
                  default_value=str(c.res), callback=lambda s, a: setattr(app.session.choices, "res", int(a)))
    dpg.add_combo(list(DATA_MODES), label="data", tag="_combo_train_data", width=160, default_value=c.data,
                  callback=lambda s, a: setattr(app.session.choices, "data", a))
    dpg.add_combo(list(RECIPES), label="recipe", tag="_combo_train_recipe", width=160, default_value=c.recipe,
                  callback=lambda s, a: setattr(app.session.choices, "recipe", a))
    with dpg.tooltip("_combo_train_recipe"):
        dpg.add_text("shipped: the settings that trained the default network in assets/\n"
                     "defaults: the model's own defaults (posemlp: the blog's pose input)")
    with dpg.group(horizontal=True):
        dpg.add_input_float(label="", tag="_input_budget", width=100, default_value=float(c.budget), step=0, format="%.0f",
                            callback=lambda s, a: setattr(app.session.choices, "budget", a))
        dpg.add_combo(list(BUDGET_UNITS), tag="_combo_budget_unit", width=100, default_value=c.unit,
                      callback=lambda s, a: setattr(app.session.choices, "unit", a))
        dpg.add_text("budget")
    app.text_inputs.append("_input_budget")
    dpg.add_slider_float(label="training CPU share", tag="_slider_cpu_share", width=160, min_value=0.1, max_value=1.0,
                         default_value=c.cpu_share, format="%.2f", callback=g(lambda s, a: app.set_cpu_share(a)))
    with dpg.tooltip("_slider_cpu_share"):
        dpg.add_text("The share of this machine's processor the run keeps to (it sleeps when it runs ahead);\n"
                     "the viewport renders the network with the rest. Changes apply to a run that is going.")
    with dpg.group(horizontal=True):
        dpg.add_button(label="Start", tag="_button_start", width=70, callback=g(app.train_start))
        dpg.add_button(label="Pause", tag="_button_pause", width=70, callback=g(app.session.pause))
        dpg.add_button(label="Resume", tag="_button_resume", width=70, callback=g(app.session.resume))
        dpg.add_button(label="Reset", tag="_button_reset", width=70, callback=g(app.train_reset))
    dpg.add_text("", tag="_text_train_status", wrap=0)
    dpg.add_text("The viewport follows the run's weights as it trains (twice a second); "
                 "the loss and PSNR curves follow below.", color=(150, 150, 150), wrap=0)


def build_plots(app) -> None:
    """Loss and PSNR curves, one above the other, under the training controls."""
    dpg.add_text("Training curves appear here once a run starts.", tag="_text_no_plots", color=(150, 150, 150))
    with dpg.group(tag="_group_plots", show=False):
        _plot("loss", "MSE", -1, log=True, series=(("train", "_series_train_loss"), ("held-out", "_series_test_loss")))
        _plot("psnr", "PSNR (dB)", -1, log=False, series=(("train", "_series_train_psnr"), ("held-out", "_series_test_psnr")))


def _plot(name: str, ylabel: str, width: int, log: bool, series) -> None:
    with dpg.plot(tag=f"_plot_{name}", height=200, width=width, no_menus=True, no_box_select=True, no_title=True):
        dpg.add_plot_legend(location=dpg.mvPlot_Location_SouthWest if name == "loss" else dpg.mvPlot_Location_SouthEast)
        dpg.add_plot_axis(dpg.mvXAxis, label="step", tag=f"_axis_{name}_x", auto_fit=True)
        with dpg.plot_axis(dpg.mvYAxis, label=ylabel, tag=f"_axis_{name}_y", auto_fit=True,
                           scale=dpg.mvPlotScale_Log10 if log else dpg.mvPlotScale_Linear):
            for label, tag in series:
                dpg.add_line_series([], [], label=label, tag=tag)


def refresh(app) -> None:
    s = app.session
    state = s.state
    c = s.choices
    for tag, value in (("_combo_train_kind", c.kind), ("_combo_train_model", c.model), ("_combo_train_res", str(c.res)), ("_combo_train_data", c.data),
                       ("_combo_train_recipe", c.recipe), ("_combo_budget_unit", c.unit)):
        dpg.set_value(tag, value)
    if not dpg.is_item_active("_input_budget"):
        dpg.set_value("_input_budget", float(c.budget))
    if not dpg.is_item_active("_slider_cpu_share"):
        dpg.set_value("_slider_cpu_share", c.cpu_share)
    dpg.set_value("_text_train_status", s.status())
    dpg.configure_item("_button_start", enabled=not s.active)
    dpg.configure_item("_button_pause", enabled=state == "running")
    dpg.configure_item("_button_resume", enabled=state == "paused")
    dpg.configure_item("_button_reset", enabled=s.proc is not None)
    c = s.curves
    key = (id(c), len(c.train_step), len(c.test_step))
    if key != getattr(app, "_plotted", None):  # redraw the curves only when a record arrived
        app._plotted = key
        dpg.configure_item("_group_plots", show=bool(c.train_step))  # empty plots cost a software-GL frame ~4 ms
        dpg.configure_item("_text_no_plots", show=not c.train_step)
        _limits("loss", (1e-4, 1.0), bool(c.train_step))
        _limits("psnr", (10.0, 40.0), bool(c.train_step))
        dpg.set_value("_series_train_loss", [c.train_step, c.train_loss])
        dpg.set_value("_series_test_loss", [c.test_step, c.test_loss])
        dpg.set_value("_series_train_psnr", [c.train_step, c.train_psnr])
        dpg.set_value("_series_test_psnr", [c.test_step, c.test_psnr])


def _limits(name: str, empty: tuple[float, float], has_data: bool) -> None:
    """Sensible fixed axes before the first record; fit to the data after."""
    if has_data:
        dpg.set_axis_limits_auto(f"_axis_{name}_y")
        dpg.set_axis_limits_auto(f"_axis_{name}_x")
    else:
        dpg.set_axis_limits(f"_axis_{name}_y", *empty)
        dpg.set_axis_limits(f"_axis_{name}_x", 0, 1000)
