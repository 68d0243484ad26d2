"""Camera paths: keyframes, presets (an orbit; a walk through the cube), interpolation, JSON files.

A path file is JSON a person can edit:
    {"format": "redcube-path", "version": 1, "loop": false,
     "keyframes": [{"x": 0.0, "z": 1.9, "yaw": 0.0, "y": 1.0, "pitch": 0.0}, ...]}
Angles are radians; `y` and `pitch` may be left out (eye level, level gaze). Frames are spread
evenly in time over the segments between keyframes, positions follow a Catmull-Rom spline through
the keyframes and yaw takes the short way round.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from app.options import write_output
from renderer.camera import Camera, look_at
from renderer.errors import RedcubeError
from renderer.scene import Scene
from training.evaluate import read_json

FORMAT = "redcube-path"
PRESETS = ("orbit", "walk")
_FIELDS = ("x", "z", "yaw", "y", "pitch")


@dataclass
class CameraPath:
    keyframes: list[Camera] = field(default_factory=list)
    loop: bool = False
    """Closed path: the last keyframe runs back into the first."""

    def add(self, cam: Camera) -> None:
        self.keyframes.append(Camera(**vars(cam)))

    def sample(self, n: int) -> list[Camera]:
        """n cameras evenly spaced in time along the path (n >= 1)."""
        k = len(self.keyframes)
        if k == 0:
            raise RedcubeError("the camera path has no keyframes; add keyframes or pick a preset.")
        if n < 1:
            raise RedcubeError(f"a path needs at least 1 frame, got {n}.")
        if k == 1:
            return [Camera(**vars(self.keyframes[0])) for _ in range(n)]
        segments = k if self.loop else k - 1
        # A loop ends one step short of its start so the video repeats seamlessly.
        times = [i / n if self.loop else i / max(1, n - 1) for i in range(n)]
        return [self._at(min(t * segments, segments - 1e-9)) for t in times]

    def _at(self, s: float) -> Camera:
        """The camera at s along the path: segment int(s), the fraction s - int(s) of the way through it."""
        seg, t, k = int(s), s - int(s), len(self.keyframes)

        def key(i: int) -> Camera:
            return self.keyframes[i % k] if self.loop else self.keyframes[max(0, min(k - 1, i))]

        p0, p1, p2, p3 = (key(seg + d) for d in (-1, 0, 1, 2))
        vals = {name: _catmull_rom(*(getattr(p, name) for p in (p0, p1, p2, p3)), t) for name in ("x", "z", "y", "pitch")}
        dyaw = math.remainder(p2.yaw - p1.yaw, 2 * math.pi)  # the short way round
        vals["yaw"] = (p1.yaw + t * dyaw) % (2 * math.pi)
        return Camera(**vals)

    # -- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": 1, "loop": self.loop,
                "keyframes": [{n: round(getattr(c, n), 6) for n in _FIELDS} for c in self.keyframes]}

    def save(self, path: str | Path) -> Path:
        return write_output(path, lambda tmp: Path(tmp).write_text(json.dumps(self.to_dict(), indent=2) + "\n"))

    @classmethod
    def from_dict(cls, d, where: str = "path") -> "CameraPath":
        if isinstance(d, list):  # a bare list of keyframes is fine too
            d = {"keyframes": d}
        if not isinstance(d, dict) or not isinstance(d.get("keyframes"), list):
            raise RedcubeError(f"{where} must hold a JSON object with a \"keyframes\" list; see `redcube export-video --help`.")
        keys = []
        for i, kf in enumerate(d["keyframes"]):
            if not isinstance(kf, dict) or not all(n in kf for n in ("x", "z", "yaw")):
                raise RedcubeError(f"{where}: keyframe {i} needs numbers \"x\", \"z\" and \"yaw\" (radians); fix the file.")
            try:
                vals = {n: float(kf[n]) for n in _FIELDS if n in kf}
            except (TypeError, ValueError):
                raise RedcubeError(f"{where}: keyframe {i} holds a value that is not a number; fix the file.") from None
            if not all(math.isfinite(v) for v in vals.values()):
                raise RedcubeError(f"{where}: keyframe {i} holds a value that is not finite; fix the file.")
            keys.append(Camera(**vals))
        if not keys:
            raise RedcubeError(f"{where} has no keyframes; add at least one.")
        return cls(keys, loop=bool(d.get("loop", False)))

    @classmethod
    def load(cls, path: str | Path) -> "CameraPath":
        return cls.from_dict(read_json(Path(path), "path file", "a JSON camera path"), where=f"path file {path}")

    def problems(self, scene: Scene) -> list[str]:
        """Keyframes outside the training distribution, one line each."""
        return [f"keyframe {i}: {'; '.join(p)}" for i, c in enumerate(self.keyframes) if (p := c.problems(scene))]


def _catmull_rom(p0: float, p1: float, p2: float, p3: float, t: float) -> float:
    """Uniform Catmull-Rom spline between p1 and p2 (passes through every keyframe)."""
    return 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)


def preset(name: str, scene: Scene) -> CameraPath:
    """A named path: 'orbit' circles the cube looking at it; 'walk' crosses the world through the cube."""
    y = scene.height[0]
    b = scene.pos_bounds
    if name == "orbit":
        r, n = 0.9 * b, 12
        around = [(r * math.sin(a), r * math.cos(a)) for a in (2 * math.pi * i / n for i in range(n))]
        keys = [Camera(x=x, z=z, yaw=look_at((x, y, z), (0.0, y, 0.0))[0], y=y) for x, z in around]
        return CameraPath(keys, loop=True)
    if name == "walk":
        # A diagonal walk through the cube's centre, then a turn to look back at it.
        sx, sz = 0.6 * b, 0.95 * b
        yaw = look_at((sx, y, sz), (0.0, y, 0.0))[0]  # forward = direction of travel, towards -x, -z
        keys = [Camera(x=sx * s, z=sz * s, yaw=yaw, y=y) for s in (1.0, 0.5, 0.0, -0.5, -1.0)]
        keys.append(Camera(x=-sx, z=-sz, yaw=(yaw + math.pi) % (2 * math.pi), y=y))
        return CameraPath(keys, loop=False)
    raise RedcubeError(f"unknown path preset {name!r}; choose one of {list(PRESETS)}.")
