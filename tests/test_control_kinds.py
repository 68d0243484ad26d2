"""TrainingProcess runs every kind the engine trains: started, paused, resumed and stopped in a real child process,
handing its weights (and an mNIF's latents) to a viewer through the live-weights file."""

from __future__ import annotations

import time

import pytest

from renderer.models.mnif import MNIFConfig
from test_control import wait_for
from training.checkpoint import load_checkpoint, load_live_weights, split_live_extra
from training.control import TrainingProcess
from training.kinds import Job
from training.mnif.diffusion import DenoiserConfig, DiffusionTrainConfig
from training.mnif.autodecode import MNIFTrainConfig
from training.mnif.meta import MetaConfig
from training.vae_train import VAETrainConfig

ENDLESS = 1_000_000
MNIF = dict(worlds=4, batch_worlds=2, points=64, eval_worlds=1, eval_views=1, eval_res=16, samples=8, supersample=1, fit_steps=1)


def mnif_parts(out) -> dict:
    return {"train": MNIFTrainConfig(steps=ENDLESS, out=str(out), **MNIF), "model": MNIFConfig(bases=2, width=16, latent_dim=4),
            "diffusion": DiffusionTrainConfig(steps=3), "denoiser": DenoiserConfig(width=16, blocks=1)}


def job(name: str, out, fields=None) -> Job:
    if name == "vae":
        return Job("vae", {"train": VAETrainConfig(steps=ENDLESS, res=64, crop=32, batch=1, frames=2, heldout=1,
                                                   eval_every=ENDLESS, out=str(out))})
    if name == "mnif":
        return Job("mnif", mnif_parts(out))
    if name == "mnif-meta":
        return Job("mnif-meta", {**mnif_parts(out), "meta": MetaConfig(inner_steps=1)})
    from training.weightspace.grid_model import GridConfig
    from training.weightspace.grid_train import GridTrainConfig
    from training.weightspace.model import WeightSpaceConfig
    from training.weightspace.train import WeightSpaceTrainConfig

    if name == "weightspace":
        return Job(name, {"train": WeightSpaceTrainConfig(data=str(fields), steps=ENDLESS, batch=2, points=8, n_pos=2, heldout=2,
                                                          eval_every=ENDLESS, out=str(out)),
                          "model": WeightSpaceConfig(embed=16, latent=4, layers=1, heads=2)})
    return Job(name, {"train": GridTrainConfig(data=str(fields), steps=ENDLESS, batch=2, heldout=2, eval_every=ENDLESS, out=str(out)),
                      "model": GridConfig(res=8, width=8, depth=2)})


def live_step(tp: TrainingProcess) -> int:
    try:
        return load_live_weights(tp.live_path)[2]
    except Exception:  # not written yet
        return 0


@pytest.mark.parametrize("name", ["vae", "mnif", pytest.param("mnif-meta", marks=pytest.mark.slow),
                                  pytest.param("weightspace", marks=pytest.mark.slow),
                                  pytest.param("weightspace-grid", marks=pytest.mark.slow)])
def test_every_kind_starts_pauses_resumes_and_stops_in_the_background(name, tmp_path, tiny_fields):
    tp = TrainingProcess(job(name, tmp_path / name, tiny_fields), cpu_share=0.5, follow=True)
    tp.start()
    try:
        wait_for(tp, lambda: live_step(tp) >= 3, "live weights of three steps")
        assert tp.state == "running" and tp.history[0]["event"] == "start" and tp.history[0]["kind"] == name
        tp.pause()
        time.sleep(1.0)  # the step in flight finishes and its weights are handed over
        paused_at = live_step(tp)
        time.sleep(1.5)
        assert tp.state == "paused" and live_step(tp) == paused_at, "training went on while paused"
        tp.resume()
        wait_for(tp, lambda: live_step(tp) > paused_at, "a step after resuming")
        state, kind, _ = load_live_weights(tp.live_path)
        _, extra = split_live_extra(state)
        if tp.checkpoint_path.exists():
            assert kind == load_checkpoint(tp.checkpoint_path).kind
        if name == "mnif":
            assert extra["latents"].shape == (MNIF["worlds"], 4)  # the Worlds tab renders the worlds as they learn
    finally:
        tp.stop(timeout=300)
    assert tp.state == "finished", tp.error
    assert load_checkpoint(tp.checkpoint_path).step >= paused_at
