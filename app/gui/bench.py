"""The GUI group of `redcube bench`: window frame rates under Xvfb and video export speed.

`gui_bench()` runs each measurement in a fresh subprocess under `xvfb-run -a` (dearpygui needs a
display, and must not share a process with the caller's EGL context). The camera turns continuously
during the main measurement, so every frame asks for a new ground truth and a new network image:
`gui_fps_*` are for flying; `gui_fps_*_still` hold the camera still (the window redraws, nothing re-renders). `gui_fps_training` has a training process running
(posemlp, 64², streamed data) beside the window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARMUP_FRAMES = 30
NET_RES = 64  # the target view: ground truth + a 64² posemlp
MEASURE_S = 6.0


def _child(mode: str, checkpoint: str, measure_s: float) -> dict:
    """Runs inside the Xvfb subprocess: open the app, fly, count frames."""
    from app.gui.app import App
    from app.gui.training_session import TrainChoices

    cfg = Path(tempfile.mkdtemp(prefix="redcube-bench-"))
    app = App(checkpoint=Path(checkpoint), settings_path=cfg / "settings.json")
    app.session.runs_dir = cfg / "runs"
    try:
        while app.slot.loading is not None or app.slot.current is None:
            app.step()
        app.net_res_locked = True
        app.view.set(net_res=NET_RES)
        if mode == "training":
            app.session.choices = TrainChoices(model="posemlp", res=64, data="stream", budget=30, unit="minutes")
            app.train_start()
            t0 = time.perf_counter()
            while app.session.last.get("samples_per_s") is None and time.perf_counter() - t0 < 120:
                app.step()  # wait until the trainer is really stepping
            if app.session.state != "running":
                return {"error": f"training did not start ({app.session.state}: {app.session.error})"}
        app.max_fps = None  # measure what the window can do, not the cap
        while not app.viewer.idle() or app.viewer.net is None:
            app.step()  # the still picture is final: nothing left to render
        still = _measure(app, measure_s / 2, turn=False)
        for _ in range(WARMUP_FRAMES):
            app.on_keys({"left"}, 1 / 60)
            app.step()
        flying = _measure(app, measure_s, turn=True)
        out = {"fps": flying["fps"], "network_fps": flying["network_fps"], "fps_still": still["fps"],
               "cpu_ms_per_frame": flying["cpu_ms_per_frame"], "cpu_ms_per_frame_still": still["cpu_ms_per_frame"],
               "inference_ms": app.viewer.stats.inference_ms, "gt_ms": app.viewer.stats.gt_ms,
               "display": app.view.display, "net_res": app.view.net_res, "window": list(app.size)}
        if mode == "training":
            app.session.poll()
            out["train_samples_per_s"] = app.session.last.get("samples_per_s")
        return out
    finally:
        app.run(frames=0)  # closes the app (stops training) through the normal path


def _measure(app, seconds: float, turn: bool) -> dict:
    """Frames per second of the whole loop; with `turn`, every frame is a new pose (flying)."""
    frames, net_frames, t0, cpu0 = 0, 0, time.perf_counter(), time.process_time()
    last_net = app.viewer.net
    while time.perf_counter() - t0 < seconds:
        if turn:
            app.on_keys({"left"}, 1 / 60)
        app.step()
        frames += 1
        if app.viewer.net is not last_net:
            net_frames, last_net = net_frames + 1, app.viewer.net
    dt = time.perf_counter() - t0
    # CPU of the app's process (all its threads) per frame: a figure that other load on the machine disturbs less.
    return {"fps": frames / dt, "network_fps": net_frames / dt, "cpu_ms_per_frame": (time.process_time() - cpu0) / frames * 1000}


def _run_child(mode: str, checkpoint: Path, measure_s: float) -> dict:
    env = dict(os.environ, XDG_CONFIG_HOME=tempfile.mkdtemp(prefix="redcube-bench-cfg-"))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "app.gui.bench",
           "--child", mode, str(checkpoint), str(measure_s)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {(p.stderr or p.stdout)[-400:]}"}
    return json.loads(lines[-1])


def _video_fps(checkpoint: Path, frames: int, res: int = 256) -> dict:
    import imageio.v3 as iio

    from app.gui.paths import preset
    from app.gui.video import export_video
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
    """{'gui_fps_paused', 'gui_fps_training', 'video_export_fps_256_side_by_side', ...} measured here.

    Takes a few minutes on a 2-core CPU: the 300-frame video alone is ~2 minutes of network inference.
    """
    from app.gui.app import default_checkpoint

    checkpoint = checkpoint or default_checkpoint()
    if checkpoint is None:
        return {"error": "no checkpoint in assets/ to benchmark the GUI with"}
    paused = _run_child("paused", checkpoint, measure_s)
    training = _run_child("training", checkpoint, measure_s)
    figures = {
        "gui_fps_paused": paused.get("fps"),
        "gui_fps_training": training.get("fps"),
        "gui_fps_paused_still": paused.get("fps_still"),
        "gui_fps_training_still": training.get("fps_still"),
        "gui_network_fps_paused": paused.get("network_fps"),
        "gui_network_fps_training": training.get("network_fps"),
        "gui_detail": {"paused": paused, "training": training, "camera": "turning every frame",
                       "view": "side by side, ground truth + posemlp network"},
    }
    figures.update(_video_fps(checkpoint, video_frames))
    return figures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3], float(sys.argv[4]))), flush=True)
    else:
        print(json.dumps(gui_bench(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
