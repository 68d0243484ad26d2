"""Dynamic resolution of the network picture: the measured cost picks the flying resolution that holds the target
network frame rate; a still camera gets the full resolution; the view setting refuses a bad target."""

from __future__ import annotations

import math

import pytest

from app.gui.dynamic_res import FLOOR, HEADROOM, DynamicResolution
from app.gui.state import ViewSettings
from renderer.errors import RedcubeError


def test_flying_resolution_holds_the_target_frame_rate():
    d = DynamicResolution(target_fps=30.0)
    d.measure(0, 256, 66.0)  # 1 ms per 1,000 pixels: 0.9 x 33 ms buys 30,000 pixels, about 173²
    res = d.resolution(256, moving=True)
    assert res % 16 == 0 and 160 <= res <= 176
    assert res * res * d.ms_per_pixel <= HEADROOM * 1000 / 30  # its cost fits the frame budget
    assert d.resolution(256, moving=False) == 256  # a still camera: the full resolution


def test_small_changes_keep_the_resolution_and_the_floor_and_full_bound_it():
    d = DynamicResolution(target_fps=30.0)
    d.measure(0, 128, 16.0)
    first = d.resolution(256, moving=True)
    d.measure(0, first, 16.0 * first * first / 128 ** 2 * 1.1)  # 10 % slower: under the 20 % threshold
    assert d.resolution(256, moving=True) == first
    d.measure(0, 256, 10_000.0)  # a very slow network: never below the floor
    for _ in range(10):
        d.measure(0, FLOOR, 10_000.0)
    assert d.resolution(256, moving=True) == FLOOR
    fast = DynamicResolution(target_fps=30.0)
    fast.measure(0, 64, 0.1)  # a very fast network: never above the resolution the user chose
    assert fast.resolution(96, moving=True) == 96 and fast.resolution(48, moving=True) == 48


def test_unmeasured_and_unusable_timings_change_nothing():
    d = DynamicResolution()
    assert d.resolution(256, moving=True) == d.flying
    for ms in (0.0, -5.0, math.nan, math.inf):
        d.measure(0, 128, ms)
    assert d.ms_per_pixel is None


@pytest.mark.parametrize("bad", [0, -5, math.nan, math.inf, 1e9, "fast"])
def test_a_bad_target_frame_rate_is_one_sentence_and_changes_nothing(bad):
    v = ViewSettings()
    with pytest.raises(RedcubeError) as e:
        v.set(target_fps=bad)
    assert v.target_fps == 30.0 and v.version == 0
    assert "target" in str(e.value) and str(e.value).endswith(".") and "\n" not in str(e.value)
    with pytest.raises(RedcubeError, match="target network fps"):
        ViewSettings.from_dict({"target_fps": bad if not isinstance(bad, str) else math.nan})


def test_the_estimate_counts_slow_pictures_but_not_one_stall_and_restarts_for_another_network():
    d = DynamicResolution()
    for ms in (10.0, 10.0, 30.0, 10.0, 10.0, 30.0, 10.0, 500.0):  # a slow picture in three, and one stall
        d.measure(1, 100, ms)
    # the mean without the stall (a median would say 10 ms and miss the target by a third)
    assert d.ms_per_pixel == pytest.approx(110.0 / 7 / 100 ** 2)
    d.measure(2, 100, 5.0)  # another network: its first render is the whole estimate
    assert d.ms_per_pixel == pytest.approx(5.0 / 100 ** 2)
