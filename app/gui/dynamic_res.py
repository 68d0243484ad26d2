"""Dynamic resolution of the network picture (Instant-NGP's testbed, nerfstudio's viewer): while the camera moves,
render at the resolution that holds a target number of network pictures per second; once it stops, the full
resolution the user chose.

The cost model is measured, not guessed: the milliseconds per pixel of the last few flying pictures, each costed at
its render job's wall time on the render thread (the CPU that training and the window leave it is in that time), as
a mean without the slowest one (the rate a user sees is the mean picture time, which a median would flatter; one
stall must not halve the resolution either), and the next flying resolution is the one whose pixels fit the frame
budget,

    res = sqrt(budget_ms / ms_per_pixel),   budget_ms = HEADROOM * 1000 / target_fps,

rounded to a multiple of STEP and clamped to [FLOOR, full]. As in the testbed, it changes only when the new
value differs by more than CHANGE (a resolution that hops every frame flickers and defeats caching).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field

FLOOR = 64  # the smallest flying resolution (below it the picture says little)
STEP = 16
CHANGE = 0.2  # relative change below which the flying resolution stays put
HEADROOM = 0.9  # share of a frame's time a picture may cost: a little slack for the variation between frames
WINDOW = 8  # renders in the running cost estimate


@dataclass
class DynamicResolution:
    target_fps: float = 30.0
    flying: int = 128  # the resolution used while the camera moves
    costs: deque = field(default_factory=lambda: deque(maxlen=WINDOW))  # milliseconds per pixel of the last renders
    network: int | None = None  # the network the costs were measured on (another one starts the estimate afresh)

    @property
    def ms_per_pixel(self) -> float | None:
        """The cost estimate (None until a render was measured)."""
        if not self.costs:
            return None
        costs = sorted(self.costs)
        return statistics.fmean(costs[:-1] if len(costs) > 2 else costs)

    def measure(self, network: int, res: int, ms: float) -> None:
        """A render of res² pixels by `network` took ms milliseconds."""
        if network != self.network:
            self.network = network
            self.costs.clear()
        if ms > 0 and math.isfinite(ms) and res > 0:
            self.costs.append(ms / (res * res))

    def resolution(self, full: int, moving: bool) -> int:
        """The resolution to render now: the full one for a still camera, else the one that holds target_fps."""
        if not moving:
            return full
        cost = self.ms_per_pixel
        if cost is not None:
            ideal = math.sqrt(HEADROOM * 1000.0 / self.target_fps / cost)
            ideal = max(FLOOR, min(full, int(ideal // STEP) * STEP))
            if abs(ideal - self.flying) > CHANGE * self.flying:
                self.flying = ideal
        return max(min(FLOOR, full), min(self.flying, full))
