"""The one scene config: the cube world's geometry, colours, camera bounds and rendering options.

Every part of redcube (rasterizer, models, trainer, app) reads the world from a `Scene`.
It loads from TOML (`Scene.from_toml`) and round-trips through a plain dict for checkpoints.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

from renderer.errors import RedcubeError
from renderer.numbers import fits_float32

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RGB = tuple[float, float, float]
SCALARS = ("ground_half_size", "grid_line_width", "cube_size", "cube_yaw_deg", "ambient", "fov_deg", "near", "far", "pos_bounds")


def _numbers(v, n: int) -> bool:
    """Whether v is a sequence of n finite real numbers (config values arrive from TOML untyped)."""
    return isinstance(v, (tuple, list)) and len(v) == n and all(fits_float32(x) for x in v)


@dataclass(frozen=True)
class Scene:
    """The cube world (DESIGN.md, "The world"). Y is up, metres."""

    sky_color: RGB = (0.35, 0.60, 1.00)
    """Constant background colour (linear RGB in [0, 1])."""
    ground_half_size: float = 2.0
    """The ground plane covers x, z in [-h, h] at y = 0."""
    ground_color: RGB = (0.82, 0.82, 0.82)
    """Light grey of the plane between grid lines."""
    grid_color: RGB = (0.15, 0.15, 0.15)
    """Dark grid lines on the integer coordinates."""
    grid_line_width: float = 0.04
    """Width of a grid line in metres."""
    cube_center: tuple[float, float, float] = (0.0, 1.0, 0.0)
    """Centre of the axis-aligned cube."""
    cube_size: float = 1.0
    """Edge length of the cube."""
    cube_color: RGB = (0.90, 0.08, 0.06)
    """Albedo of the cube."""
    cube_yaw_deg: float = 0.0
    """Rotation of the cube about the vertical axis through its centre, degrees (same sense as camera yaw)."""
    light_dir: tuple[float, float, float] = (0.4, 1.0, 0.7)
    """Direction towards the directional light (normalised when used)."""
    ambient: float = 0.35
    """Ambient share of the cube's shading; the rest is Lambertian."""
    fov_deg: float = 60.0
    """Vertical field of view of the pinhole camera (square images)."""
    near: float = 0.01
    """Near clipping plane: small, so the camera can enter the cube."""
    far: float = 20.0
    """Far clipping plane."""
    pos_bounds: float = 2.0
    """Camera x and z are sampled in [-b, b]."""
    height: tuple[float, float] = (1.0, 1.0)
    """Camera height range (y). Default 0-width: eye level."""
    pitch_deg: tuple[float, float] = (0.0, 0.0)
    """Camera pitch range in degrees. Default 0-width."""
    supersample: int = 4
    """Ground truth is rendered at res * supersample and box-filtered down (anti-aliasing)."""

    def __post_init__(self) -> None:
        for name in SCALARS:  # the renderer and the networks read them as float32: inf or 1e39 would pass a range check
            if not fits_float32(getattr(self, name)):
                raise RedcubeError(f"scene.{name} must be a finite float32 number, got {getattr(self, name)!r}; fix the scene config.")
        for name in ("sky_color", "ground_color", "grid_color", "cube_color"):
            c = getattr(self, name)
            if not (_numbers(c, 3) and all(0.0 <= v <= 1.0 for v in c)):
                raise RedcubeError(f"scene.{name} must be three numbers in [0, 1], got {c!r}; fix the scene config.")
        checks = [
            (self.ground_half_size > 0, "ground_half_size must be positive"),
            (0 < self.grid_line_width < 1, "grid_line_width must be in (0, 1) metres"),
            (self.cube_size > 0, "cube_size must be positive"),
            (0 <= self.ambient <= 1, "ambient must be in [0, 1]"),
            (1 <= self.fov_deg <= 170, "fov_deg must be in [1, 170]"),
            (0 < self.near < self.far, "near and far must satisfy 0 < near < far"),
            (0 < self.pos_bounds < math.inf, "pos_bounds must be a positive finite number"),
            (_numbers(self.height, 2) and self.height[0] <= self.height[1], "height must be a (low, high) pair with low <= high"),
            (_numbers(self.pitch_deg, 2) and self.pitch_deg[0] <= self.pitch_deg[1], "pitch_deg must be a (low, high) pair with low <= high"),
            (_numbers(self.pitch_deg, 2) and -89 <= self.pitch_deg[0] and self.pitch_deg[1] <= 89, "pitch_deg must lie within [-89, 89]"),
            (isinstance(self.supersample, numbers.Integral) and not isinstance(self.supersample, bool) and 1 <= self.supersample <= 8, "supersample must be an integer from 1 to 8"),
            (_numbers(self.light_dir, 3) and any(v != 0 for v in self.light_dir), "light_dir must be three numbers, not the zero vector"),
            (_numbers(self.cube_center, 3), "cube_center must be three numbers"),
        ]
        for ok, msg in checks:
            if not ok:
                raise RedcubeError(f"scene.{msg}; fix the scene config.")

    @property
    def tan_half_fov(self) -> float:
        return math.tan(math.radians(self.fov_deg) / 2)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RedcubeError(f"unknown scene setting(s) {unknown}; valid ones are {sorted(names)}.")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise RedcubeError(f"bad scene config ({e}); fix the scene config.") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> "Scene":
        """Read a TOML file whose keys are `Scene` fields (optionally under a [scene] table)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise RedcubeError(f"scene config {path} does not exist; pass an existing TOML file.") from None
        except IsADirectoryError:
            raise RedcubeError(f"scene config {path} is a directory; pass a TOML file.") from None
        except UnicodeDecodeError:
            raise RedcubeError(f"scene config {path} is not text (binary data); pass a TOML file.") from None
        except OSError as e:
            raise RedcubeError(f"cannot read scene config {path} ({e.strerror}); pass a readable TOML file.") from None
        except tomllib.TOMLDecodeError as e:
            raise RedcubeError(f"scene config {path} is not valid TOML ({e}); fix the file.") from None
        data = data.get("scene", data)
        if not isinstance(data, dict):
            raise RedcubeError(f"scene config {path} has a [scene] entry that is not a table; put the settings under [scene] or at the top.")
        return cls.from_dict(data)
