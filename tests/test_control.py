"""The app's control object: a real trainer in its own process, driven through start/pause/resume/stop."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from renderer.errors import RedcubeError
from training.checkpoint import load_checkpoint
from training.control import TrainingProcess
from training.kinds import Job
from training.trainer import TrainConfig


def pixel(out_dir, **kw) -> Job:
    """Endless tiny pixel training (it runs until stopped) with a train record every step."""
    base = dict(model="posemlp", model_config={"width": 32, "layers": 3}, res=16, data="fixed", fixed_samples=4096,
                steps=1_000_000, batch_size=256, warmup_steps=5, log_every=1, eval_every=10_000, heldout=2,
                threads=1, out_dir=str(out_dir))
    return Job("pixel", {"train": TrainConfig(**{**base, **kw})})


def wait_for(tp: TrainingProcess, cond, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tp.poll()
        if cond():
            return
        if tp.error:
            raise AssertionError(f"training failed while waiting for {what}: {tp.error}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; state {tp.state}, last records {tp.history[-3:]}")


def last_step(tp: TrainingProcess) -> int:
    return max((r["step"] for r in tp.history if r.get("event") == "train"), default=0)


def test_start_pause_resume_stop(tmp_path):
    tp = TrainingProcess(pixel(tmp_path))
    assert tp.state == "idle" and tp.latest_checkpoint() is None
    tp.start()
    try:
        with pytest.raises(RedcubeError):
            tp.start()
        wait_for(tp, lambda: last_step(tp) >= 5, "five training steps")
        assert tp.state == "running"
        assert tp.history[0]["event"] == "start" and tp.history[0]["data"] == "fixed"

        tp.pause()
        assert tp.state == "paused"
        time.sleep(0.5)  # the step in flight finishes
        tp.poll()
        paused_at = last_step(tp)
        time.sleep(1.0)
        tp.poll()
        assert last_step(tp) == paused_at, "training went on while paused"
        assert tp.state == "paused"

        tp.resume()
        assert tp.state == "running"
        wait_for(tp, lambda: last_step(tp) >= paused_at + 5, "steps after resuming")
    finally:
        tp.stop()
    assert tp.state == "finished" and tp.error is None
    done = tp.history[-1]
    assert done["event"] == "done"
    ckpt = load_checkpoint(tp.latest_checkpoint())
    assert tp.latest_checkpoint() == tmp_path / "checkpoint.safetensors"
    assert ckpt.step == done["step"] >= paused_at + 5
    assert ckpt.record["metrics"]["step"] == ckpt.step  # a final evaluation at the stop


def test_a_run_that_fails_in_the_child_reports_its_sentence(tmp_path, one_sentence):
    tp = TrainingProcess(pixel(tmp_path / "nothing-here"), resume=True).start()
    try:
        deadline = time.monotonic() + 180
        while tp.error is None and time.monotonic() < deadline:
            tp.poll()
            time.sleep(0.05)
    finally:
        tp.stop()
    assert tp.state == "failed"
    assert "nothing to resume" in tp.error
    one_sentence(tp.error)
    assert [r["event"] for r in tp.history] == ["error"]
    assert tp.latest_checkpoint() is None


def test_stop_after_the_trainer_was_killed_while_paused(tmp_path):
    tp = TrainingProcess(pixel(tmp_path)).start()
    try:
        wait_for(tp, lambda: last_step(tp) >= 2, "two training steps")
        tp.pause()
        time.sleep(0.5)  # now it sleeps in its pause loop
        os.kill(tp._proc.pid, signal.SIGKILL)
        tp._proc.join(30)
    finally:
        stopper = threading.Thread(target=tp.stop, daemon=True)
        stopper.start()
        stopper.join(60)
    assert not stopper.is_alive(), "stop() hangs on a trainer that died while paused"
    assert tp.state == "failed"
    assert "died" in tp.error and "checkpoint is kept" in tp.error
