"""The GUI group of `redcube bench`: window frame rates under Xvfb and video export speed.

`gui_bench()` runs the window in a fresh subprocess under `xvfb-run -a` (dearpygui needs a display,
and must not share a process with the caller's EGL context). The view is the issue's target: ground
truth beside a 64² posemlp. A training run (posemlp, 64², streamed data) is started from the window;
`gui_fps_training` is measured while it trains, `gui_fps_paused` after it is paused.
`gui_fps_*` turn the camera every frame (flying: each frame asks for a new ground truth and network
image); `gui_fps_*_still` hold it still (the window redraws, nothing re-renders). The frame cap is off.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.gui.training_session import ASSETS, TrainChoices

WARMUP_FRAMES = 30
MEASURE_S = 6.0
NET_RES = 64  # the target view: ground truth + a 64² posemlp


def run_frames(app, seconds: float, keys=None) -> tuple[int, list[int], float, float]:
    """Run the loop for `seconds`, pressing keys(now) every frame when given (flying): the frames drawn, the
    resolutions of the network pictures that reached the screen, the seconds and the process's CPU seconds (all its
    threads) it took."""
    frames, shown, t0, cpu0 = 0, [], time.perf_counter(), time.process_time()
    last = app.viewer.net
    while (now := time.perf_counter()) - t0 < seconds:
        if keys is not None:
            app.on_keys(keys(now), 1 / 60)
        app.step()
        frames += 1
        if app.viewer.net is not last:
            last = app.viewer.net
            shown.append(last.res)
    return frames, shown, time.perf_counter() - t0, time.process_time() - cpu0


def _turn(now: float) -> set[str]:
    return {"left"}


def _measure(app, seconds: float, turn: bool) -> dict:
    """Frames per second of the whole loop, flying or with a still camera."""
    if turn:
        for _ in range(WARMUP_FRAMES):
            app.on_keys({"left"}, 1 / 60)
            app.step()
    else:
        while not app.viewer.idle() or app.viewer.net is None:
            app.step()  # the still picture is final: nothing left to render
    frames, shown, dt, cpu = run_frames(app, seconds, _turn if turn else None)
    # CPU of the app's process (all its threads) per frame: a figure that other load on the machine disturbs less.
    return {"fps": frames / dt, "network_fps": len(shown) / dt, "cpu_ms_per_frame": cpu / frames * 1000,
            "inference_ms": app.viewer.stats.inference_ms}


def _both(app, measure_s: float) -> dict:
    return {"flying": _measure(app, measure_s, turn=True), "still": _measure(app, measure_s / 2, turn=False)}


@contextlib.contextmanager
def open_app(checkpoint: str):
    """The app on a scratch settings file and runs folder, once its network is loaded; at the end it closes (and
    stops training) through the normal path."""
    from app.gui.app import App

    with tempfile.TemporaryDirectory(prefix="redcube-gui-", ignore_cleanup_errors=True) as tmp:
        app = App(checkpoint=Path(checkpoint), settings_path=Path(tmp) / "settings.json")
        app.tabs["training"].session.runs_dir = Path(tmp) / "runs"
        while app.slot.loading is not None or app.slot.current is None:
            app.step()
        try:
            yield app
        finally:
            app.run(frames=0)


def _child(checkpoint: str, measure_s: float) -> dict:
    """Runs inside the Xvfb subprocess: open the app, start training, measure, pause, measure."""
    with open_app(checkpoint) as app:
        app.max_fps = None  # measure what the window can do, not the cap
        training = app.tabs["training"].session
        app.net_res_locked = True
        app.view.set(net_res=NET_RES)
        if (failed := start_training(app, "posemlp", res=64, minutes=30)) is not None:
            return failed
        out = {"training": _both(app, measure_s)}
        training.poll()
        out["train_samples_per_s"] = training.last.get("samples_per_s")
        training.pause()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 2.0:
            app.step()  # the trainer finishes its step and idles
        out["paused"] = _both(app, measure_s)
        out.update(display=app.view.display, net_res=app.view.net_res, window=list(app.size))
        return out


def start_training(app, model: str, res: int, minutes: float) -> dict | None:
    """Start a streamed training run of `model` at res² for `minutes` from the training panel and wait until it
    really steps; an error record if it does not."""
    s = app.tabs["training"].session
    s.choices = TrainChoices(model=model, res=res, data="stream", budget=minutes, unit="minutes")
    app.tabs["training"].start()
    t0 = time.perf_counter()
    while not s.curves.train_step and time.perf_counter() - t0 < 180:
        app.step()
    return None if s.state == "running" else {"error": f"training did not start ({s.state}: {s.error})"}


def _fly(app, seconds: float) -> dict:
    """Turn the camera every frame for `seconds`: network pictures reaching the screen per second, their mean
    resolution, and the window's frames per second."""
    frames, res, dt, _ = run_frames(app, seconds, _turn)
    return {"network_fps": len(res) / dt, "network_res_mean": sum(res) / max(1, len(res)),
            "network_res_min": min(res, default=0), "window_fps": frames / dt,
            "inference_ms": app.viewer.stats.inference_ms, "render_threads": app.viewer.net_view.threads,
            "shown_step": app.viewer.net.step}


