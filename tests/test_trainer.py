"""The trainer, for real: rasterizer ground truth, Adam steps, held-out evaluation, checkpoints.

Small networks (posemlp width 32-64) at 16-32 px on fixed data keep each run to seconds. The slow test
at the end trains the shipped recipe on streamed data for three minutes.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from renderer.errors import RedcubeError
from renderer.models import build_model
from training.checkpoint import load_checkpoint
from training.data import heldout_poses
from training.evaluate import evaluate
from training.engine import Hooks
from training.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")


def tiny(out_dir, **kw) -> TrainConfig:
    """A run of seconds: posemlp width 32 at 16 px on a fixed set of 16 frames."""
    base = dict(model="posemlp", model_config={"width": 32, "layers": 3}, res=16, data="fixed", fixed_samples=16 * 256,
                steps=20, batch_size=512, lr=3e-3, warmup_steps=5, eval_every=5, log_every=5, heldout=4,
                out_dir=str(out_dir))
    return TrainConfig(**{**base, **kw})


def read_log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def heldout_mse(model, scene, rasterizer, n: int, res: int) -> float:
    ev = evaluate(model, scene, heldout_poses(scene, n, 0), res, rasterizer)
    return float(((ev.pred - ev.gt) ** 2).mean())


# ---- a short run learns ---------------------------------------------------------------------------

# The Plücker input: in 150 steps the blog's 6-D pose input raises the held-out PSNR averaged over images
# but not yet the pooled held-out MSE (a few close-up views dominate it); the ray input lowers both.
SHORT = dict(model="posemlp", model_config={"width": 64, "input": "plucker"}, res=32, data="fixed", fixed_samples=100_000,
             steps=150, batch_size=1024, lr=3e-3, warmup_steps=10, eval_every=50, log_every=25, heldout=16)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, scene, rasterizer):
    out = tmp_path_factory.mktemp("short")
    config = TrainConfig(**SHORT, out_dir=str(out))
    torch.manual_seed(config.seed)  # the trainer's own initialisation, before any training
    untrained = build_model(config.model, config.model_config, scene)
    before = heldout_mse(untrained, scene, rasterizer, config.heldout, config.res)
    trainer = Trainer(config, scene=scene)
    metrics = trainer.run()
    return trainer, metrics, before, out


def test_a_short_run_lowers_the_heldout_loss(short_run, scene, rasterizer):
    trainer, metrics, before, _ = short_run
    after = heldout_mse(trainer.model, scene, rasterizer, SHORT["heldout"], SHORT["res"])
    assert after == pytest.approx(metrics["test_loss"], rel=1e-4)  # the trainer's own evaluation agrees
    assert after < 0.75 * before, (before, after)
    train = [r["train_loss"] for r in read_log(short_run[3]) if r["event"] == "train"]
    assert train[-1] < 0.5 * train[0], train


def test_log_has_start_train_eval_done_records(short_run):
    trainer, metrics, _, out = short_run
    log = read_log(out)
    events = [r["event"] for r in log]
    assert events[0] == "start" and events[-1] == "done"
    assert set(events) == {"start", "train", "eval", "done"}
    assert all({"step", "time", "event"} <= set(r) for r in log)
    start = log[0]
    assert start["data"] == "fixed" and start["parameters"] == sum(p.numel() for p in trainer.model.parameters())
    train = [r for r in log if r["event"] == "train"]
    assert [r["step"] for r in train] == list(range(25, 151, 25))
    for r in train:
        assert {"train_loss", "lr", "samples_per_s"} <= set(r) and r["samples_per_s"] > 0 and math.isfinite(r["train_loss"])
    evals = [r for r in log if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [50, 100, 150]
    for r in evals:
        assert {"train_loss", "train_psnr", "test_loss", "test_psnr", "test_ssim", "res", "elapsed_s"} <= set(r)
        assert r["res"] == 32 and 0 < r["test_ssim"] <= 1 and r["test_psnr"] > 5
    assert evals[-1]["test_loss"] < evals[0]["test_loss"]
    times = [r["time"] for r in log]
    assert times == sorted(times)
    done = log[-1]
    assert done["step"] == 150 and Path(done["checkpoint"]) == out / "checkpoint.safetensors"
    assert done["test_psnr"] == metrics["test_psnr"]


def test_checkpoint_is_written_atomically_and_holds_the_run(short_run):
    trainer, metrics, _, out = short_run
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.json", "checkpoint.safetensors", "log.jsonl"]
    ck = load_checkpoint(out)
    assert ck.step == 150 and ck.kind == "posemlp"
    assert ck.record["metrics"] == metrics
    assert ck.record["train"]["steps"] == 150 and ck.record["train"]["data"] == "fixed"
    assert json.loads((out / "checkpoint.json").read_text()) == ck.record
    assert "rng.batch" in ck.tensors and any(k.startswith("optim.") for k in ck.tensors)
    for (k, a), (_, b) in zip(trainer.model.state_dict().items(), ck.build_model().state_dict().items()):
        assert torch.equal(a, b), k


# ---- resume, stop, rollback -------------------------------------------------------------------------

def test_samples_per_s_counts_the_whole_window_when_a_controller_is_attached(tmp_path):
    """The app's pause hook runs every step; samples/s must still cover all steps since the last record."""
    waits = []
    trainer = Trainer(tiny(tmp_path, steps=20, log_every=10, eval_every=1000),
                      hooks=Hooks(wait_if_paused=lambda: waits.append(1)))
    trainer.run()
    train = [r for r in read_log(tmp_path) if r["event"] == "train"]
    assert len(waits) == 20 and len(train) == 2
    span = train[1]["time"] - train[0]["time"]  # ten steps of 512 samples
    assert train[1]["samples_per_s"] == pytest.approx(10 * 512 / span, rel=0.2)


