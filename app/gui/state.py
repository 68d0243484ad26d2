"""Plain GUI state with no dearpygui import: the fly camera and the view settings.

Callbacks and key handlers only change these objects; the frame loop reads them. Each object keeps
a `version` counter that bumps on every change, so renderers know when a view is stale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from renderer.camera import Camera, forward as view_direction
from renderer.errors import RedcubeError
from renderer.scene import Scene

VIEW_MODES = {
    "side_by_side": "Side by side",
    "split": "Split slider",
    "network": "Network only",
    "gt": "Ground truth only",
    "error": "Abs error heat map",
    "latent": "Latent channels 1-3",
}
NET_RESOLUTIONS = (32, 48, 64, 96, 128, 192, 256, 384, 512)
NETWORK_KINDS = {"pixels": "pixels", "latent": "latent -> TinyVAE 512²"}
"""The View tab's render-mode switch: a network that predicts RGB, or TinyVAE latents decoded to pixels."""
UPSCALE = ("nearest", "bilinear")
FLYING_RESOLUTIONS = (128, 256, 512)

# Held keys -> (forward, right, up, turn) rates; names are lower-case key names, not GUI codes.
MOVE_KEYS = {
    "w": (1, 0, 0, 0), "up": (1, 0, 0, 0),
    "s": (-1, 0, 0, 0), "down": (-1, 0, 0, 0),
    "a": (0, -1, 0, 0), "d": (0, 1, 0, 0),
    "left": (0, 0, 0, 1), "right": (0, 0, 0, -1), "q": (0, 0, 0, 1), "e": (0, 0, 0, -1),
    "space": (0, 0, 1, 0), "c": (0, 0, -1, 0),  # height: free mode only
}

SHORTCUTS = [
    ("W / S, Up / Down", "move forward / back"),
    ("A / D", "strafe left / right"),
    ("Q / E, Left / Right", "turn left / right"),
    ("drag (left mouse)", "turn (and pitch in free mode)"),
    ("Space / C", "up / down (free mode)"),
    ("Shift", "move 3x faster"),
    ("R", "reset the camera (and leave free mode)"),
    ("F", "toggle free mode"),
    ("1 .. 6", "view: side by side / split / network / GT / error / latent channels"),
    ("P", "pause / resume training"),
    ("K", "add the camera as a path keyframe"),
    ("F12", "screenshot to PNG"),
    ("H or F1", "show this help"),
]


def network_kind(record: dict) -> str:
    """'latent' for a checkpoint that records the TinyVAE it was trained with, else 'pixels'."""
    return "latent" if record.get("vae") and record["model"]["kind"] != "tinyvae" else "pixels"


def wrap_angle(a: float) -> float:
    """Angle in [0, 2 pi)."""
    return a % (2 * math.pi)


@dataclass
class FlyCamera:
    """A WASD fly camera over the scene's `Camera`.

    In normal mode the camera stays at eye level with zero pitch and its position is clamped to the
    training bounds (where a pose-conditioned model is valid). Free mode lifts the clamps and adds
    height and pitch; `problems()` then says how the pose leaves the training distribution.
    No collision: flying into the cube is allowed.
    """

    scene: Scene
    home: Camera = field(default_factory=lambda: Camera(x=1.5, z=1.5, yaw=math.pi / 4))
    """Start and reset pose: a three-quarter view of the cube (yaw pi/4 looks at the origin from (1.5, 1.5))."""
    speed: float = 1.0  # metres per second
    turn_rate: float = 1.6  # key turning, radians per second
    drag_sensitivity: float = 0.005  # radians of turn per pixel of mouse drag
    free: bool = False
    camera: Camera = field(init=False)
    version: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.camera = Camera(**vars(self.home))
        self._constrain()

    # -- changes ------------------------------------------------------------------------------
    def update(self, held: set[str], dt: float, fast: bool = False) -> bool:
        """Apply held movement keys for dt seconds; True if the camera moved."""
        f = r = u = t = 0.0
        for key in held:
            df, dr, du, dt_ = MOVE_KEYS.get(key, (0, 0, 0, 0))
            f, r, u, t = f + df, r + dr, u + du, t + dt_
        if not (f or r or u or t) or dt <= 0:
            return False
        dt = min(dt, 0.1)  # a stalled frame must not teleport the camera
        step = self.speed * dt * (3.0 if fast else 1.0)
        self.turn(t * self.turn_rate * dt, 0.0)
        self.move(f * step, r * step, u * step)
        return True

    def move(self, forward: float, right: float, up: float = 0.0) -> None:
        """Move in the camera's ground-plane frame (metres)."""
        c = self.camera
        fx, _, fz = view_direction(c.yaw)  # level forward; right is (-fz, 0, fx)
        c.x += fx * forward - fz * right
        c.z += fz * forward + fx * right
        if self.free:
            c.y += up
        self._changed()

    def turn(self, dyaw: float, dpitch: float = 0.0) -> None:
        """Positive dyaw turns left (yaw grows counter-clockwise seen from above)."""
        c = self.camera
        c.yaw = wrap_angle(c.yaw + dyaw)
        if self.free:
            c.pitch = max(-math.radians(85), min(math.radians(85), c.pitch + dpitch))
        self._changed()

    def drag(self, dx: float, dy: float) -> None:
        """Mouse drag by (dx, dy) pixels: right turns right, up pitches up (free mode)."""
        self.turn(-dx * self.drag_sensitivity, -dy * self.drag_sensitivity)

    def reset(self) -> None:
        """Home pose, back inside the training distribution (free mode off)."""
        self.camera = Camera(**vars(self.home))
        self.free = False
        self._changed()

    def set_free(self, free: bool) -> None:
        self.free = bool(free)
        self._changed()

    def set_pose(self, **values: float) -> None:
        """Set pose fields by name (x, z, yaw, y, pitch; yaw and pitch in radians)."""
        for name, v in values.items():
            if name not in ("x", "y", "z", "yaw", "pitch"):
                raise RedcubeError(f"unknown pose field {name!r}; use x, y, z, yaw or pitch.")
            if not math.isfinite(float(v)):
                raise RedcubeError(f"pose {name} must be a finite number, got {v!r}.")
            setattr(self.camera, name, float(v))
        self.camera.yaw = wrap_angle(self.camera.yaw)
        self._changed()

    def set_camera(self, cam: Camera) -> None:
        self.camera = Camera(**vars(cam))
        self._changed()

    # -- reading ------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        return self.camera.problems(self.scene)

    def _constrain(self) -> None:
        """Outside free mode: eye level, level gaze, position inside the training bounds."""
        if self.free:
            return
        c, b = self.camera, self.scene.pos_bounds
        c.x, c.z = max(-b, min(b, c.x)), max(-b, min(b, c.z))
        lo, hi = self.scene.height
        c.y = max(lo, min(hi, c.y))
        plo, phi = (math.radians(p) for p in self.scene.pitch_deg)
        c.pitch = max(plo, min(phi, c.pitch))

    def _changed(self) -> None:
        self._constrain()
        self.version += 1


