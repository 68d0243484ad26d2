"""The Worlds tab's state, without GUI calls: an mNIF with its latent diffusion model, four corner worlds, the
(u, v) scrub, sampled or loaded latents, the nearest training world, latent files and the interpolation video.

The current latent is the bilinear interpolation of the corner worlds' training latents (corners a, b, c, d
at (u, v) = (0, 0), (1, 0), (0, 1), (1, 1)):

    phi(u, v) = (1 - u)(1 - v) phi_a + u (1 - v) phi_b + (1 - u) v phi_c + u v phi_d

or a latent drawn by DDIM (or read from a file), until the corners or (u, v) move again. The nearest training
world is the one whose latent is closest in L2 distance in latent space (not in picture space). Every bad input
is one sentence (a RedcubeError) and leaves the state as it was.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.commands.sample_mnif import diffusion_path, load_latents, save_latents
from app.gui.training_session import ASSETS
from app.video import check_video_args, encode_mp4
from app.gui.video_session import Exports, VideoJob
from app.gui.settings import apply_or_keep, output_path
from app.gui.tab_parts import LoadingSession
from app.gui.worlds_view import VIDEO_SIZE, render_pair, side_by_side
from renderer.errors import RedcubeError
from renderer.scene import Scene
from renderer.worlds import WorldParams, check_index, train_worlds
from training.mnif.autodecode import load_mnif
from training.mnif.diffusion import LatentDiffusion, latents_hash

DEFAULT_MNIF = ASSETS / "mnif" / "checkpoint.safetensors"
RES_RANGE = (32, 128)
VIDEO_DEFAULTS = {"frames": 48, "fps": 12, "out": "worlds.mp4"}


@dataclass
class LoadedMNIF:
    model: torch.nn.Module
    latents: torch.Tensor
    """Training latents [N, H]; row i is `train_worlds(N)[i]` (the seeded training split)."""
    worlds: list[WorldParams]
    path: Path
    step: int
    fingerprint: str
    diffusion: object | None
    """The LatentDiffusion trained on these latents, or None (then `no_diffusion` says why)."""
    no_diffusion: str = ""


def read_mnif(path: str | Path) -> tuple[LoadedMNIF, list[tuple[str, str]]]:
    """An mNIF checkpoint and the diffusion model beside it; messages (text, level) say what was loaded."""
    path = Path(path)
    if path == DEFAULT_MNIF and not path.exists():
        raise RedcubeError(f"no mNIF is shipped at {path} yet; train one with `redcube train-mnif --out assets/mnif` "
                           "or pick a checkpoint with Load mNIF.")
    model, latents, record = load_mnif(path)
    fingerprint = latents_hash(latents)
    loaded = LoadedMNIF(model, latents, train_worlds(len(latents)), path, int(record.get("step", 0)), fingerprint, None)
    c = model.config
    notes = [(f"loaded mNIF {path}: {c.bases} bases, {c.latent_dim}-number latents, {len(latents)} training worlds", "info")]
    dpath = diffusion_path(path, None)
    try:
        if not dpath.exists():
            raise RedcubeError(f"no diffusion model beside this mNIF ({dpath}), so Sample is off; "
                               "train one with redcube train-mnif --diffusion-only.")
        ld = LatentDiffusion.load(dpath)
        ld.check_mnif(latents)
        loaded.diffusion = ld
    except RedcubeError as e:
        loaded.no_diffusion = str(e)
        notes.append((str(e), "warn"))
    return loaded, notes


def nearest_world(latents: torch.Tensor, phi: torch.Tensor) -> tuple[int, float]:
    """Index and L2 distance of the training latent [N, H] closest to phi [H]."""
    d = (latents - phi).norm(dim=1)
    i = int(d.argmin())
    return i, float(d[i])


def bilinear(corners: torch.Tensor, u: float, v: float) -> torch.Tensor:
    """phi(u, v) from corner latents [4, H] (a, b, c, d at (0, 0), (1, 0), (0, 1), (1, 1))."""
    w = torch.tensor([(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v], dtype=corners.dtype)
    return w @ corners


def around_corners(n: int) -> list[tuple[float, float]]:
    """n (u, v) points evenly along the square's edges a -> b -> d -> c -> a, one step short of the start (a loop)."""
    s = 4 * np.arange(n) / n  # 0 to 4: one unit per edge
    u, v = np.interp(s, range(5), [0, 1, 1, 0, 0]), np.interp(s, range(5), [0, 0, 1, 1, 0])
    return list(zip(u.tolist(), v.tolist()))


