"""The soak test of issue 16: the window under Xvfb for N minutes with a training run beside it and the camera
flying the whole time. Reports the app's memory (RSS at start and end, and the trainer's) and the window and
network frame rates over a window of seconds at the start and at the end: growth or decay shows a leak.

`soak()` runs the window in a fresh `xvfb-run -a` subprocess, as the GUI bench does (dearpygui needs a display
and must not share a process with the caller's EGL context).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_EVERY_S = 10.0  # a timeline point: RSS of the app and the trainer, and the frame rates since the last one


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process in MB (VmRSS), or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:")), None)


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _window(app, seconds: float, t_start: float) -> dict:
    """Frames and network pictures per second over `seconds` of flying."""
    frames, net_frames, last_net, t0 = 0, 0, app.viewer.net, time.perf_counter()
    while (now := time.perf_counter()) - t0 < seconds:
        # Turn all the time; walk forward and back in 3-second legs (the camera stays inside the scene).
        app.on_keys({"left", "w" if int((now - t_start) / 3) % 2 == 0 else "s"}, 1 / 60)
        app.step()
        frames += 1
        if app.viewer.net is not last_net:
            net_frames, last_net = net_frames + 1, app.viewer.net
    dt = time.perf_counter() - t0
    return {"fps": frames / dt, "network_fps": net_frames / dt}


def _child(checkpoint: str, minutes: float, window_s: float) -> dict:
    """Inside the Xvfb subprocess: open the app, start training, fly for `minutes`, sample as it goes."""
    from app.gui.app import App
    from app.gui.training_session import TrainChoices

    tmp = Path(tempfile.mkdtemp(prefix="redcube-soak-"))
    app = App(checkpoint=Path(checkpoint), settings_path=tmp / "settings.json")
    training = app.tabs["training"]
    training.session.runs_dir = tmp / "runs"
    try:
        while app.slot.loading is not None or app.slot.current is None:
            app.step()
        training.session.choices = TrainChoices(model="posemlp", res=32, data="stream", budget=minutes + 5, unit="minutes")
        training.start()
        t_start = time.perf_counter()
        while not training.session.curves.train_step and time.perf_counter() - t_start < 180:
            app.step()  # wait until the trainer really steps
        if training.session.state != "running":
            return {"error": f"training did not start ({training.session.state}: {training.session.error})"}
        trainer = max(children(os.getpid()), key=lambda p: rss_mb(p) or 0, default=None)  # the trainer, not Xvfb helpers
        t_start = time.perf_counter()
        start = {"rss_mb": rss_mb(), "trainer_rss_mb": rss_mb(trainer) if trainer else None, **_window(app, window_s, t_start)}
        timeline = []
        while time.perf_counter() - t_start < minutes * 60 - window_s:
            w = _window(app, min(SAMPLE_EVERY_S, minutes * 60 - window_s - (time.perf_counter() - t_start)), t_start)
            timeline.append({"t_s": round(time.perf_counter() - t_start, 1), "rss_mb": rss_mb(),
                             "trainer_rss_mb": rss_mb(trainer) if trainer else None, **w})
        end = {"rss_mb": rss_mb(), "trainer_rss_mb": rss_mb(trainer) if trainer else None, **_window(app, window_s, t_start)}
        training.session.poll()
        return {"minutes": minutes, "window_s": window_s, "start": start, "end": end, "timeline": timeline,
                "training_state": training.session.state, "train_steps": training.session.last.get("step"),
                "errors": [m.text for m in app.messages if m.level == "error"],
                "view": f"{app.view.mode}, network {app.view.net_res}², display {app.view.display}", "window": list(app.size)}
    finally:
        app.run(frames=0)  # closes the app and stops training through the normal path


def soak(minutes: float, checkpoint: Path | None = None, window_s: float | None = None) -> dict:
    """Figures: RSS start/end and growth, window and network fps start/end and their ratio, plus the timeline."""
    from app.gui.app import default_checkpoint

    checkpoint = checkpoint or default_checkpoint()
    if checkpoint is None:
        return {"error": "no checkpoint in assets/ to soak the window with"}
    window_s = window_s or min(20.0, minutes * 60 / 4)
    env = dict(os.environ, XDG_CONFIG_HOME=tempfile.mkdtemp(prefix="redcube-soak-cfg-"))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "app.soak", str(checkpoint),
           str(minutes), str(window_s)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=minutes * 60 + 600)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {(p.stderr or p.stdout)[-400:]}"}
    d = json.loads(lines[-1])
    if "error" in d:
        return d
    s, e = d["start"], d["end"]
    return {"rss_start_mb": s["rss_mb"], "rss_end_mb": e["rss_mb"], "rss_growth_mb": e["rss_mb"] - s["rss_mb"],
            "trainer_rss_start_mb": s["trainer_rss_mb"], "trainer_rss_end_mb": e["trainer_rss_mb"],
            "fps_start": s["fps"], "fps_end": e["fps"], "fps_end_over_start": e["fps"] / s["fps"] if s["fps"] else None,
            "network_fps_start": s["network_fps"], "network_fps_end": e["network_fps"],
            "device": "cpu (Xvfb, llvmpipe)", "load_average": os.getloadavg(), "detail": d}


if __name__ == "__main__":  # the window's process that soak() starts under Xvfb
    print(json.dumps(_child(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))), flush=True)