@dataclass
class ViewSettings:
    """What the viewport shows and how; persisted in the user settings file."""

    mode: str = "side_by_side"
    net_res: int = 64
    upscale: str = "nearest"
    split: float = 0.5  # the split slider: ground truth left of it, network right
    display: int = 384  # edge of one displayed panel in screen pixels
    error_gain: float = 4.0  # heat-map scale: an absolute error of 1 / gain maps to the top of the colour map
    flying_res: int = 128
    """Latent networks while the camera moves: decoded at most this size (16² latents at 128), since a 512² decode
    takes seconds on a CPU; the still camera then gets net_res."""
    target_fps: float = 30.0
    """Pixel networks while the camera moves: network pictures per second that the dynamic resolution holds (at
    least 64²); a still camera then gets net_res."""
    dynamic: bool = True  # dynamic resolution (off: every picture at net_res, however long it takes)
    version: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.mode not in VIEW_MODES:
            raise RedcubeError(f"unknown view mode {self.mode!r}; choose one of {list(VIEW_MODES)}.")
        if self.upscale not in UPSCALE:
            raise RedcubeError(f"unknown upscale {self.upscale!r}; choose nearest or bilinear.")
        if not 32 <= int(self.net_res) <= 512:
            raise RedcubeError(f"network resolution {self.net_res} is out of range; choose 32 to 512.")
        if int(self.flying_res) not in FLYING_RESOLUTIONS:
            raise RedcubeError(f"flying resolution {self.flying_res} is not offered; choose one of {list(FLYING_RESOLUTIONS)}.")
        if not isinstance(self.dynamic, bool):
            raise RedcubeError(f"dynamic resolution {self.dynamic!r} must be true or false.")
        if not (isinstance(self.target_fps, (int, float)) and math.isfinite(self.target_fps) and 1 <= self.target_fps <= 240):
            raise RedcubeError(f"target network fps {self.target_fps!r} is out of range; choose a number from 1 to 240.")
        if not 128 <= int(self.display) <= 1024:
            raise RedcubeError(f"display size {self.display} is out of range; choose 128 to 1024.")
        self.split = max(0.0, min(1.0, float(self.split)))

    def set(self, **values) -> None:
        old = {k: getattr(self, k) for k in values}
        try:
            for k, v in values.items():
                if k not in {f.name for f in fields(self)} or k == "version":
                    raise RedcubeError(f"unknown view setting {k!r}.")
                try:
                    setattr(self, k, type(old[k])(v))
                except (TypeError, ValueError):
                    raise RedcubeError(f"view setting {k} {v!r} is not a {type(old[k]).__name__}; "
                                       "enter a value of that kind.") from None
            self.validate()
        except RedcubeError:
            for k, v in old.items():
                setattr(self, k, v)
            raise
        self.version += 1

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "version"}

    @classmethod
    def from_dict(cls, d: dict) -> "ViewSettings":
        names = {f.name for f in fields(cls)} - {"version"}
        return cls(**{k: v for k, v in d.items() if k in names})
