"""Can a window open here? Asked before dearpygui touches the display: GLFW aborts the whole process
(an uncatchable SIGABRT) when DISPLAY names no X server, so the answer must come first, in one sentence."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from renderer.errors import RedcubeError


def check_display() -> None:
    """Raise a RedcubeError unless an X server answers on $DISPLAY (or a Wayland display is set)."""
    display = os.environ.get("DISPLAY")
    if not display and not os.environ.get("WAYLAND_DISPLAY"):
        raise RedcubeError("no display found (DISPLAY is not set); run on a desktop, or headless under `xvfb-run -a redcube gui ...`.")
    if display and not x_server_answers(display):
        raise RedcubeError(f"no X server answers on DISPLAY={display}; start one (or fix DISPLAY), or run headless under "
                           "`xvfb-run -a redcube gui ...`.")


def x_server_answers(display: str) -> bool:
    """XOpenDisplay through libX11 (what GLFW itself calls); True when libX11 is missing, so GLFW has its say."""
    name = ctypes.util.find_library("X11")
    if name is None:
        return True
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        return False
    x11.XCloseDisplay(handle)
    return True
