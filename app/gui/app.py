"""The redcube desktop app: one dearpygui window, its handlers and its frame loop.

The app owns the frame loop (callbacks run on the GUI thread between frames, via dearpygui's manual
callback queue). Handlers only change plain state (`FlyCamera`, `ViewSettings`, each tab's session) or start
background work (checkpoint loads, exports); `Viewer.tick()` and each tab's `tick()` turn state into render requests
and textures. The side tabs share one interface (`app.gui.tab.Tab`): the app loops over them and names none.
Widgets are built in `app.gui.layout` and the panels.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import queue
import time
from dataclasses import dataclass
from pathlib import Path

import dearpygui.dearpygui as dpg

from app.gui import keys, layout
from app.gui.settings import Settings, load_settings, output_path, save_settings
from app.gui.state import FlyCamera, ViewSettings, VIEW_MODES, network_kind
from app.gui.panel_view import SHIPPED
from app.gui.tab import Tab
from app.gui.training_session import ASSETS
from app.gui.viewer import Viewer
from app.gui.workers import ModelSlot, join_threads
from renderer.errors import RedcubeError
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from training.checkpoint import save_checkpoint

LATENT_DEFAULT = "posemlp_latent512.safetensors"  # the shipped latent network, written by `redcube train --latent --res 512`
NO_NETWORK = {  # the render-mode switch found no network of that kind
    "pixels": "no pixel network yet: train one in the Training tab or load a pixel checkpoint (File > Load checkpoint).",
    "latent": "no latent network yet: train one with `redcube train --latent --res 512 ...` "
              "or load a latent checkpoint (File > Load checkpoint); the current network stays.",
}
MAX_FPS = 60.0  # drawing faster only takes CPU from inference and training on a small machine
IDLE_FPS, IDLE_AFTER_S = 20.0, 1.0  # no input and nothing new for a second: redraw less often
WINDOW = (1200, 740)  # software GL (Xvfb, llvmpipe) spends most of a frame filling the window: keep it modest


def default_checkpoint() -> Path | None:
    """The first shipped network found: the sharpest that keeps up with the camera opens on a first launch."""
    return next((ASSETS / name for name, _ in SHIPPED if (ASSETS / name).exists()), None)


_UNSET = object()  # an argument the caller did not pass


def _positional(fn) -> int:
    """How many positional arguments fn accepts (3, all dearpygui gives, for *args)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 3
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


@dataclass
class Message:
    text: str
    level: str  # "info" | "warn" | "error"
    at: float


