"""The Training tab: choose a run; Start / Pause / Resume / Stop / Reset; the run's folder; live loss and PSNR curves.

Stop ends the run with a final checkpoint and keeps its curves on screen; Reset also clears the curves and puts the
network that was on screen before the run back. The tab owns the `TrainingSession` and follows the run's weights.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import asdict

import dearpygui.dearpygui as dpg

from app.gui.tab import Tab
from app.gui.training_session import BUDGET_UNITS, RECIPES, TRAIN_KINDS, TRAIN_RESOLUTIONS, TrainChoices, TrainingSession
from app.gui.widgets import GREY, follow, tooltip
from renderer.errors import RedcubeError
from renderer.models import PIXEL_MODELS
from training.control import threads_for
from training.trainer import TrainConfig

POLL_EVERY_S = 0.25  # training poll / plot refresh interval
INTRO = ("Teach a small network to draw this world from the camera's pose alone. Start a run and watch the "
         "viewport: the right-hand picture is the network as it learns; the left is the ground truth it copies.")
PSNR_WORDS = ("PSNR: how close the network's pictures are to the ground truth, in dB; higher is better. "
              "Above 30 dB the two are hard to tell apart; 20 dB looks blurry. Held-out: views never trained on.")

COMBOS = (  # (choice, label, values, tooltip): the run's choices picked from a list
    ("kind", "kind", TRAIN_KINDS, "pixel: the model learns pictures; latent: it learns the scene TinyVAE's latents "
     "(res 128 or more)\nand the viewport decodes them; vae: the scene TinyVAE itself learns the renders"),
    ("model", "model", PIXEL_MODELS, None),
    ("res", "resolution", TRAIN_RESOLUTIONS, None),
    ("data", "data", TrainConfig.DATA_MODES,
     "stream: fresh random views rendered while training (never the same picture twice)\n"
     "fixed: one set of views rendered once and reused"),
    ("recipe", "recipe", RECIPES, "shipped: the settings that trained the default network in assets/\n"
     "defaults: the model's own defaults (posemlp: the blog's pose input)"),
)


class TrainingTab(Tab):
    name, label, settings_key = "training", "Training", "training"

    def __init__(self, app):
        super().__init__(app)
        self.session = TrainingSession(TrainChoices.from_dict(app.settings.training))
        self.before_run: str | None = None  # the network on screen when the run started: Reset puts it back
        self._plotted = None  # (curves, record counts) the plots show
        self._last_poll = 0.0

    # -- buttons ---------------------------------------------------------------------------------
    def start(self) -> None:
        shown = self.app.slot.snapshot()
        if shown is not None and not self.session.owns(shown.path):
            self.before_run = str(shown.path)
        self.session.start()
        c = self.session.choices
        what = "the scene TinyVAE" if c.kind == "vae" else f"{c.model} ({c.kind}) at {c.res}²"
        self.app.message(f"training {what} in {self.session.out_dir}")

    def stop(self) -> None:
        self.session.stop()
        self.app.message(f"stopping: the run writes its final checkpoint to {self.session.out_dir}; the curves stay.")

    def reset(self) -> None:
        """Stop the run, clear the curves, and show the network from before the run again."""
        self.session.reset()
        back = self.before_run or self.app.defaults["pixels"]
        if back is not None:
            self.app.open_checkpoint(back)
        self.app.message("training reset; the run's last checkpoint stays on disk.")

    def shipped(self) -> None:
        """Back to the network that ships with redcube (stops nothing)."""
        path = self.app.defaults["pixels"]
        if path is None:
            raise RedcubeError("no shipped network in assets/; reinstall redcube or load a checkpoint (File > Load checkpoint).")
        self.app.open_checkpoint(path)

    def open_folder(self) -> None:
        folder = self.session.out_dir or self.session.runs_dir
        folder.mkdir(parents=True, exist_ok=True)
        opener = shutil.which("xdg-open") or shutil.which("open")
        if opener is None:
            raise RedcubeError(f"no file manager to open {folder} with (xdg-open is missing); open that folder by hand.")
        subprocess.Popen([opener, str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.app.message(f"opened {folder}")

    def set_cpu_share(self, share: float) -> None:
        self.session.set_cpu_share(share)
        self._share_cores()

    def keys(self) -> dict:
        return {"p": self.session.toggle}

    # -- per frame ---------------------------------------------------------------------------------
    def tick(self, now: float) -> bool:
        """Poll the run a few times a second: its records, its newest weights for the viewport."""
        if now - self._last_poll < POLL_EVERY_S:
            return False
        self._last_poll = now
        app, s = self.app, self.session
        records = s.poll()
        if s.state == "failed" and not s.reported_failure:
            s.reported_failure = True
            app.message(f"training stopped: {s.error or 'the training process ended without a final record.'}", "error")
        live, ckpt = s.new_files()
        shown = app.slot.snapshot()
        if live is not None and shown is not None and s.owns(shown.path):  # the run is on screen: its weights alone
            app.slot.load_weights(live, lambda m: None)
        elif ckpt is not None and not (shown is not None and s.owns(shown.path)):  # the run's first checkpoint
            app.slot.load(ckpt, lambda m, e: app.later(lambda: self._followed(m, e)), publish=False)
        self._share_cores()
        return bool(records)

    def _followed(self, loaded, err) -> None:
        """A training checkpoint arrived: it is what the next launch opens."""
        if err:
            self.app.message(err, "error")
        elif not self.session.owns(loaded.path) or loaded.record["model"]["kind"] == "tinyvae":
            self.app.slot.publish(loaded)  # a run already reset, or a TinyVAE's round trip (not what a launch opens)
        else:
            self.app.settings.checkpoint = str(loaded.path)
            # a pixel network is shown at the resolution it learns at (256² of a 64² run costs 16x); an NGP field has
            # no resolution of its own and the fused renderer draws the view's 256² in ~0.15 s: the view keeps its own
            self.app.show(loaded, None if loaded.record["model"]["kind"] == "ngp" else int(self.session.choices.res))

    def _share_cores(self) -> None:
        """The viewport renders with the cores a running training leaves it (all of them otherwise)."""
        cores = os.cpu_count() or 1
        if self.session.state == "running":
            cores = max(1, cores - threads_for(self.session.choices.cpu_share))
        self.app.viewer.net_view.threads = cores

    def restore(self, remembered: dict) -> None:
        """Nothing left to take: the session was made from them."""

    def choices(self) -> dict:
        return asdict(self.session.choices)

    def close(self) -> None:
        self.session.close()

    def shown_step(self) -> int | None:
        """The step of the run's weights on screen (the number the viewport's caption shows), else None."""
        net, shown = self.app.viewer.net, self.app.slot.snapshot()
        if net is None or shown is None or not self.session.owns(shown.path):
            return None
        return net.step

    # -- widgets -----------------------------------------------------------------------------------
    def build(self) -> None:
        g, c = self.app.guard, self.session.choices
        dpg.add_text(INTRO, color=GREY, wrap=0)
        for name, label, values, tip in COMBOS:
            tag = f"_combo_train_{name}"
            dpg.add_combo([str(v) for v in values], label=label, tag=tag, width=160, user_data=name,
                          default_value=str(getattr(c, name)),
                          callback=lambda s, a, u: setattr(self.session.choices, u, int(a) if u == "res" else a))
            if tip:
                tooltip(tag, tip)
        with dpg.group(horizontal=True):
            dpg.add_input_float(label="", tag="_input_budget", width=100, default_value=float(c.budget), step=0,
                                format="%.0f", callback=lambda s, a: setattr(self.session.choices, "budget", a))
            dpg.add_combo(list(BUDGET_UNITS), tag="_combo_budget_unit", width=100, default_value=c.unit,
                          callback=lambda s, a: setattr(self.session.choices, "unit", a))
            dpg.add_text("budget")
        self.app.text_inputs.append("_input_budget")
        dpg.add_slider_float(label="training CPU share", tag="_slider_cpu_share", width=160, min_value=0.1,
                             max_value=1.0, default_value=c.cpu_share, format="%.2f",
                             callback=g(lambda s, a: self.set_cpu_share(a)))
        tooltip("_slider_cpu_share", "The share of this machine's processor the run keeps to (it sleeps when it runs "
                "ahead);\nthe viewport renders the network with the rest. Changes apply to a run that is going.")
        with dpg.group(horizontal=True):
            for label, tag, fn, tip in (
                    ("Start", "_button_start", self.start, "start a new run with the choices above"),
                    ("Pause", "_button_pause", self.session.pause,
                     "hold the run (P); Resume goes on from the same step"),
                    ("Resume", "_button_resume", self.session.resume, "go on with a paused run (P)"),
                    ("Stop", "_button_stop", self.stop,
                     "end the run now: it writes its final checkpoint; the curves stay"),
                    ("Reset", "_button_reset", self.reset, "end the run, clear the curves and show the network from "
                                                           "before the run (the run's checkpoint stays on disk)")):
                dpg.add_button(label=label, tag=tag, width=62, callback=g(fn))
                tooltip(tag, tip)
        dpg.add_text("", tag="_text_train_status", wrap=0)
        with dpg.group(horizontal=True):
            dpg.add_button(label="Open folder", tag="_button_train_folder", callback=g(self.open_folder))
            dpg.add_button(label="Back to the shipped network", tag="_button_train_shipped",
                           callback=g(self.shipped))
        dpg.add_text("", tag="_text_train_folder", color=GREY, wrap=0)
        # The curves live in this tab (as in Instant-NGP's testbed): ImPlot redraws them every frame, ~4 ms of
        # software GL a frame that flying the camera in the View tab does not pay.
        build_plots()

    def refresh(self) -> None:
        if not self.visible():
            return
        s, c = self.session, self.session.choices
        for name, *_ in COMBOS:  # the choices, also when not made here (a restart, `redcube bench`)
            dpg.set_value(f"_combo_train_{name}", str(getattr(c, name)))
        dpg.set_value("_combo_budget_unit", c.unit)
        follow({"_input_budget": float(c.budget), "_slider_cpu_share": c.cpu_share})
        dpg.set_value("_text_train_status", s.status(self.shown_step()))
        dpg.set_value("_text_train_folder", f"this run: {s.out_dir}" if s.out_dir else f"runs are saved under {s.runs_dir}")
        state = s.state
        for button, enabled in (("start", not s.active), ("pause", state == "running"), ("resume", state == "paused"),
                                ("stop", state in ("running", "paused")), ("reset", s.proc is not None)):
            dpg.configure_item(f"_button_{button}", enabled=enabled)
        curves = s.curves
        key = (id(curves), len(curves.train_step), len(curves.test_step))
        if key != self._plotted:  # redraw the curves only when a record arrived
            self._plotted = key
            _plot_curves(curves)


def build_plots() -> None:
    """Loss and PSNR curves, one above the other, under the training controls."""
    dpg.add_text("Training curves appear here once a run starts.", tag="_text_no_plots", color=GREY)
    with dpg.group(tag="_group_plots", show=False):
        dpg.add_text("MSE: mean squared pixel error; lower is better.", color=GREY, wrap=0)
        _plot("loss", "MSE", log=True)
        dpg.add_text(PSNR_WORDS, color=GREY, wrap=0)
        _plot("psnr", "PSNR (dB)", log=False)


def _plot(name: str, ylabel: str, log: bool) -> None:
    """A plot of the train and held-out `name` curves (the series `_series_train_{name}`, `_series_test_{name}`)."""
    with dpg.plot(tag=f"_plot_{name}", height=180, width=-1, no_menus=True, no_box_select=True, no_title=True):
        dpg.add_plot_legend(location=dpg.mvPlot_Location_NorthEast if name == "loss" else dpg.mvPlot_Location_SouthEast)
        dpg.add_plot_axis(dpg.mvXAxis, label="step", tag=f"_axis_{name}_x")
        with dpg.plot_axis(dpg.mvYAxis, label=ylabel, tag=f"_axis_{name}_y",
                           scale=dpg.mvPlotScale_Log10 if log else dpg.mvPlotScale_Linear):
            for label, curve in (("train", "train"), ("held-out", "test")):
                dpg.add_line_series([], [], label=label, tag=f"_series_{curve}_{name}")


def _plot_curves(c) -> None:
    dpg.configure_item("_group_plots", show=bool(c.train_step))  # empty plots cost a software-GL frame ~4 ms
    dpg.configure_item("_text_no_plots", show=not c.train_step)
    if not c.train_step:
        return
    last = max(c.train_step[-1], c.test_step[-1] if c.test_step else 0)
    for name, log in (("loss", True), ("psnr", False)):
        train, test = getattr(c, f"train_{name}"), getattr(c, f"test_{name}")
        dpg.set_value(f"_series_train_{name}", [c.train_step, train])
        dpg.set_value(f"_series_test_{name}", [c.test_step, test])
        dpg.set_axis_limits(f"_axis_{name}_x", 0, max(1, last) * 1.02)
        dpg.set_axis_limits(f"_axis_{name}_y", *fit(train + test, log))


def fit(values: list[float], log: bool) -> tuple[float, float]:
    """Axis limits holding every finite value with a margin (on a log axis, the margin is a ratio)."""
    vs = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not vs:
        return (1e-4, 1.0) if log else (10.0, 40.0)
    lo, hi = min(vs), max(vs)
    if log:
        return lo / 1.3, hi * 1.3
    pad = max(0.5, 0.08 * (hi - lo))
    return lo - pad, hi + pad
