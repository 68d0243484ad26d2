"""The user's settings file: the last checkpoint, view settings and panel choices, remembered between launches.

Lives at $XDG_CONFIG_HOME/redcube/settings.json (default ~/.config/redcube/settings.json). A missing
file means defaults; a damaged one is set aside (renamed *.bad) with a message, never a crash.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

from renderer.errors import RedcubeError


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "redcube"


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "redcube"


@dataclass
class Settings:
    checkpoint: str | None = None
    """The checkpoint shown at the last exit (loaded again at start)."""
    pixels_checkpoint: str | None = None
    """The last pixel network on screen: the View tab's render-mode switch opens it again."""
    latent_checkpoint: str | None = None
    """The last latent (TinyVAE) network on screen, for the same switch."""
    view: dict = field(default_factory=dict)
    """ViewSettings.to_dict()."""
    camera: dict = field(default_factory=dict)
    """speed, free mode and the last pose."""
    training: dict = field(default_factory=dict)
    """The training panel's choices: model, res, data, budget."""
    video: dict = field(default_factory=dict)
    """The video panel's choices: panel, res, fps, frames, last output."""
    window: dict = field(default_factory=dict)
    """Window width and height."""
    worlds: dict = field(default_factory=dict)
    """WorldsSession.choices(): the mNIF, corner worlds, u, v, render res."""
    rotations: dict = field(default_factory=dict)
    """RotationsSession.choices(): the checkpoint and data set, object, rotations, camera yaw, colour-by."""


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
        try:
            path.replace(bad)
        except OSError:
            pass
        return Settings(), f"settings file {path} was unreadable ({e}); it was moved to {bad.name} and defaults are used."
    names = {f.name for f in fields(Settings)}
    kept = {k: v for k, v in raw.items() if k in names and (v is None or isinstance(v, (str, dict)))}
    return Settings(**kept), None


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