def _refine(app, tries: int = 3) -> list[float]:
    """Milliseconds from the camera's stop to the full-resolution network picture of that pose on screen."""
    out = []
    for _ in range(tries):
        for _ in range(20):  # fly a little, then stop
            app.on_keys({"left"}, 1 / 60)
            app.step()
        t0, pose = time.perf_counter(), tuple(float(v) for v in app.fly.camera.pose())
        while time.perf_counter() - t0 < 10.0:
            app.step()
            net = app.viewer.net
            if net is not None and net.still and net.pose == pose and net.res == app.view.net_res:
                break
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _child_viewport(checkpoint: str, measure_s: float) -> dict:
    """Inside the Xvfb subprocess: the shipped NGP field at its own resolution, flying and refining with a training
    run (NGP, 64², the app's default CPU share) going in the background. The view follows the run's weights, so the
    flight is measured twice: during the run's warm-up (a fog over the whole box, every cell marched: the worst
    case, a few seconds long) and once the run's occupancy grid has taken over (what a user flies through)."""
    with open_app(checkpoint) as app:
        training = app.tabs["training"].session
        while app.viewer.net is None:
            app.step()
        out = {"net_res": app.view.net_res, "target_fps": app.view.target_fps, "idle": _fly(app, measure_s / 2)}
        out["idle_refine_ms"] = _refine(app)
        shipped_step = app.slot.current.step
        if (failed := start_training(app, "ngp", res=64, minutes=30)) is not None:
            return failed
        out["warmup"] = _fly(app, min(3.0, measure_s / 2))
        if (failed := _past_warmup(app, shipped_step)) is not None:
            return failed
        out["training"] = _fly(app, measure_s)
        out["refine_ms"] = _refine(app)
        training.poll()
        out.update(train_samples_per_s=training.last.get("samples_per_s"), cpu_share=training.choices.cpu_share,
                   followed_step=app.viewer.net.step if app.viewer.net else None,
                   trained_step=training.last.get("step"))
        return out


def _past_warmup(app, shipped_step: int, timeout_s: float = 180.0) -> dict | None:
    """Wait until the picture on screen comes from the run's weights after its occupancy grid took over from the
    warm-up (two grid updates past it); an error record if that does not happen in time."""
    cfg = app.slot.current.model.config
    ready = cfg.warmup_forwards + 2 * cfg.occupancy_every
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        app.step()
        app.tabs["training"].session.poll()
        net = app.viewer.net
        if net is not None and net.step != shipped_step and net.step >= ready:
            return None
    return {"error": f"the followed run did not pass its warm-up ({ready} steps) in {timeout_s:.0f} s"}


def run_under_xvfb(module: str, args: list, timeout: float = 600) -> dict:
    """`python -m module args` in a fresh `xvfb-run -a` with a scratch config folder: the last JSON line it printed,
    or an error record."""
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", module, *map(str, args)]
    with tempfile.TemporaryDirectory(prefix="redcube-gui-cfg-") as config:
        env = dict(os.environ, XDG_CONFIG_HOME=config)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {(p.stderr or p.stdout)[-400:]}"}
    return json.loads(lines[-1])


def _video_fps(checkpoint: Path, frames: int, res: int = 256) -> dict:
    import imageio.v3 as iio

    from app.paths import preset
    from app.video import export_video
    from renderer.rasterizer import Rasterizer
    from training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model().eval()
    with Rasterizer(ckpt.scene) as rast, tempfile.TemporaryDirectory() as tmp:
        cams = preset("orbit", ckpt.scene).sample(frames)
        r = export_video(cams, Path(tmp) / "bench.mp4", rasterizer=rast, model=model, panel="side_by_side", res=res, fps=30)
        read_back = sum(1 for _ in iio.imiter(r.path))
    return {"video_export_fps_256_side_by_side": r.fps, "video_export_frames": r.frames, "video_frames_read_back": read_back}


def gui_bench(checkpoint: Path | None = None, measure_s: float = MEASURE_S, video_frames: int = 300) -> dict:
    """Figures {'gui_fps_paused', 'gui_fps_training', 'video_export_fps_256_side_by_side', ...} and 'gui_detail'.

    Takes a few minutes on a 2-core CPU: the 300-frame video alone is minutes of network inference.
    """
    checkpoint = checkpoint or ASSETS / "posemlp_64.safetensors"  # the view this group has always measured
    if not checkpoint.exists():
        return {"error": f"{checkpoint} is missing: no network to benchmark the GUI with"}
    d = run_under_xvfb("app.gui.bench", ["--child", checkpoint, measure_s])
    if "error" in d:
        return {"gui_error": d["error"], **_video_fps(checkpoint, video_frames)}
    figures = {}
    for phase in ("paused", "training"):
        figures[f"gui_fps_{phase}"] = d[phase]["flying"]["fps"]
        figures[f"gui_fps_{phase}_still"] = d[phase]["still"]["fps"]
        figures[f"gui_network_fps_{phase}"] = d[phase]["flying"]["network_fps"]
    figures["gui_detail"] = {**d, "checkpoint": str(checkpoint), "load_average": os.getloadavg(),
                             "view": f"side by side, ground truth + posemlp at {NET_RES}²"}
    figures.update(_video_fps(checkpoint, video_frames))
    return figures


if __name__ == "__main__":  # a child that run_under_xvfb starts: --child or --child-viewport, CHECKPOINT, SECONDS
    child = _child if sys.argv[1] == "--child" else _child_viewport
    print(json.dumps(child(sys.argv[2], float(sys.argv[3]))), flush=True)
