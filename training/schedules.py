"""The learning-rate decay every trainer here shares: a half cosine from the peak down to a floor."""

from __future__ import annotations

import math


def cosine(peak: float, progress: float, floor: float = 0.05) -> float:
    """peak at progress 0, floor x peak at progress 1 and after, along a half cosine."""
    p = min(max(progress, 0.0), 1.0)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))