class App:
    def __init__(self, checkpoint: Path | None = None, scene: Scene | None = None, settings_path: Path | None = None,
                 width: int | None = None, height: int | None = None):
        self.settings_path = settings_path
        self.messages: list[Message] = []
        self.settings, note = load_settings(settings_path)
        for line in (note or "").splitlines():  # one line per bad entry of the settings file
            self.message(line, "warn")
        self._worker_said: dict[str, str | None] = {}  # the last error each render worker reported
        self.scene = scene or Scene()
        self.rasterizer = Rasterizer(self.scene)
        self.fly = FlyCamera(self.scene)
        self.view = self._restore_view()
        self._restore_camera()
        self.slot = ModelSlot()
        self.defaults = {"pixels": default_checkpoint(), "latent": ASSETS / LATENT_DEFAULT}
        """The shipped network of each kind, opened by the render-mode switch when none of that kind was on screen."""
        self.switching: str | None = None
        """The kind the render-mode switch is loading: the View tab's radio shows it until the load ends."""
        self.viewer = Viewer(self.scene, self.rasterizer, self.fly, self.view, self.slot)
        # The side tabs by short name, in the tab bar's order; each owns its state.
        self.tabs: dict[str, Tab] = {t.name: t for t in (cls(self) for cls in layout.TABS)}
        self.show_help = False
        self.frame = 0
        self._later: queue.SimpleQueue = queue.SimpleQueue()
        self.max_fps: float | None = MAX_FPS
        self.net_res_locked = False  # the user chose the network resolution on the command line
        self._active_at = 0.0
        self._drag_from = None
        self.size = (width or self.settings.window.get("width", WINDOW[0]), height or self.settings.window.get("height", WINDOW[1]))
        self._restore_tabs()
        self._build()
        self.open_checkpoint(checkpoint or self._startup_checkpoint(), remember=checkpoint is not None)

    # -- setup ---------------------------------------------------------------------------------
    def _restore_view(self) -> ViewSettings:
        try:
            return ViewSettings.from_dict(self.settings.view)
        except (RedcubeError, TypeError, ValueError) as e:
            self.message(f"settings file: the remembered view does not fit ({e}); the default view is used.", "warn")
            return ViewSettings()

    def _restore_camera(self) -> None:
        c = self.settings.camera
        try:
            self.fly.speed = float(c.get("speed", self.fly.speed))
            self.fly.set_free(bool(c.get("free", False)))
            if "pose" in c:
                self.fly.set_pose(**c["pose"])
        except (RedcubeError, TypeError, ValueError) as e:
            self.message(f"settings file: the remembered camera does not fit ({e}); the camera starts at home.", "warn")
            self.fly.reset()

    def _restore_tabs(self) -> None:
        """Each tab's choices of the last launch, before the panels are built (their widgets start from them); the
        remembered selections themselves wait for each tab's first load."""
        for tab in self.tabs.values():
            note = tab.restore(getattr(self.settings, tab.settings_key)) if tab.settings_key else None
            if note:
                self.message(note)

    def _startup_checkpoint(self) -> Path | None:
        last = self.settings.checkpoint
        return Path(last) if last and Path(last).exists() else default_checkpoint()

    def _build(self) -> None:
        dpg.create_context()
        dpg.configure_app(manual_callback_management=True)
        layout.build(self)
        dpg.create_viewport(title="redcube", width=self.size[0], height=self.size[1], vsync=False,
                            clear_color=layout.BACKGROUND)
        dpg.setup_dearpygui()
        dpg.show_viewport()

    # -- messages ------------------------------------------------------------------------------
    def message(self, text: str, level: str = "info") -> None:
        self.messages.append(Message(text, level, time.time()))
        del self.messages[:-50]
        print(f"redcube gui [{level}]: {text}", flush=True)

    def guard(self, fn):
        """Wrap a handler: a RedcubeError (or any bug) becomes a message in the window, never a crash.

        dearpygui hands a callback as many of (sender, app_data, user_data) as its signature names, so `run` names
        all three (a bare *args got the sender alone) and passes fn the leading ones it takes."""
        takes = _positional(fn)

        def run(sender=_UNSET, app_data=_UNSET, user_data=_UNSET):
            args = [a for a in (sender, app_data, user_data) if a is not _UNSET][:takes]
            try:
                fn(*args)
            except RedcubeError as e:
                self.message(str(e), "error")
            except Exception as e:  # keep the window alive; say what broke
                self.message(f"{type(e).__name__}: {e}", "error")
        return run

    # -- input handlers (state changes only) -----------------------------------------------------
    def on_keys(self, held: set[str], dt: float, fast: bool = False) -> None:
        self.fly.update(held, dt, fast)

    def on_drag(self, dx: float, dy: float) -> None:
        self.fly.drag(dx, dy)

    def on_key_press(self, name: str) -> None:
        actions = {
            "r": self.fly.reset,
            "f": lambda: self.fly.set_free(not self.fly.free),
            "h": self.toggle_help, "f1": self.toggle_help,
            "f12": lambda: self.screenshot(None),
        }
        for tab in self.tabs.values():
            actions.update(tab.keys())
        if name in ("1", "2", "3", "4", "5", "6"):
            self.view.set(mode=list(VIEW_MODES)[int(name) - 1])
        elif name in actions:
            actions[name]()

    def toggle_help(self) -> None:
        self.show_help = not self.show_help

    # -- checkpoints -----------------------------------------------------------------------------
    def open_checkpoint(self, path: Path | None, remember: bool = True) -> None:
        if path is None:
            self.message("no checkpoint yet: load one (File > Load checkpoint) or train one in the Training tab.", "warn")
            return

        def done(loaded, err):  # on the GUI thread, via `later`
            self.switching = None
            if err:
                self.message(err, "error")
                return
            first = remember or self.settings.checkpoint is None
            if first:
                self.settings.checkpoint = str(loaded.path)
            res = loaded.record.get("train", {}).get("res")  # a newly opened network: the resolution it learned
            self.show(loaded, res if first and isinstance(res, int) and 32 <= res <= 512 else None)
            self.message(f"loaded {loaded.path.name}: {loaded.record['model']['kind']}, step {loaded.step}")
            if Scene.from_dict(loaded.record["scene"]) != self.scene:
                self.message("this network was trained on a different scene config than the one shown; "
                             "its picture will not match the ground truth.", "warn")
        self.slot.load(Path(path), lambda m, e: self.later(lambda: done(m, e)), publish=False)

    def shown_kind(self) -> str | None:
        """'pixels' or 'latent' for the network on screen (None before one is loaded)."""
        loaded = self.slot.snapshot()
        return network_kind(loaded.record) if loaded else None

    def show_network(self, kind: str) -> None:
        """The render-mode switch: open the last network of this kind seen on screen (this session or remembered),
        else the shipped one; with neither, the current network stays and a message names the fix."""
        if kind == (self.switching or self.shown_kind()):
            return
        remembered = getattr(self.settings, f"{kind}_checkpoint")  # gone from disk: the shipped one instead
        path = next((Path(p) for p in (remembered, self.defaults[kind]) if p and Path(p).exists()), None)
        if path is None:
            self.message(NO_NETWORK[kind], "warn")
            return
        self.switching = kind
        self.open_checkpoint(path)

    def show(self, loaded, res: int | None) -> None:
        """Put a loaded network on screen in the same frame as the network resolution it is first shown at (None, or
        one chosen on the command line: the view's stays); the render-mode switch comes back to it."""
        setattr(self.settings, f"{network_kind(loaded.record)}_checkpoint", str(loaded.path))
        if res is not None and not self.net_res_locked:
            self.view.set(net_res=res)
        self.slot.publish(loaded)

    def later(self, fn) -> None:
        """Run fn on the GUI thread at the start of the next frame (for background threads' results)."""
        self._later.put(fn)

    def save_checkpoint_as(self, path: str | Path) -> None:
        loaded = self.slot.snapshot()
        if loaded is None:
            raise RedcubeError("there is no network to save; load or train one first.")
        r, path = loaded.record, output_path(path)
        try:
            out = save_checkpoint(path, loaded.model, self.scene, step=loaded.step, metrics=r.get("metrics"), train=r.get("train"))
        except OSError as e:
            raise RedcubeError(f"cannot save the checkpoint to {path} ({e.strerror}); choose a writable location.") from None
        self.message(f"saved the network to {out}")

    def model_info(self) -> list[tuple[str, str]]:
        loaded = self.slot.snapshot()
        if loaded is None:
            return [("model", "none loaded")]
        r = loaded.record
        m, metrics, train = r["model"], r.get("metrics", {}), r.get("train", {})
        psnr, pooled = metrics.get("test_psnr"), metrics.get("test_psnr_pooled")
        return [
            ("file", loaded.path.name),
            ("folder", str(loaded.path.parent)),
            ("kind", m["kind"]),
            ("config", ", ".join(f"{k} {json.dumps(v)}" for k, v in m.get("config", {}).items())),  # wraps at the commas
            ("parameters", f"{m.get('parameters', sum(p.numel() for p in loaded.model.parameters())):,}"),
            ("training res", f"{train.get('res', '?')}²"),
            ("training step", str(loaded.step)),
            ("held-out PSNR", "not recorded" if psnr is None else
             (f"{pooled:.2f} dB pooled over pixels (per-image mean {psnr:.2f} dB: sky-only views are near perfect)"
              if pooled is not None else f"{psnr:.2f} dB per-image mean") + "; higher is closer to the ground truth, "
             "above 30 dB is hard to tell apart"),
            ("device", str(next(loaded.model.parameters()).device)),
            ("hash-grid backend", str(m.get("backend") or r.get("backend") or "n/a (no hash grid)")),
        ]

    def said(self, text: str, level: str = "info") -> None:
        """A background thread's message, shown at the next frame."""
        self.later(lambda: self.message(text, level))

    # -- tabs ----------------------------------------------------------------------------------------
    def open_tab(self, name: str) -> None:
        """Show a side tab by its short name (`redcube gui --tab`)."""
        if name not in self.tabs:
            raise RedcubeError(f"there is no {name!r} tab; choose one of {', '.join(self.tabs)}.")
        dpg.set_value("_tabs", f"_tab_{name}")

    def shown_tab(self) -> Tab | None:
        """The side tab that is open (its `viewport()` fills the big viewport)."""
        return next((t for t in self.tabs.values() if t.visible()), None)

    def _worker_errors(self) -> None:
        """A background render's error, said once as a line in the window (a blank panel says nothing)."""
        for name, worker in (("network", self.viewer.net_view.worker), ("ground truth", self.viewer.gt_view.worker)):
            err = worker.error
            if err and err != self._worker_said.get(name):
                self.message(f"the {name} picture failed: {err}", "error")
            self._worker_said[name] = err

    # -- snapshots ---------------------------------------------------------------------------------
    def screenshot(self, path: str | Path | None) -> Path:
        path = output_path(path or Path("screenshots") / time.strftime("redcube-%Y%m%d-%H%M%S.png"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.open("ab").close()  # writable, before the frame buffer is asked for
        except OSError as e:
            raise RedcubeError(f"cannot write the screenshot to {path} ({e.strerror}); choose a writable location.") from None
        dpg.output_frame_buffer(file=str(path))
        self.message(f"screenshot saved to {path}")
        return path

    def layout_record(self) -> dict:
        """Where the picture is in the window and what it shows (written beside --screenshot PNGs for tests)."""
        gt, net = self.viewer.gt, self.viewer.net
        return {
            "image_min": list(dpg.get_item_rect_min("_image_left")),
            "image_size": [self.view.display * (2 if self.viewer.right is not None else 1), self.view.display],
            "display": self.view.display, "mode": self.view.mode,
            "pose": list(gt.pose) if gt else None, "gt_supersample": gt.supersample if gt else None,
            "net_res": net.res if net else None, "psnr": net.psnr if net else None,
            "checkpoint": str(self.slot.current.path) if self.slot.current else None,
        }

    # -- the frame loop ----------------------------------------------------------------------------
    def step(self) -> None:
        """One frame: callbacks, input, training poll, renders, widgets, draw."""
        t0 = time.perf_counter()
        jobs = dpg.get_callback_queue()
        dpg.run_callbacks(jobs)
        active = bool(jobs) or not self._later.empty()
        while not self._later.empty():
            self.guard(self._later.get())()
        active |= keys.poll(self, t0)
        for tab in self.tabs.values():
            active |= tab.tick(t0)
        active |= self.viewer.tick(t0)
        self._worker_errors()
        layout.show_texture(self)  # returns at once when the shown pictures are current
        layout.refresh(self)
        dpg.render_dearpygui_frame()
        self.frame += 1
        busy = time.perf_counter() - t0
        self.viewer.measure()
        self._throttle(t0, busy, active or not self.viewer.idle())

    def _throttle(self, t0: float, busy: float, active: bool) -> None:
        """Cap the frame rate; after a quiet second drop to IDLE_FPS so training gets the CPU."""
        if active:
            self._active_at = t0
        if not self.max_fps:
            return
        fps = IDLE_FPS if t0 - self._active_at > IDLE_AFTER_S else self.max_fps
        if busy < 1 / fps:
            time.sleep(1 / fps - busy)

    def run(self, frames: int | None = None, screenshot: Path | None = None, timeout_s: float = 60.0) -> int:
        """Run until the window closes, or for `frames` frames / until a screenshot is taken."""
        start = time.perf_counter()
        try:
            while dpg.is_dearpygui_running():
                self.step()
                if screenshot is not None and self._ready(frames or 5, start, timeout_s):
                    self._write_screenshot(screenshot)
                    return 0
                if screenshot is None and frames is not None and self.frame >= frames:
                    return 0
            return 0
        finally:
            self.close()

    def _ready(self, frames: int, start: float, timeout_s: float) -> bool:
        """Enough frames drawn and the final (anti-aliased GT, current network) picture on screen."""
        if self.frame < frames:
            return False
        if time.perf_counter() - start > timeout_s:
            return True
        v = self.viewer
        settled = v.gt is not None and v.gt.still and v.gt.size == self.view.display and v.idle()
        want_net = self.slot.current is not None
        net_ok = not want_net or (v.net is not None and v.net.version == self.slot.current.version and v.net.still)
        return settled and net_ok and self.slot.loading is None and all(t.settled() for t in self.tabs.values())

    def _write_screenshot(self, path: Path) -> None:
        for _ in range(2):  # the texture shown must be the newest one
            self.step()
        record = self.layout_record()
        self.screenshot(Path(path).resolve())  # a relative --screenshot path means the current folder
        for _ in range(3):  # the frame buffer is written while the next frame renders
            self.step()
        Path(str(path) + ".json").write_text(json.dumps(record, indent=2) + "\n")

    def close(self) -> None:
        self._remember()
        for tab in self.tabs.values():
            tab.close()
        self.viewer.close()
        if running := join_threads():  # the renders and loads use the rasterizer and torch: both go away below
            self.message(f"closing while {', '.join(running)} still run", "warn")
        self.rasterizer.close()
        dpg.destroy_context()

    def _remember(self) -> None:
        s: Settings = self.settings
        c = self.fly.camera
        s.view = self.view.to_dict()
        s.camera = {"speed": self.fly.speed, "free": self.fly.free,
                    "pose": {k: getattr(c, k) for k in ("x", "z", "yaw", "y", "pitch")}}
        for tab in self.tabs.values():
            if tab.settings_key:
                setattr(s, tab.settings_key, tab.choices())
        with contextlib.suppress(Exception):
            w, h = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
            if w > 200 and h > 200:
                s.window = {"width": w, "height": h}
        err = save_settings(s, self.settings_path)
        if err:
            print(f"redcube gui: {err}")
