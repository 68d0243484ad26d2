"""Keyboard and mouse polling: dearpygui key codes -> the key names `FlyCamera` and `App` understand.

Held keys are polled every frame (smooth movement at any frame rate); presses fire once. Keys are
ignored while a text field has focus, and a mouse drag turns the camera only if it began on the picture.
"""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from app.gui.state import MOVE_KEYS


def _code(name: str) -> int:
    """dearpygui's code for a key name: `mvKey_` and the name capitalised (the space bar is `Spacebar`)."""
    return getattr(dpg, f"mvKey_{'Spacebar' if name == 'space' else name.capitalize()}")


HELD = {name: _code(name) for name in MOVE_KEYS}
PRESSED = {name: _code(name) for name in ("r", "f", "p", "k", "h", "f1", "f12", "1", "2", "3", "4", "5", "6")}
SHIFT = (dpg.mvKey_LShift, dpg.mvKey_RShift)


def poll(app, now: float) -> bool:
    """Apply held keys, presses and drags; True if the user did anything (the mouse moved included)."""
    dt = now - getattr(app, "_keys_t", now)
    app._keys_t = now
    # While a text or number field has keyboard focus the keys type into it, and the window redraws at full rate.
    active = any(dpg.is_item_active(tag) for tag in app.text_inputs if dpg.does_item_exist(tag))
    if not active:
        held = {name for name, code in HELD.items() if dpg.is_key_down(code)}
        if held:
            app.on_keys(held, dt, fast=any(dpg.is_key_down(k) for k in SHIFT))
        for name, code in PRESSED.items():
            if dpg.is_key_pressed(code):
                app.guard(app.on_key_press)(name)
                active = True
        active |= bool(held)
    _poll_drag(app)
    mouse = tuple(dpg.get_mouse_pos(local=False))
    active |= mouse != getattr(app, "_mouse_at", mouse) or app._drag_from is not None
    app._mouse_at = mouse
    return active


def _poll_drag(app) -> None:
    if not dpg.is_mouse_button_down(dpg.mvMouseButton_Left):
        app._drag_from = None
        return
    pos = dpg.get_mouse_pos(local=False)
    if app._drag_from is None:
        if dpg.is_item_hovered("_image_left") or dpg.is_item_hovered("_image_right"):
            app._drag_from = pos
        return
    dx, dy = pos[0] - app._drag_from[0], pos[1] - app._drag_from[1]
    if dx or dy:
        app.on_drag(dx, dy)
    app._drag_from = pos
