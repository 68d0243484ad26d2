"""Sample-quality metrics of eval-mnif: a real world off the parameter grid is matched once the grid's nearest world
is refined (the grid alone leaves it far below the 20 dB threshold)."""

from __future__ import annotations

import pytest

from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from renderer.worlds import WorldParams, parameter_grid, train_worlds, world_scene
from training.mnif.eval import _moved, grid_step, pairwise_psnr, rasterize_worlds, refine_to_family


def test_refinement_finds_a_real_world_the_grid_misses():
    base, world = Scene(), train_worlds(3)[2]
    grid = parameter_grid()
    views = rasterize_worlds([world], base)[0]
    to_grid = pairwise_psnr(views[None], rasterize_worlds(grid, base))[0]
    with Rasterizer(world_scene(grid[0], base)) as r:
        refined, found = refine_to_family(views, grid[int(to_grid.argmax())], base, r, grid_step())
    assert float(to_grid.max()) < 20 <= 25 < refined
    assert abs(found.size - world.size) < 0.05 and abs(found.x - world.x) < 0.05


def test_moves_wrap_hue_and_yaw_and_clamp_the_rest():
    p = WorldParams(hue=0.95, size=1.05, yaw_deg=85.0)
    assert _moved(p, "hue", 0.1).hue == pytest.approx(0.05)
    assert _moved(p, "yaw_deg", 10.0).yaw_deg == pytest.approx(5.0)  # a cube turned by 90 degrees is the same cube
    assert _moved(p, "size", 0.2).size == 1.1 and _moved(p, "size", 0.2).hue == p.hue
