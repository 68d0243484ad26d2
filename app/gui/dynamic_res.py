"""Dynamic resolution of the network picture (Instant-NGP's testbed, nerfstudio's viewer): while the camera moves,
render at the resolution that holds a target number of network pictures per second; once it stops, the full
resolution the user chose.

The cost model is measured, not guessed: each finished render updates a running estimate of milliseconds per
pixel, and the next flying resolution is the one whose pixels fit the frame budget,

    res = sqrt(budget_ms / ms_per_pixel),   budget_ms = 1000 / target_fps,

rounded to a multiple of STEP and clamped to [FLOOR, full]. As in the testbed, it changes only when the new
value differs by more than CHANGE (a resolution that hops every frame flickers and defeats caching).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOOR = 64
"""The smallest flying resolution (below it the picture says little)."""
STEP = 16
CHANGE = 0.2
"""Relative change below which the flying resolution stays put."""
SMOOTHING = 0.3
"""Weight of the newest render in the running ms-per-pixel estimate."""


@dataclass
class DynamicResolution:
    target_fps: float = 30.0
    ms_per_pixel: float | None = None
    """Running estimate of the render cost (None until the first render is measured)."""
    flying: int = 128
    """The resolution used while the camera moves."""

    def measure(self, res: int, ms: float) -> None:
        """A render of res² pixels took ms milliseconds."""
        if not (ms > 0 and math.isfinite(ms)) or res <= 0:
            return
        cost = ms / (res * res)
        self.ms_per_pixel = cost if self.ms_per_pixel is None else (1 - SMOOTHING) * self.ms_per_pixel + SMOOTHING * cost

    def resolution(self, full: int, moving: bool) -> int:
        """The resolution to render now: the full one for a still camera, else the one that holds target_fps."""
        if not moving:
            return full
        if self.ms_per_pixel is not None:
            budget = 1000.0 / self.target_fps
            ideal = math.sqrt(budget / self.ms_per_pixel)
            ideal = max(FLOOR, min(full, int(ideal // STEP) * STEP))
            if abs(ideal - self.flying) > CHANGE * self.flying:
                self.flying = ideal
        return max(min(FLOOR, full), min(self.flying, full))
