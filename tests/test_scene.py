"""The scene config: DESIGN.md's world numbers, TOML loading, and one clear sentence for bad configs."""

from __future__ import annotations

import dataclasses
import math

import pytest

from renderer.errors import RedcubeError
from renderer.scene import Scene


def to_toml(d: dict, table: str | None = None) -> str:
    """A minimal TOML writer for flat scene dicts (numbers, booleans and number tuples)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v + '"'
        raise TypeError(v)

    lines = [f"[{table}]"] if table else []
    lines += [f"{k} = {value(v)}" for k, v in d.items()]
    return "\n".join(lines) + "\n"


def test_defaults_match_design():
    s = Scene()
    # Ground plane y = 0 over x, z in [-2, 2]; grid lines on the integers.
    assert s.ground_half_size == 2.0
    assert 0 < s.grid_line_width < 0.2
    # Cube: 1 m, centred at (0, 1, 0), so it floats 0.5 m above the plane.
    assert s.cube_size == 1.0
    assert s.cube_center == (0.0, 1.0, 0.0)
    assert s.cube_center[1] - s.cube_size / 2 == 0.5
    # Camera: 60 deg vertical FOV, eye level y = 1, x, z in [-2, 2], pitch 0 (0-width ranges).
    assert s.fov_deg == 60.0
    assert s.tan_half_fov == pytest.approx(math.tan(math.radians(30)))
    assert s.pos_bounds == 2.0
    assert s.height == (1.0, 1.0)
    assert s.pitch_deg == (0.0, 0.0)
    assert s.near < 0.5 < 4 * math.sqrt(2) < s.far  # can enter the cube; sees the whole world
    # Colours: red cube, bright blue sky, light grey ground, dark grey grid lines.
    r, g, b = s.cube_color
    assert r > 0.6 and g < 0.2 and b < 0.2
    r, g, b = s.sky_color
    assert b > 0.9 and b > g > r
    assert len(set(s.ground_color)) == 1 and s.ground_color[0] > 0.6
    assert len(set(s.grid_color)) == 1 and s.grid_color[0] < 0.3
    assert 0 < s.ambient < 1 and any(s.light_dir)
    assert isinstance(s.supersample, int) and s.supersample > 1  # ground truth is anti-aliased


def test_dict_round_trip():
    s = Scene(fov_deg=50.0, height=(0.8, 1.2), pitch_deg=(-10.0, 5.0), supersample=2, cube_color=(0.5, 0.0, 0.1))
    assert Scene.from_dict(s.to_dict()) == s
    assert Scene.from_dict({}) == Scene()


@pytest.mark.parametrize("table", [None, "scene"], ids=["top-level", "scene-table"])
def test_toml_round_trip(write_file, table):
    s = Scene(sky_color=(0.2, 0.3, 0.9), cube_center=(0.5, 1.2, -0.25), fov_deg=70.0, near=0.05, far=30.0,
              pos_bounds=1.5, height=(0.9, 1.1), pitch_deg=(-5.0, 5.0), supersample=3, ambient=0.5)
    path = write_file("scene.toml", to_toml(s.to_dict(), table))
    assert Scene.from_toml(path) == s
    assert Scene.from_toml(str(path)) == s


def test_toml_partial_keeps_defaults(write_file):
    path = write_file("scene.toml", "[scene]\nfov_deg = 45\ncube_size = 0.5\n")
    s = Scene.from_toml(path)
    assert s.fov_deg == 45 and s.cube_size == 0.5
    assert dataclasses.replace(s, fov_deg=60.0, cube_size=1.0) == Scene()


BAD_VALUES = [
    ("cube_color", (1.2, 0.0, 0.0)),
    ("sky_color", (0.1, 0.2)),
    ("ground_color", (-0.1, 0.5, 0.5)),
    ("grid_color", "red"),
    ("cube_color", ("a", "b", "c")),
    ("ground_half_size", -1.0),
    ("grid_line_width", 0.0),
    ("grid_line_width", 1.5),
    ("cube_size", 0.0),
    ("ambient", 1.5),
    ("fov_deg", 0.0),
    ("fov_deg", 179.0),
    ("fov_deg", float("nan")),
    ("near", 0.0),
    ("far", 0.001),
    ("pos_bounds", 0.0),
    ("pos_bounds", float("inf")),
    ("height", (2.0, 1.0)),
    ("pitch_deg", (10.0, -10.0)),
    ("pitch_deg", (-90.0, 0.0)),
    ("supersample", 0),
    ("supersample", 9),
    ("supersample", 2.5),
    ("light_dir", (0.0, 0.0, 0.0)),
    ("light_dir", (1.0, 1.0)),
    ("cube_center", (0.0, 1.0)),
    ("cube_center", ("x", 1.0, 0.0)),
]


@pytest.mark.parametrize("name,value", BAD_VALUES, ids=[f"{n}={v!r}" for n, v in BAD_VALUES])
def test_bad_values_name_the_setting(name, value, one_sentence):
    with pytest.raises(RedcubeError) as e:
        Scene.from_dict({name: list(value) if isinstance(value, tuple) else value})
    msg = str(e.value)
    assert name in msg
    one_sentence(msg)


@pytest.mark.parametrize("content,words", [
    ("[scene]\nsupersample = 20\n", ["supersample"]),
    ('fov_deg = "wide"\n', []),
    ("[scene]\nfov_deg = 60\ncube_colour = [1, 0, 0]\n", ["cube_colour", "cube_color"]),  # and the valid names
    ("[scene\nfov_deg = = 60\n", ["not valid TOML", "{path}"]),
    (None, ["does not exist", "{path}"]),  # no file
], ids=["bad-value", "wrong-type", "unknown-key", "bad-toml", "missing-file"])
def test_a_bad_scene_file_is_one_sentence_naming_the_fault(tmp_path, write_file, one_sentence, content, words):
    path = tmp_path / "nope.toml" if content is None else write_file("scene.toml", content)
    with pytest.raises(RedcubeError) as e:
        Scene.from_toml(path)
    assert all(w.format(path=path) in str(e.value) for w in words), str(e.value)
    one_sentence(str(e.value))


def test_scene_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Scene().fov_deg = 10.0
