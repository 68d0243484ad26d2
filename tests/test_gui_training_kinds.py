"""Every kind the window trains starts, pauses, resumes and resets from the Training tab, and the Worlds tab trains
its mNIF on with the worlds following the weights: the real app under Xvfb, real training processes."""

from __future__ import annotations

from test_gui import checkpoint, run_driver  # noqa: F401  (checkpoint: a fixture, a small posemlp)
from test_gui_worlds import tiny_mnif  # noqa: F401  (a fixture: an mNIF of 6 training worlds with its diffusion model)

KINDS = [("pixel", "posemlp", 32), ("pixel", "siren", 32), ("pixel", "ngp", 32), ("latent", "posemlp", 128), ("vae", "posemlp", 32)]

TRAINING_DRIVER = """
app = App(checkpoint=Path({ckpt!r}))
tab = app.tabs["training"]
tab.session.runs_dir = Path({runs!r})
out = {{}}
for kind, model, res in {kinds!r}:
    c = tab.session.choices
    c.kind, c.model, c.res, c.data, c.budget, c.unit = kind, model, res, "stream", 2, "minutes"
    app.guard(tab.start)()                 # the Start button
    started = wait_for(lambda: any(r.get("event") == "start" for r in tab.session.proc.history) or tab.session.error)
    states = [tab.session.state]
    app.on_key_press("p")                        # P pauses
    states.append(tab.session.state)
    app.guard(tab.session.resume)()              # the Resume button
    states.append(tab.session.state)
    job = tab.session.proc.job
    app.guard(tab.reset)()                 # Reset stops the run, keeps its checkpoint
    states.append(tab.session.state)
    out[f"{{kind}}/{{model}}"] = {{"states": states, "started": bool(started), "error": tab.session.error,
                                  "job": job.kind, "trained": job.parts["train"].__class__.__name__}}
finish(out)
"""


def test_every_kind_starts_pauses_resumes_and_resets_from_the_training_tab(tmp_path, checkpoint):
    code = TRAINING_DRIVER.format(ckpt=str(checkpoint), runs=str(tmp_path / "runs"), kinds=KINDS)
    out = run_driver(code, tmp_path, 150, timeout=600)
    for kind, model, _ in KINDS:
        run = out[f"{kind}/{model}"]
        assert run["error"] is None and run["started"], run
        assert run["states"] == ["running", "paused", "running", "idle"] and run["job"] == kind, run
    assert out["vae/posemlp"]["trained"] == "VAETrainConfig" and out["latent/posemlp"]["trained"] == "LatentTrainConfig"


WORLDS_DRIVER = """
app = App(checkpoint=Path({ckpt!r}))
app.tabs["training"].session.runs_dir = Path({runs!r})
worlds = app.tabs["worlds"]
worlds.session.load(Path({mnif!r}))
t = worlds.training
t.minutes = 2.0
app.guard(worlds.train_start)()              # the Train on button
followed = wait_for(lambda: "is training" in worlds.session.mnif.no_diffusion)  # live weights and latents reached the tab
live_step = worlds.session.mnif.step
states = [t.state]
app.guard(t.pause)()
states.append(t.state)
app.guard(t.resume)()
states.append(t.state)
app.guard(t.stop)()                              # a final checkpoint, then the tab loads it
reloaded = wait_for(lambda: t.reloaded)
states.append(t.state)
m = worlds.session.mnif
finish({{"followed": followed, "live_step": live_step, "states": states, "reloaded": reloaded, "path": str(m.path),
         "step": m.step, "error": t.proc.error}})
"""


def test_the_worlds_tab_trains_its_mnif_on_and_follows_it(tmp_path, checkpoint, tiny_mnif):
    good, _ = tiny_mnif
    code = WORLDS_DRIVER.format(ckpt=str(checkpoint), runs=str(tmp_path / "runs"), mnif=str(good))
    out = run_driver(code, tmp_path, 150, timeout=400)
    assert out["error"] is None and out["followed"] and out["live_step"] >= 1, out
    assert out["states"] == ["running", "paused", "running", "finished"] and out["reloaded"], out
    assert "mnif-" in out["path"] and out["step"] >= out["live_step"]  # the tab now shows the run's checkpoint
