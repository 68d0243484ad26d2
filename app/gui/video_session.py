"""The Path & video tab's state, without GUI calls: the camera path, preview playback and export jobs.

Exports run on a worker thread (the window stays live) and report progress through a `VideoJob`;
Cancel sets its event. Every outcome comes back as one line for the window's message bar.
"""

from __future__ import annotations

import threading
from pathlib import Path

from app.paths import CameraPath, preset
from app.gui.settings import output_path
from app.video import export_video
from app.gui.workers import start_thread
from renderer.camera import Camera
from renderer.errors import RedcubeError
from renderer.scene import Scene

DEFAULTS = {"panel": "side_by_side", "res": 256, "fps": 30, "seconds": 10.0, "out": "redcube.mp4"}
MAX_SECONDS = 600.0


class VideoJob:
    """A running export: progress for the bar, an event for Cancel, the outcome for the message line."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.cancel = threading.Event()
        self.result = None
        self.error: str | None = None
        self.finished = False
        self.reported = False

    @classmethod
    def start(cls, total: int, work) -> "VideoJob":
        """Run work(job) -> VideoResult on a worker thread; its error becomes `error`, one sentence."""
        job = cls(total)

        def run():
            try:
                job.result = work(job)
            except RedcubeError as e:
                job.error = str(e)
            except Exception as e:  # an encoder failure must not pass silently
                job.error = f"video export failed ({type(e).__name__}: {e})."
            job.finished = True

        start_thread("redcube-video", run)
        return job

    def progress(self, done: int, total: int) -> None:
        self.done = done

    def outcome(self) -> tuple[str, str] | None:
        """(message, level) once, when the job has finished."""
        if not self.finished or self.reported:
            return None
        self.reported = True
        if self.error:
            return self.error, "error"
        r = self.result
        if r.cancelled:
            return f"export cancelled after {self.done} frames; nothing was written.", "warn"
        return f"wrote {r.path}: {r.frames} frames in {r.seconds:.1f} s ({r.fps:.1f} frames/s)", "info"


class Exports:
    """What a session with video exports (`job`, the newest) shares: Cancel, whether one runs, its outcome."""

    job: VideoJob | None = None

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel.set()

    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.finished

    def outcome(self) -> tuple[str, str] | None:
        """(message, level) once, when a job has finished."""
        return self.job.outcome() if self.job is not None else None


class VideoSession(Exports):
    def __init__(self, scene: Scene, options: dict | None = None):
        self.scene = scene
        self.path = CameraPath()
        self.options = dict(DEFAULTS)
        """panel, res, fps, seconds, out: the export choices (remembered in the settings file). The path lasts
        `seconds` whatever the frame rate: frames = seconds x fps."""
        kinds = {float: (int, float)}
        self.options.update({k: v for k, v in (options or {}).items()
                             if k in DEFAULTS and isinstance(v, kinds.get(type(DEFAULTS[k]), type(DEFAULTS[k])))
                             and not isinstance(v, bool)})
        self.playback: tuple[list[Camera], float] | None = None

    # -- the path ------------------------------------------------------------------------------
    def add_keyframe(self, cam: Camera) -> str:
        self.path.add(cam)
        return f"keyframe {len(self.path.keyframes)} added"

    def clear(self) -> None:
        self.path, self.playback = CameraPath(), None

    def use_preset(self, name: str) -> str:
        self.path = preset(name, self.scene)
        return f"path preset '{name}': {len(self.path.keyframes)} keyframes"

    def load(self, file: str | Path) -> list[tuple[str, str]]:
        """Messages (text, level): what was loaded, and a warning if it leaves the training distribution."""
        self.path = CameraPath.load(file)
        out = [(f"loaded path {file}: {len(self.path.keyframes)} keyframes", "info")]
        out += [(f"path leaves the training distribution ({p})", "warn") for p in self.path.problems(self.scene)[:1]]
        return out

    def save(self, file: str | Path) -> str:
        return f"saved path to {self.path.save(output_path(file))}"

    # -- preview -------------------------------------------------------------------------------
    def frames(self) -> int:
        """Frames of the preview and the export: the path's duration times the frame rate."""
        seconds, fps = self.options["seconds"], self.options["fps"]
        if not (isinstance(seconds, (int, float)) and 0.1 <= seconds <= MAX_SECONDS):
            raise RedcubeError(f"path duration {seconds!r} s is out of range; choose 0.1 to {MAX_SECONDS:g} seconds.")
        if not (isinstance(fps, int) and 1 <= fps <= 240):
            raise RedcubeError(f"video fps {fps!r} is out of range; choose a whole number from 1 to 240.")
        return max(2, round(float(seconds) * fps))

    def play(self, now: float) -> None:
        self.playback = (self.path.sample(self.frames()), now)

    def stop(self) -> None:
        self.playback = None

    def camera_at(self, now: float) -> Camera | None:
        """The preview's camera for this moment (None when not playing; a loop wraps round)."""
        if self.playback is None:
            return None
        cams, t0 = self.playback
        i = int((now - t0) * float(self.options["fps"]))
        if i >= len(cams):
            if not self.path.loop:
                self.playback = None
                return None
            i %= len(cams)
        return cams[i]

    # -- export --------------------------------------------------------------------------------
    def export(self, rasterizer, model) -> None:
        """Start an export of the path on a worker thread."""
        if self.running:
            raise RedcubeError("an export is already running; cancel it first.")
        o = dict(self.options)
        out = output_path(o["out"])  # a bare name goes to the outputs folder, not the folder the app started in
        cams = self.path.sample(self.frames())
        self.job = VideoJob.start(len(cams), lambda job: export_video(
            cams, out, rasterizer=rasterizer, model=model, panel=o["panel"], res=int(o["res"]), fps=int(o["fps"]),
            progress=job.progress, cancel=job.cancel))
