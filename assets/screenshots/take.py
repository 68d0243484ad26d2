"""Take the README's screenshot of every tab of the app. From the repository root, under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python assets/screenshots/take.py assets/screenshots \
        view,model,video,worlds,rotations,training

The Path & video tab shows the orbit preset; the Worlds tab the mix at u = v = 0.5; the Training tab a 3-minute posemlp run at 64², shot once four held-out
evaluations are in and then stopped (its folder goes to $REDCUBE_HOME/runs, so set REDCUBE_HOME to a scratch folder).
"""

import sys
import time
from pathlib import Path


def main(out: Path, tabs: list[str]) -> None:
    from app.gui.app import App

    out.mkdir(parents=True, exist_ok=True)
    app = App()

    def wait_for(cond, limit=120.0):
        t0 = time.time()
        while not cond() and time.time() - t0 < limit:
            app.step()

    def shoot(name: str) -> None:
        t0 = time.perf_counter()
        wait_for(lambda: False, 1.0)
        wait_for(lambda: app._ready(0, t0, 120), 120)  # the final pictures of the open tab
        wait_for(lambda: False, 0.5)
        app.screenshot(out / f"{name}.png")
        wait_for(lambda: False, 0.3)

    wait_for(lambda: app.slot.current is not None)
    app.tabs["video"].session.use_preset("orbit")
    app.tabs["worlds"].session.set_uv(u=0.5, v=0.5)  # a mix of the four corner worlds, not corner a itself
    for name in tabs:
        if name != "training":
            app.open_tab(name)
            shoot(name)
    if "training" in tabs:
        t = app.tabs["training"]
        c = t.session.choices
        c.model, c.res, c.data, c.budget, c.unit = "posemlp", 64, "stream", 3, "minutes"
        app.open_tab("training")
        t.start()
        wait_for(lambda: len(t.session.curves.test_step) >= 4, 150)
        shoot("training")
        t.stop()
        wait_for(lambda: t.session.state == "finished", 60)
    app.run(frames=app.frame + 2)


if __name__ == "__main__":  # the training run's process starts by spawn: it imports this file again
    main(Path(sys.argv[1]).resolve(), sys.argv[2].split(","))  # the app puts a relative name under REDCUBE_HOME