def test_resume_continues_bit_identically(tmp_path):
    a = Trainer(tiny(tmp_path / "a"))
    a.run()
    b = Trainer(tiny(tmp_path / "b"))
    b.run(until_step=10)
    assert load_checkpoint(tmp_path / "b").step == 10
    b2 = Trainer(tiny(tmp_path / "b"), resume=True)
    assert b2.step == 10
    b2.run()
    ta, tb = load_checkpoint(tmp_path / "a").tensors, load_checkpoint(tmp_path / "b").tensors
    assert set(ta) == set(tb)
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert different == []  # weights, Adam moments and the batch RNG
    assert b2.step == a.step == 20
    # The resumed run appended to the same log.
    events = [(r["event"], r["step"]) for r in read_log(tmp_path / "b")]
    assert events.count(("start", 0)) == 1 and ("start", 10) in events and events[-1] == ("done", 20)


def test_a_stop_request_ends_with_a_final_checkpoint(tmp_path):
    trainer = Trainer(tiny(tmp_path, steps=1000, eval_every=100))
    polled = []

    def should_stop():
        polled.append(trainer.step)
        return trainer.step >= 7

    trainer.hooks = Hooks(should_stop=should_stop)
    metrics = trainer.run()
    assert trainer.step == 7 and polled[-1] == 7
    assert load_checkpoint(tmp_path).step == 7
    assert metrics["step"] == 7 and math.isfinite(metrics["test_psnr"])
    log = read_log(tmp_path)
    assert log[-1]["event"] == "done" and log[-1]["step"] == 7
    assert log[-2]["event"] == "eval" and log[-2]["step"] == 7


def test_a_non_finite_loss_rolls_back_and_training_goes_on(tmp_path):
    trainer = Trainer(tiny(tmp_path, steps=30, eval_every=10))
    lr0 = trainer.config.lr
    fired, snapshots, at_rollback = [], {}, []

    def poison(module, inputs, output):
        # A real forward hook: on the training pass of step 14 the network's output turns NaN, once.
        if torch.is_grad_enabled() and trainer.step == 13 and not fired:
            fired.append(trainer.step)
            return torch.full_like(output, float("nan"))
        return None

    def on_record(rec):
        state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        if rec["event"] == "eval":
            snapshots[rec["step"]] = state
        if rec["event"] == "rollback":
            at_rollback.append((rec, state))

    trainer.model.register_forward_hook(poison)
    trainer.hooks = Hooks(on_record=on_record)
    metrics = trainer.run()

    assert fired == [13]
    (rec, state), = at_rollback
    assert rec["bad_step"] == 13 and rec["step"] == 10
    assert "non-finite loss" in rec["message"] and "rolled back to step 10" in rec["message"]
    assert all(torch.equal(state[k], snapshots[10][k]) for k in state)  # the last good weights, exactly
    assert trainer.config.lr == lr0 / 2
    # Training went on to the end of its budget with finite numbers.
    assert trainer.step == 30 and metrics["step"] == 30
    assert all(math.isfinite(metrics[k]) for k in ("train_loss", "test_loss", "test_psnr", "test_ssim"))
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    log = read_log(tmp_path)
    assert [r["event"] for r in log].count("rollback") == 1 and log[-1]["event"] == "done"
    assert all(math.isfinite(r["train_loss"]) for r in log if r["event"] == "train")


