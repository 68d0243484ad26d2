"""Training with the view live: the trainer hands its weights to a small file the app loads into a copy of the network
on screen (no model build, no optimizer state), and keeps to the CPU share the user set."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import pytest
import torch

from app.gui.workers import ModelSlot
from renderer.errors import RedcubeError
from renderer.models import build_model
from test_control import last_step, pixel, wait_for
from training.checkpoint import load_live_weights, save_checkpoint, save_live_weights
from training.control import CpuShare, TrainingProcess, threads_for


def test_live_weights_round_trip_and_a_foreign_file_is_one_sentence(tmp_path, scene):
    torch.manual_seed(0)
    model = build_model("posemlp", {"width": 16, "layers": 2}, scene)
    save_live_weights(tmp_path / "live.safetensors", model, step=42)
    state, kind, step = load_live_weights(tmp_path / "live.safetensors")
    assert (kind, step) == ("posemlp", 42) and state.keys() == model.state_dict().keys()
    ckpt = save_checkpoint(tmp_path / "ckpt.safetensors", model, scene)  # a checkpoint is not a live-weights file
    with pytest.raises(RedcubeError, match="not a redcube live-weights file"):
        load_live_weights(ckpt)


def test_the_slot_takes_live_weights_into_a_copy_and_ignores_another_kind(tmp_path, scene, load_now):
    torch.manual_seed(0)
    shown = build_model("posemlp", {"width": 16, "layers": 2}, scene)
    path = save_checkpoint(tmp_path / "run" / "checkpoint.safetensors", shown, scene, step=5)
    slot = ModelSlot()
    first = load_now(slot, path)
    newer = build_model("posemlp", {"width": 16, "layers": 2}, scene)  # other weights, same network
    save_live_weights(tmp_path / "run" / "live.safetensors", newer, step=9)
    got = []
    slot.load_weights(tmp_path / "run" / "live.safetensors", got.append)
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    now = slot.snapshot()
    assert got and got[0] is now and now.step == 9 and now.version > first.version and now.path == first.path
    assert now.model is not first.model  # the network being drawn is never written into
    for a, b in zip(now.model.state_dict().values(), newer.state_dict().values()):
        torch.testing.assert_close(a, b)
    save_live_weights(tmp_path / "other.safetensors", build_model("siren", {}, scene), step=1)
    got.clear()
    slot.load_weights(tmp_path / "other.safetensors", got.append)
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [None] and slot.snapshot() is now  # another kind: the network on screen stays


def test_a_followed_run_writes_live_weights_as_it_trains(tmp_path):
    tp = TrainingProcess(pixel(tmp_path), cpu_share=1.0, follow=True)
    tp.start()
    try:
        wait_for(tp, lambda: tp.live_path.exists() and last_step(tp) >= 20, "live weights")
        _, kind, step = load_live_weights(tp.live_path)
        assert kind == "posemlp" and 1 <= step <= last_step(tp) + 1
    finally:
        tp.stop()


def _busy(share: float, seconds: float, out) -> None:
    hold, t0, c0 = CpuShare(mp.Value("d", share)), time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        sum(range(20_000))  # a "training step" of pure CPU
        hold()
    out.value = (time.process_time() - c0) / (time.perf_counter() - t0)


def test_the_cpu_share_holds_a_busy_process_down():
    """A single busy thread held to a quarter of the machine uses at most about that (an upper bound: other load on
    the machine only lowers it)."""
    ctx = mp.get_context("spawn")
    out = ctx.Value("d", 0.0)
    p = ctx.Process(target=_busy, args=(0.25, 3.0, out))
    p.start()
    p.join(60)
    cores = os.cpu_count() or 1
    assert 0 < out.value <= min(1.0, 0.25 * cores) * 1.25 + 0.05
    assert threads_for(0.25) == max(1, -(-cores // 4)) and threads_for(1.0) == cores
