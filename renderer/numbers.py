"""Numbers from users (CLI flags, files), checked once where they enter: a real number, finite and in range
in the dtype that will hold it. A float64 that overflows float32 (yaw 1e39) would become inf on the way in.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from renderer.errors import RedcubeError

FLOAT32_MAX = float(np.finfo(np.float32).max)
INT64_MAX = 2 ** 63 - 1


def is_real(v) -> bool:
    """A number, not a bool (JSON's true is not 1.0 here)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def as_float(v) -> float:
    """float(v) for a real number, inf for an integer too large for float64."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def fits_float32(v) -> bool:
    """A real, finite number that stays finite as float32."""
    return is_real(v) and math.isfinite(as_float(v)) and abs(as_float(v)) <= FLOAT32_MAX


def check_number(name: str, value, lo: float | None = None, hi: float | None = None, *, integer: bool = False,
                 lo_open: bool = False) -> float | int:
    """`value` as a number in [lo, hi] (or (lo, hi] with lo_open), or one sentence naming `name`, the range and the dtype."""
    kind = "a whole number" if integer else "a finite float32 number"
    ok = is_real(value)
    if ok and integer:
        ok = isinstance(value, numbers.Integral) or (math.isfinite(as_float(value)) and float(value).is_integer())
        ok = ok and abs(int(value)) <= INT64_MAX
    elif ok:
        ok = fits_float32(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value <= hi
    if not ok:
        bounds = _range_text(lo, hi, lo_open)
        fix = "pass a value in that range" if bounds else "pass a finite number"
        raise RedcubeError(f"{name} must be {kind}{bounds}, got {value!r}; {fix}.")
    return int(value) if integer else float(value)


def _range_text(lo, hi, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f" <= {hi:g}"
    return ""
