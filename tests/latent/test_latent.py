"""Latent mode: a short run on a real (randomly initialised, saved and reloaded) TinyVAE lowers held-out
latent loss; a latent checkpoint refuses a VAE it was not trained with, in one sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from app.cli import main
from renderer.scene import Scene
from renderer.tinyvae import TinyVAE
from training.latent.trainer import LatentTrainConfig, trainer_for
from training.stream import StreamConfig
from training.vae import save_vae


@pytest.fixture(scope="module")
def vaes(tmp_path_factory):
    """Two different TinyVAEs saved as redcube checkpoints (random weights: the mechanics, not the quality)."""
    d = tmp_path_factory.mktemp("vaes")
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        out.append(str(save_vae(d / f"vae{seed}.safetensors", TinyVAE(), Scene())))
    return out


def _run(vae: str, out, steps: int, eval_every: int):
    c = LatentTrainConfig(res=128, steps=steps, batch_size=1024, lr=3e-3, warmup_steps=5, heldout=2, eval_every=eval_every,
                          log_every=5, vae=vae, threads=1, out_dir=str(out), stream=StreamConfig(frames_per_buffer=4, refresh_hz=0))
    trainer_for(c).run()
    return out


@pytest.fixture(scope="module")
def latent_run(vaes, tmp_path_factory):
    """A two-step latent run: a real latent checkpoint for the eval and VAE-check tests."""
    return _run(vaes[0], tmp_path_factory.mktemp("latent_run"), steps=2, eval_every=10 ** 6)


@pytest.mark.slow
def test_short_latent_run_lowers_heldout_loss(vaes, tmp_path):
    out = _run(vaes[0], tmp_path / "run", steps=60, eval_every=5)
    evals = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"eval"' in line]
    assert evals[-1]["test_loss"] < 0.5 * evals[0]["test_loss"], [e["test_loss"] for e in evals]


def test_latent_checkpoint_records_its_vae(latent_run):
    record = json.loads((latent_run / "checkpoint.json").read_text())
    assert record["vae"]["source"].endswith("vae0.safetensors") and record["latent_res"] == 16
    assert record["model"]["config"]["out_channels"] == 4 and record["train"]["res"] == 128


def test_eval_decodes_latent_checkpoint_at_full_res(latent_run, tmp_path, capsys):
    assert main(["eval", str(latent_run), "--n", "2", "--sheet", str(tmp_path / "sheet.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["res"] == 128 and out["latent_res"] == 16 and out["n"] == 2 and (tmp_path / "sheet.png").exists()


def test_latent_checkpoint_with_another_vae_is_one_sentence(latent_run, vaes, tmp_path, capsys, error_line):
    before = (latent_run / "checkpoint.safetensors").read_bytes()
    for argv in (["eval", str(latent_run), "--vae", vaes[1], "--sheet", str(tmp_path / "s.png")],
                 ["train", "--latent", "--vae", vaes[1], "--res", "128", "--steps", "61", "--out", str(latent_run), "--resume"]):
        assert main(argv) == 2
        assert "trained with TinyVAE" in error_line(capsys.readouterr().err)
    assert (latent_run / "checkpoint.safetensors").read_bytes() == before  # nothing lost


def test_viewport_worker_decodes_a_latent_network_off_the_calling_thread(latent_run, rasterizer, load_now):
    import time

    from app.gui.workers import ModelSlot, NetworkView

    slot = ModelSlot()
    loaded = load_now(slot, latent_run)
    assert loaded.vae is not None
    view = NetworkView(rasterizer, slot, threads=1)
    try:
        view.request((0.5, 1.0, 1.5, 0.3, 0.0), 128)
        deadline, frame = time.monotonic() + 60, None
        while frame is None and time.monotonic() < deadline:
            frame = view.worker.take()
            time.sleep(0.01)
        assert view.worker.error is None and frame is not None
        assert frame.net.shape == frame.gt.shape == (128, 128, 3) and frame.latent.shape == (16, 16, 3)
        assert 0 <= frame.net.min() and frame.net.max() <= 1
    finally:
        view.worker.close()


def test_viewport_shows_a_tinyvaes_round_trip_and_follows_its_live_weights(tiny_latent, rasterizer, scene, load_now,
                                                                            tmp_path):
    """A TinyVAE run on screen (the Training tab's 'vae' kind): the network picture is the ground truth encoded and
    decoded by the VAE, and the run's live weights replace it like a network's."""
    import time

    from app.gui.workers import ModelSlot, NetworkView
    from training.checkpoint import save_live_weights
    from training.vae import decode_latents, encode_frames

    slot = ModelSlot()
    loaded = load_now(slot, tiny_latent.parent / "vae.safetensors")
    assert isinstance(loaded.model, TinyVAE) and loaded.record["model"]["kind"] == "tinyvae"
    view = NetworkView(rasterizer, slot, threads=1)
    pose = (0.5, 1.0, 1.5, 0.3, 0.0)

    def frame(res):
        view.request(pose, res)
        deadline, got = time.monotonic() + 60, None
        while got is None and time.monotonic() < deadline:
            got = view.worker.take()
            time.sleep(0.01)
        assert view.worker.error is None and got is not None
        return got

    try:
        f = frame(100)  # the VAE works on the 8-pixel grid: 100² is drawn at 96²
        assert f.net.shape == f.gt.shape == (96, 96, 3)
        vae = slot.snapshot().model
        expected = decode_latents(vae, encode_frames(vae, torch.from_numpy(f.gt)[None]))[0].numpy()
        np.testing.assert_allclose(f.net, expected, atol=1e-5)
        torch.manual_seed(1)
        trained = TinyVAE()  # new weights from the run: the slot takes them into a copy, the picture changes
        save_live_weights(tmp_path / "live.safetensors", trained, 7)
        done = []
        slot.load_weights(tmp_path / "live.safetensors", done.append)
        deadline = time.monotonic() + 60
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done and done[0] is not None and done[0].step == 7
        g = frame(96)
        assert g.step == 7 and not np.allclose(g.net, f.net, atol=1e-3)
    finally:
        view.worker.close()


def test_viewer_decodes_smaller_latents_while_the_camera_moves(tiny_latent, rasterizer, scene, load_now):
    """Flying: the latent network is asked for at most `flying_res` (a 512² decode takes seconds on a CPU); once the
    camera is still it gets the full network resolution."""
    import time

    from app.gui.state import FlyCamera, ViewSettings
    from app.gui.viewer import STILL_AFTER_S, Viewer
    from app.gui.workers import ModelSlot

    slot = ModelSlot()
    load_now(slot, tiny_latent)
    viewer = Viewer(scene, rasterizer, FlyCamera(scene), ViewSettings(net_res=512, flying_res=128, display=128), slot)

    def frame_at(res, now):
        deadline = time.monotonic() + 60
        while viewer.net is None or viewer.net.res != res:
            assert time.monotonic() < deadline, f"no {res}² frame"
            viewer.tick(now)
            time.sleep(0.02)
        return viewer.net

    try:
        t0 = time.perf_counter()
        moving = frame_at(128, t0)  # the camera has just appeared: it counts as moving
        assert moving.net.shape == (128, 128, 3) and moving.latent.shape == (16, 16, 3)
        still = frame_at(512, t0 + 10 * STILL_AFTER_S)
        assert still.net.shape == (512, 512, 3) and still.latent.shape == (64, 64, 3)
    finally:
        viewer.close()
