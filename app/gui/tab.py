"""The one interface every side tab of the window has; the app loops over its tabs and never names one.

A tab owns its state (its session, its background renderer, what it last drew). Each frame the app calls `tick`
(background work; True when something new arrived) and `refresh` (widgets from state) on every tab, and asks the
open tab for `viewport()`: the pictures the big viewport shows while it is open (None: the flying camera's view).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dearpygui.dearpygui as dpg
import numpy as np


@dataclass
class Panel:
    """One picture of the big viewport and its caption."""

    image: np.ndarray  # [H, W, 3] float32 in [0, 1]; shown square, scaled by the window
    caption: str


@dataclass
class Pictures:
    """What an open tab puts in the big viewport: one to three panels side by side, and a line under them."""

    panels: list[Panel]
    note: str = ""  # under the pictures: how current they are and what good looks like
    key: object = field(default=None, compare=False)  # changes with a picture (the window uploads textures only then)


class Tab:
    name = ""  # short name: the tab's tag is `_tab_{name}`, `redcube gui --tab NAME` opens it
    label = ""
    settings_key: str | None = None  # the `Settings` field its choices are remembered in (None: nothing remembered)

    def __init__(self, app):
        self.app = app

    def build(self) -> None:
        """Create the tab's widgets (inside its dpg.tab)."""

    def refresh(self) -> None:
        """Show the tab's state in its widgets (every frame)."""

    def tick(self, now: float) -> bool:
        """Background work for this frame; True when something new arrived."""
        return False

    def settled(self) -> bool:
        """Nothing of this tab is still on its way (screenshots wait for it)."""
        return True

    def viewport(self) -> Pictures | None:
        """The big viewport's pictures while this tab is open; None leaves the flying camera's view there."""
        return None

    def keys(self) -> dict:
        """Key name -> action for the keys this tab handles."""
        return {}

    def choices(self) -> dict:
        """What the next launch restores (in the `settings_key` field); by default the tab's session's choices."""
        return self.session.choices()

    def restore(self, remembered: dict) -> str | None:
        """Take the last launch's choices before `build` (by default the session does); a message to show, or None."""
        return self.session.restore(remembered)

    def close(self) -> None:
        pass

    def visible(self) -> bool:
        """Whether this tab is the open one."""
        return dpg.get_value("_tabs") in (f"_tab_{self.name}", dpg.get_alias_id(f"_tab_{self.name}"))
