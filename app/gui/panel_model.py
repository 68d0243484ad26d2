"""The Model tab: load / save checkpoints, screenshots, and the model-info table."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from app.gui.settings import outputs_dir
from app.gui.tab import Tab
from app.gui.widgets import GREY, HEAD, path_field

INFO_ROWS = 10


class ModelTab(Tab):
    name, label = "model", "Model"

    def __init__(self, app):
        super().__init__(app)
        self._info_key = None  # (network version, load in flight) the table shows

    def build(self) -> None:
        app, g = self.app, self.app.guard
        dpg.add_text("The network on screen, its file and how well it did. Load another network by typing its path or "
                     "picking it (...); Save writes the one on screen (a bare name goes to the outputs folder).",
                     color=GREY, wrap=0)
        dpg.add_text("Network checkpoint (.safetensors)", color=HEAD)
        path_field(app, "_input_ckpt_path", [("Load", app.open_checkpoint), ("Save", app.save_checkpoint_as)],
                   "_dialog_load_ckpt", hint="path/to/network.safetensors")
        dpg.add_text("Screenshot of the window (PNG)", color=HEAD)
        path_field(app, "_input_screenshot_path", [("Save", app.screenshot)], "_dialog_screenshot",
                   hint="e.g. screenshots/view.png")
        dpg.add_button(label="Screenshot (F12)", callback=g(lambda: app.screenshot(None)))
        dpg.add_text(f"outputs folder: {outputs_dir()}  (set REDCUBE_HOME to move it)", color=GREY, wrap=0)
        dpg.add_separator()
        dpg.add_text("Model info", color=HEAD)
        with dpg.table(header_row=False, borders_innerH=True, tag="_table_info"):
            dpg.add_table_column(width_fixed=True, init_width_or_weight=120)
            dpg.add_table_column()
            for i in range(INFO_ROWS):
                with dpg.table_row():
                    dpg.add_text("", tag=f"_text_info_key_{i}", color=(180, 180, 180))
                    dpg.add_text("", tag=f"_text_info_val_{i}", wrap=240)

    def refresh(self) -> None:
        app = self.app
        loaded = app.slot.snapshot()
        key = (loaded.version if loaded else None, app.slot.loading)
        if self._info_key != key:
            self._info_key = key
            rows = app.model_info()
            if app.slot.loading is not None:
                rows = [("loading", str(app.slot.loading))] + rows
            for i in range(INFO_ROWS):
                k, v = rows[i] if i < len(rows) else ("", "")
                dpg.set_value(f"_text_info_key_{i}", k)
                dpg.set_value(f"_text_info_val_{i}", v)