def test_resuming_another_model_is_one_error_and_keeps_the_checkpoint(tmp_path, one_sentence):
    Trainer(tiny(tmp_path, steps=5)).run()
    files = {p.name: digest(p) for p in tmp_path.iterdir()}
    with pytest.raises(RedcubeError) as e:
        Trainer(tiny(tmp_path, model_config={"width": 48, "layers": 3}), resume=True)
    one_sentence(str(e.value))
    assert "posemlp" in str(e.value) and "--out" in str(e.value)
    with pytest.raises(RedcubeError):
        Trainer(tiny(tmp_path, res=32), resume=True)
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == files


def test_resume_without_a_checkpoint_is_one_error(tmp_path, one_sentence):
    with pytest.raises(RedcubeError) as e:
        Trainer(tiny(tmp_path / "empty"), resume=True)
    assert "nothing to resume" in str(e.value)
    one_sentence(str(e.value))
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize("bad,words", [
    (dict(model="nerf9000"), "unknown model"),
    (dict(model_config={"depth": 3}), "no setting"),
    (dict(res=8), "resolution 8"),
    (dict(res=4096), "resolution 4096"),
    (dict(steps=None, minutes=None), "budget"),
    (dict(steps=0), "--steps"),
    (dict(minutes=-1.0), "--minutes"),
    (dict(minutes=float("nan")), "--minutes"),  # NaN passed `<= 0` and trained forever
    (dict(data="disk"), "data mode"),
    (dict(batch_size=0), "--batch-size"),
    (dict(lr=0.0), "--lr"),
    (dict(lr=float("nan")), "--lr"),
    (dict(eval_every=0), "--eval-every"),
    (dict(checkpoint_every_s=float("inf")), "--checkpoint-every"),
])
def test_bad_config_values_are_one_clear_error(tmp_path, bad, words, one_sentence):
    with pytest.raises(RedcubeError) as e:
        tiny(tmp_path, **bad)
    assert words in str(e.value)
    one_sentence(str(e.value))


# ---- the shipped recipe, for a few minutes --------------------------------------------------------

@pytest.mark.slow
def test_plucker_skip_posemlp_streamed_for_three_minutes_clears_19_db(tmp_path):
    """What three minutes buy depends on the machine's load, so the bar sits well below what was measured:
    25.2 dB held-out (~480 steps) with other training jobs on both cores, 21.2 dB (~250 steps) with a
    second pytest run training beside it as well. An untrained network scores ~10 dB and one that
    ignores the pose (the mean training image) ~14.7 dB, so 19 dB needs a network that learned the views."""
    config = TrainConfig(model="posemlp", model_config={"input": "plucker", "skip": True}, res=32, data="stream",
                         minutes=3, batch_size=1024, lr=2e-3, warmup_steps=20, eval_every=100, out_dir=str(tmp_path))
    metrics = Trainer(config).run()
    assert metrics["test_psnr"] >= 19.0, metrics
    evals = [r for r in read_log(tmp_path) if r["event"] == "eval"]
    assert evals[-1]["test_psnr"] > evals[0]["test_psnr"]
    assert metrics["elapsed_s"] == pytest.approx(180, abs=15)


def test_loss_spikes_trip_only_on_a_lasting_jump():
    from training.engine import SPIKE_FACTOR, SPIKE_STEPS, LossSpikes

    s = LossSpikes()
    for _ in range(50):
        assert s.ok(1e-3, armed=True)
    assert s.ok(1e-3 * SPIKE_FACTOR * 2, armed=True) and s.ok(1e-3, armed=True)  # one bad batch: no alarm
    assert LossSpikes().ok(1.0, armed=True)  # a first loss only starts the average
    verdicts = [s.ok(0.1, armed=True) for _ in range(SPIKE_STEPS)]  # a collapse that stays
    assert verdicts == [True] * (SPIKE_STEPS - 1) + [False] and not s.calm
    quiet = LossSpikes()
    quiet.ok(1e-3, armed=False)
    assert all(quiet.ok(1.0, armed=False) for _ in range(10))  # not armed during warm-up


def test_loss_drift_trips_on_a_collapse_that_creeps_up():
    """Three 256² ngp runs collapsed this way: 6e-4 to 0.09 over about a hundred steps, never 20x the running
    average at any one step."""
    from training.engine import LossSpikes

    s = LossSpikes()
    noisy = [6e-4 * (1 + 4 * (i % 7 == 0)) for i in range(300)]  # training noise: a 5x batch now and then
    assert all(s.ok(v, armed=True) for v in noisy)
    creep = [6e-4 * 1.06 ** i for i in range(100)]  # x 340 over 100 steps
    verdicts = [s.ok(v, armed=True) for v in creep]
    assert False in verdicts and verdicts.index(False) < 90