class WorldsSession(LoadingSession, Exports):
    def __init__(self, scene: Scene, default: Path = DEFAULT_MNIF):
        super().__init__()
        self.scene = scene
        self.default = Path(default)
        self.mnif: LoadedMNIF | None = None
        self.corners = [0, 1, 2, 3]
        self.u = self.v = 0.0
        self.override: tuple[torch.Tensor, str] | None = None
        """A sampled or loaded latent and what it is; None while the interpolation is shown."""
        self.res = 64
        self.steps, self.seed = 50, 0
        self.video = dict(VIDEO_DEFAULTS)
        self.sample_ms: float | None = None
        self._lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------------
    def load(self, path: str | Path) -> list[tuple[str, str]]:
        """Load an mNIF (and its diffusion model); on an error the loaded one stays."""
        loaded, notes = read_mnif(path)
        if loaded.model.scene != self.scene:
            notes.append(("this mNIF was trained on another scene config; the nearest-world picture shows the app's scene.", "warn"))
        with self._lock:
            self.mnif, self.override = loaded, None
            n = len(loaded.latents)
            self.corners = [min(i, n - 1) for i in range(4)]
            notes += self._apply_remembered(loaded)
            self.version += 1
        return notes

    def follow(self, model: torch.nn.Module, latents: torch.Tensor, step: int) -> None:
        """A training run's newer weights and latents (Train on): the worlds re-render; its diffusion model waits for
        the run's end, since it was fitted to the old latents."""
        with self._lock:
            m = self.mnif
            self.mnif = LoadedMNIF(model, latents, m.worlds, m.path, step, latents_hash(latents), None,
                                   "the mNIF is training: its diffusion model is retrained when the run ends.")
            self.version += 1

    def load_async(self, done, path: str | Path | None = None) -> None:
        """Load an mNIF (default: the last launch's, else the shipped one) on a short thread, `loading` saying which
        (importing diffusers takes seconds); done(text, level) for each message."""
        path = path or self._remembered.get("mnif") or self.default

        def load():
            for text, level in self.load(path):
                done(text, level)

        self._in_background("redcube-mnif-load", load, done, Path(path), str(path), "pick another mNIF checkpoint")

    def empty(self) -> bool:
        return self.mnif is None

    # -- remembered between launches -----------------------------------------------------------
    def choices(self) -> dict:
        """What the settings file keeps; before any load, the last launch's mNIF and corners are kept as they were."""
        out = {"u": self.u, "v": self.v, "res": self.res, "steps": self.steps, "seed": self.seed, "video": dict(self.video)}
        m = self.mnif
        if m is None:
            return {**out, **self._remembered}
        return {**out, "mnif": str(m.path), "corners": list(self.corners)}

    def restore(self, d: dict) -> str | None:
        """Take the last launch's choices (at start, before any load). Values that do not fit are dropped for the
        defaults; a remembered mNIF that is gone is the one thing said (an info message to show, else None)."""
        video = d.get("video") if isinstance(d.get("video"), dict) else {}
        apply_or_keep(lambda: self.set_uv(u=d.get("u", 0.0)), lambda: self.set_uv(v=d.get("v", 0.0)),
                      lambda: self.set_res(d.get("res", self.res)), lambda: self.set_sampling(steps=d.get("steps", self.steps)),
                      lambda: self.set_sampling(seed=d.get("seed", self.seed)),
                      *(lambda k=k: self.set_video(**{k: video[k]}) for k in VIDEO_DEFAULTS if k in video))
        path, corners = d.get("mnif"), d.get("corners")
        if isinstance(corners, list) and len(corners) == 4 and all(type(i) is int for i in corners):
            self._remembered["corners"] = corners
        if isinstance(path, str) and Path(path).is_file():
            self._remembered["mnif"] = path
            return None
        self._remembered.pop("corners", None)  # indices into an mNIF that is not there mean nothing
        if not isinstance(path, str) or Path(path) == self.default:
            return None  # the shipped one missing is said when the tab loads it
        return f"the Worlds tab's last mNIF {path} is gone; it opens the shipped one."

    def _apply_remembered(self, loaded: LoadedMNIF) -> list[tuple[str, str]]:
        """On the first load: the remembered corners if this is the remembered mNIF and they index its worlds."""
        r, self._remembered = self._remembered, {}
        corners = r.get("corners")
        if corners is None or Path(r.get("mnif", "")) != loaded.path:
            return []
        n = len(loaded.latents)
        if not all(0 <= i < n for i in corners):
            return [(f"the remembered corner worlds {corners} do not fit this mNIF's {n} worlds; corners reset.", "info")]
        self.corners = list(corners)
        return []

    def _need(self) -> LoadedMNIF:
        if self.mnif is None:
            raise RedcubeError("no mNIF is loaded; pick one with Load mNIF (a checkpoint written by redcube train-mnif).")
        return self.mnif

    # -- the current latent --------------------------------------------------------------------
    def set_corner(self, k: int, index: int) -> None:
        m = self._need()
        check_index(k, 4, "corner")
        self.corners[k] = check_index(index, len(m.latents), "corner world")
        self.override = None
        self.version += 1

    def set_uv(self, u: float | None = None, v: float | None = None) -> None:
        for name, val in (("u", u), ("v", v)):
            if val is not None and not (isinstance(val, (int, float)) and 0.0 <= val <= 1.0):
                raise RedcubeError(f"{name} = {val!r} is outside the interpolation square; choose a number from 0 to 1.")
        self.u = self.u if u is None else float(u)
        self.v = self.v if v is None else float(v)
        self.override = None
        self.version += 1

    def current(self) -> torch.Tensor:
        """The latent [H] shown: the override, else the interpolation of the corners at (u, v)."""
        m = self._need()
        if self.override is not None:
            return self.override[0]
        return bilinear(m.latents[self.corners], self.u, self.v)

    def describe(self) -> str:
        if self.override is not None:
            return f"current latent: {self.override[1]}"
        a, b, c, d = self.corners
        return f"current latent: bilinear mix at u {self.u:.2f}, v {self.v:.2f} of corners a {a}, b {b}, c {c}, d {d}"

    def nearest(self) -> tuple[int, float, WorldParams]:
        """The training world nearest to the current latent (L2 in latent space): index, distance, parameters."""
        m = self._need()
        i, dist = nearest_world(m.latents, self.current())
        return i, dist, m.worlds[i]

    def snapshot(self) -> dict | None:
        """What the render thread needs, taken together (None while no mNIF is loaded)."""
        with self._lock:
            if self.mnif is None:
                return None
            i, _, world = self.nearest()
            return {"model": self.mnif.model, "latent": self.current(), "world": world, "index": i, "version": self.version}

    # -- sampling and latent files -------------------------------------------------------------
    def set_res(self, res: int) -> None:
        if not (isinstance(res, int) and RES_RANGE[0] <= res <= RES_RANGE[1]):
            raise RedcubeError(f"mNIF render resolution {res!r} is out of range; choose a whole number from {RES_RANGE[0]} to {RES_RANGE[1]}.")
        self.res = res
        self.version += 1

    def set_sampling(self, steps: int | None = None, seed: int | None = None) -> None:
        """DDIM steps (checked against the loaded diffusion model when sampling) and seed, as the tab's fields set them."""
        if steps is not None:
            if not (type(steps) is int and steps >= 1):
                raise RedcubeError(f"{steps!r} sampling steps is invalid; choose a whole number from 1 up.")
            self.steps = steps
        if seed is not None:
            if not (type(seed) is int and seed >= 0):
                raise RedcubeError(f"sampling seed {seed!r} is invalid; choose a whole number from 0 up.")
            self.seed = seed

    def set_video(self, frames: int | None = None, fps: int | None = None, out: str | None = None) -> None:
        """The interpolation video's options (checked in full when the export starts)."""
        for key, value, ok in (("frames", frames, lambda x: type(x) is int and 2 <= x <= 2000),
                               ("fps", fps, lambda x: type(x) is int and 1 <= x <= 240), ("out", out, lambda x: isinstance(x, str) and x)):
            if value is None:
                continue
            if not ok(value):
                raise RedcubeError(f"video {key} {value!r} is invalid; see the Worlds tab's video fields.")
            self.video[key] = value

    def sample(self) -> str:
        """Draw one latent by DDIM with the chosen steps and seed; the seed then moves on, so Sample again draws anew."""
        m = self._need()
        if m.diffusion is None:
            raise RedcubeError(m.no_diffusion)
        t0 = time.perf_counter()
        phi = m.diffusion.sample(1, steps=self.steps, seed=self.seed)[0]
        self.sample_ms = (time.perf_counter() - t0) * 1000
        self.override = (phi, f"sampled by DDIM, {self.steps} steps, seed {self.seed}")
        self.seed += 1
        self.version += 1
        return f"sampled a world by DDIM ({self.steps} steps, seed {self.seed - 1}) in {self.sample_ms:.0f} ms"

    def save_latent(self, path: str | Path) -> str:
        m = self._need()
        out = save_latents(output_path(path), self.current()[None].clone(), m.fingerprint)
        return f"saved the current latent to {out}"

    def load_latent(self, path: str | Path) -> str:
        m = self._need()
        z = load_latents(Path(path), m.fingerprint, m.model.config.latent_dim)
        self.override = (z[0], f"loaded from {Path(path).name}" + (f" (row 1 of {len(z)})" if len(z) > 1 else ""))
        self.version += 1
        return f"loaded a latent from {path}"

    # -- interpolation video -------------------------------------------------------------------
    def export(self, rasterizer, pose: torch.Tensor) -> None:
        """Start an mp4 of the latent going round the four corners, seen from a fixed camera (side by side:
        the mNIF and the nearest training world), on a worker thread with progress and cancel."""
        m = self._need()
        if self.running:
            raise RedcubeError("an interpolation video is already being written; cancel it first.")
        o, res = dict(self.video), self.res
        frames = o["frames"]
        if not (isinstance(frames, int) and 2 <= frames <= 2000):
            raise RedcubeError(f"{frames!r} video frames is out of range; choose a whole number from 2 to 2000.")
        out = output_path(o["out"])  # a bare name goes to the outputs folder
        check_video_args(out, "network", VIDEO_SIZE, o["fps"], m.model)
        corners = m.latents[self.corners].clone()

        def pictures():
            torch.set_num_threads(1)
            for u, v in around_corners(frames):
                phi = bilinear(corners, u, v)
                world = m.worlds[nearest_world(m.latents, phi)[0]]
                net, gt, _, _ = render_pair(m.model, phi, world, pose, res, rasterizer, self.scene)
                yield side_by_side(net, gt)

        self.job = VideoJob.start(frames, lambda job: encode_mp4(pictures(), frames, out, (2 * VIDEO_SIZE, VIDEO_SIZE), o["fps"],
                                                                 job.progress, job.cancel))


def describe_world(p: WorldParams) -> str:
    """Two short lines: colour and size, then pose (a wrapped line would break inside a number)."""
    return (f"hue {p.hue:.2f}, size {p.size:.2f} m, height {p.height:.2f} m,\n"
            f"yaw {p.yaw_deg:.0f} deg, offset x {p.x:+.2f} m, z {p.z:+.2f} m")

