"""The user's settings file: the last checkpoint, view settings and panel choices, remembered between launches.

Lives at $XDG_CONFIG_HOME/redcube/settings.json (default ~/.config/redcube/settings.json). A missing
file means defaults; a damaged one is set aside (renamed *.bad) with a message, never a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

from renderer.errors import RedcubeError
from renderer.numbers import fits_float32


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "redcube"


def outputs_dir() -> Path:
    """Where the app writes what a person makes (runs, videos, screenshots): $REDCUBE_HOME, default ~/redcube."""
    return Path(os.environ.get("REDCUBE_HOME") or Path.home() / "redcube").expanduser()


def output_path(name: str | Path) -> Path:
    """A bare or relative output name lands in `outputs_dir()` (never in whatever folder the app started from)."""
    p = Path(name).expanduser()
    return p if p.is_absolute() else outputs_dir() / p


@dataclass
class Settings:
    checkpoint: str | None = None  # the checkpoint shown at the last exit (loaded again at start)
    pixels_checkpoint: str | None = None  # the last pixel network on screen: the render-mode switch opens it again
    latent_checkpoint: str | None = None  # the last latent (TinyVAE) network on screen, for the same switch
    view: dict = field(default_factory=dict)  # ViewSettings.to_dict()
    camera: dict = field(default_factory=dict)  # speed, free mode and the last pose
    training: dict = field(default_factory=dict)  # the Training tab's TrainChoices
    video: dict = field(default_factory=dict)  # the Path & video tab's export choices
    window: dict = field(default_factory=dict)  # width and height
    worlds: dict = field(default_factory=dict)  # WorldsSession.choices()
    rotations: dict = field(default_factory=dict)  # RotationsSession.choices()


def apply_or_keep(*calls: Callable[[], None]) -> None:
    """Run each setter with a remembered value; one that refuses it (a hand-edited or outdated file) keeps its default."""
    for call in calls:
        try:
            call()
        except RedcubeError:
            pass


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """(settings, a message if the file was damaged and set aside)."""
    path = path or config_dir() / "settings.json"
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return Settings(), None
    except (OSError, ValueError) as e:
        bad = path.with_suffix(".json.bad")
        with contextlib.suppress(OSError):
            path.replace(bad)
        return Settings(), f"settings file {path} was unreadable ({e}); it was moved to {bad.name} and defaults are used."
    kept, notes = check_entries(raw)
    return Settings(**kept), "\n".join(notes) or None


WINDOW_RANGE = (200, 8192)  # window edges in pixels a remembered size may have (a 1e8-pixel window aborts the app)


def check_entries(raw: dict) -> tuple[dict, list[str]]:
    """The file's entries one by one: a bad one is dropped (its default is used) with one line saying so."""
    kept, notes = {}, []
    for f in fields(Settings):
        if f.name not in raw:
            continue
        value = raw[f.name]
        if f.default is None and not (value is None or isinstance(value, str)):  # a checkpoint path
            notes.append(f"settings file: {f.name} {value!r:.60} is not a file path; it is ignored.")
        elif f.default is not None and not isinstance(value, dict):
            notes.append(f"settings file: {f.name} {value!r:.60} is not a JSON object; its defaults are used.")
        else:
            kept[f.name], problem = _check_section(f.name, value) if isinstance(value, dict) else (value, None)
            if problem:
                notes.append(f"settings file: {f.name} {problem}; the defaults are used for those.")
    return kept, notes


def _check_section(name: str, d: dict) -> tuple[dict, str | None]:
    """Sections whose values go straight into widgets and the window get their types and ranges checked here."""
    if name == "window":
        lo, hi = WINDOW_RANGE
        ok = all(isinstance(d.get(k), int) and not isinstance(d.get(k), bool) and lo <= d[k] <= hi for k in ("width", "height") if k in d)
        return (d, None) if ok else ({}, f"size {d.get('width')!r} x {d.get('height')!r} is not two whole numbers from {lo} to {hi}")
    if name in ("training", "view"):
        from app.gui.state import ViewSettings
        from app.gui.training_session import TrainChoices

        return _same_types(d, asdict(TrainChoices() if name == "training" else ViewSettings()))
    if name == "camera":
        bad = [k for k in ("speed",) if k in d and not (fits_float32(d[k]) and d[k] > 0)]
        bad += ["free"] if "free" in d and not isinstance(d["free"], bool) else []
        pose = d.get("pose", {})
        bad += ["pose"] if not (isinstance(pose, dict) and all(fits_float32(v) for v in pose.values())) else []
        return ({k: v for k, v in d.items() if k not in bad}, f"entries {bad} had bad values") if bad else (d, None)
    return d, None


def _same_types(d: dict, defaults: dict) -> tuple[dict, str | None]:
    """Entries whose value has its default's type (whole numbers for ints, finite numbers for floats)."""
    def fits(v, default) -> bool:
        if isinstance(default, bool) or isinstance(default, str):
            return type(v) is type(default)
        if isinstance(default, int):
            return isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2 ** 31
        if isinstance(default, float):
            return fits_float32(v)
        return True

    bad = [k for k, v in d.items() if k in defaults and not fits(v, defaults[k])]
    return ({k: v for k, v in d.items() if k not in bad}, f"entries {bad} had values of the wrong type") if bad else (d, None)


def save_settings(settings: Settings, path: Path | None = None) -> str | None:
    """Write atomically; returns an error message instead of raising (the app must keep running)."""
    path = path or config_dir() / "settings.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(settings), f, indent=2)
        os.replace(tmp, path)
    except OSError as e:
        return f"could not save settings to {path} ({e.strerror})."
    return None
