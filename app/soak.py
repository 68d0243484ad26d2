"""The soak test of issue 16: the window under Xvfb for N minutes with a training run beside it and the camera
flying the whole time. Reports the app's memory (RSS at start and end, and the trainer's) and the window and
network frame rates over a window of seconds at the start and at the end: growth or decay shows a leak.

`soak()` runs the window in a fresh Xvfb subprocess, as the GUI bench does (`app.gui.bench`, which says why).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from app.gui.bench import open_app, run_frames, run_under_xvfb, start_training

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
    # Turn all the time; walk forward and back in 3-second legs (the camera stays inside the scene).
    frames, shown, dt, _ = run_frames(app, seconds, lambda now: {"left", "w" if int((now - t_start) / 3) % 2 == 0 else "s"})
    return {"fps": frames / dt, "network_fps": len(shown) / dt}


def _child(checkpoint: str, minutes: float, window_s: float) -> dict:
    """Inside the Xvfb subprocess: open the app, start training, fly for `minutes`, sample as it goes."""
    with open_app(checkpoint) as app:
        training = app.tabs["training"].session
        if (failed := start_training(app, "posemlp", res=32, minutes=minutes + 5)) is not None:
            return failed
        trainer = max(children(os.getpid()), key=lambda p: rss_mb(p) or 0, default=None)  # the trainer, not Xvfb helpers
        t_start = time.perf_counter()
        start = {"rss_mb": rss_mb(), "trainer_rss_mb": rss_mb(trainer) if trainer else None, **_window(app, window_s, t_start)}
        timeline = []
        while time.perf_counter() - t_start < minutes * 60 - window_s:
            w = _window(app, min(SAMPLE_EVERY_S, minutes * 60 - window_s - (time.perf_counter() - t_start)), t_start)
            timeline.append({"t_s": round(time.perf_counter() - t_start, 1), "rss_mb": rss_mb(),
                             "trainer_rss_mb": rss_mb(trainer) if trainer else None, **w})
        end = {"rss_mb": rss_mb(), "trainer_rss_mb": rss_mb(trainer) if trainer else None, **_window(app, window_s, t_start)}
        training.poll()
        return {"minutes": minutes, "window_s": window_s, "start": start, "end": end, "timeline": timeline,
                "training_state": training.state, "train_steps": training.last.get("step"),
                "errors": [m.text for m in app.messages if m.level == "error"],
                "view": f"{app.view.mode}, network {app.view.net_res}², display {app.view.display}", "window": list(app.size)}


def soak(minutes: float, checkpoint: Path | None = None, window_s: float | None = None) -> dict:
    """Figures: RSS start/end and growth, window and network fps start/end and their ratio, plus the timeline."""
    from app.gui.app import default_checkpoint

    checkpoint = checkpoint or default_checkpoint()
    if checkpoint is None:
        return {"error": "no checkpoint in assets/ to soak the window with"}
    window_s = window_s or min(20.0, minutes * 60 / 4)
    d = run_under_xvfb("app.soak", [checkpoint, minutes, window_s], timeout=minutes * 60 + 600)
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
