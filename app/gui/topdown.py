"""A top-down map of the world on a dearpygui drawlist: the ground square and its grid, the cube's footprint, a camera
path with its keyframes, and the camera's position and heading (with its field of view).

Map coordinates: +x to the right, -z up, so a camera at yaw 0 (looking down -z) points up the map.
"""

from __future__ import annotations

import math

import dearpygui.dearpygui as dpg

from renderer.camera import Camera, forward
from renderer.scene import Scene

GRID = (90, 90, 100)
EDGE = (150, 150, 160)
CUBE = (200, 40, 40)
PATH = (120, 180, 255)
KEY = (255, 210, 90)
CAMERA = (80, 230, 120)
MARGIN = 14


def draw_map(tag: str, size: int, scene: Scene, camera: Camera | None, path: list[Camera] = (),
             keyframes: list[Camera] = ()) -> None:
    """Redraw the map in the drawlist `tag` (size x size pixels)."""
    dpg.delete_item(tag, children_only=True)
    half = scene.pos_bounds * 1.15  # a little room outside the training square, where free mode may fly
    scale = (size - 2 * MARGIN) / (2 * half)

    def at(x: float, z: float) -> tuple[float, float]:
        return MARGIN + (x + half) * scale, MARGIN + (z + half) * scale

    b = scene.pos_bounds
    for k in range(-math.floor(b), math.floor(b) + 1):  # the ground's 1 m grid lines
        dpg.draw_line(at(k, -b), at(k, b), color=GRID, parent=tag)
        dpg.draw_line(at(-b, k), at(b, k), color=GRID, parent=tag)
    dpg.draw_rectangle(at(-b, -b), at(b, b), color=EDGE, parent=tag)
    cx, _, cz = scene.cube_center
    h, t = scene.cube_size / 2, math.radians(scene.cube_yaw_deg)
    corners = [(sx * h, sz * h) for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
    dpg.draw_polygon([at(cx + x * math.cos(t) + z * math.sin(t), cz - x * math.sin(t) + z * math.cos(t)) for x, z in corners],
                     color=CUBE, fill=(*CUBE, 90), parent=tag)
    if len(path) > 1:
        dpg.draw_polyline([at(c.x, c.z) for c in path], color=PATH, thickness=1.5, parent=tag)
    for i, c in enumerate(keyframes):
        p = at(c.x, c.z)
        dpg.draw_circle(p, 3.5, color=KEY, fill=KEY, parent=tag)
        dpg.draw_text((p[0] + 4, p[1] - 12), str(i + 1), size=12, color=KEY, parent=tag)
    if camera is not None:
        _camera(tag, at, camera, scene)


def _camera(tag: str, at, c: Camera, scene: Scene) -> None:
    """A dot at the camera, its heading as an arrow and its horizontal field of view as two rays."""
    p = at(c.x, c.z)
    half_fov = math.atan(scene.tan_half_fov)
    for d, length, thick in ((0.0, 0.55, 2.0), (half_fov, 0.9, 1.0), (-half_fov, 0.9, 1.0)):
        fx, _, fz = forward(c.yaw + d)
        dpg.draw_line(p, at(c.x + length * fx, c.z + length * fz), color=CAMERA, thickness=thick, parent=tag)
    dpg.draw_circle(p, 4.5, color=CAMERA, fill=CAMERA, parent=tag)
