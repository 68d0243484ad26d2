"""The trainer: pixel batches from the stream (or the fixed set) -> model -> MSE -> Adam.

One loop serves the CLI, the experiments, the benchmark and the app (through `training.control`).
Logs go to `<out_dir>/log.jsonl`; checkpoints to `<out_dir>/checkpoint.safetensors` (+ .json).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import torch

from renderer.camera import check_res
from renderer.errors import RedcubeError
from renderer.models import PIXEL_MODELS, build_model, check_size, model_config
from renderer.numbers import check_number
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from training.checkpoint import DEFAULT_NAME, load_checkpoint, restore_optimizer, save_checkpoint
from training.data import PixelSet, fixed_pixels, heldout_poses
from training.disk import check_free_space, checkpoint_bytes, why_write_failed
from training.distributed import Dist
from training.evaluate import Evaluation, predict
from training.metrics import mse_to_psnr
from training.run_dir import claim, lock
from training.schedules import cosine
from training.stream import FrameStream, StreamConfig

DATA_MODES = ("stream", "fixed")


@dataclass
class TrainConfig:
    DATA_MODES: ClassVar[tuple[str, ...]] = DATA_MODES
    """The data modes this config trains from (latent mode offers others)."""
    model: str = "posemlp"
    """Model name from the registry (renderer.models.MODELS)."""
    model_config: dict = field(default_factory=dict)
    """Overrides of the model's config dataclass, e.g. {"input": "plucker", "width": 256}."""
    res: int = 32
    """Square training resolution of the ground-truth renders."""
    data: str = "stream"
    """'stream': fresh renders from producer processes; 'fixed': N samples drawn once."""
    fixed_samples: int = 100_000
    """Pixel samples in the fixed dataset."""
    steps: int | None = None
    """Step budget (the schedule spans it); at least one of steps and minutes is needed."""
    minutes: float | None = None
    """Wall-clock budget in minutes (the schedule spans it when no step budget is set)."""
    batch_size: int = 16384
    """Pixel samples per step."""
    lr: float = 1e-3
    """Peak Adam learning rate."""
    warmup_steps: int = 100
    """Linear warm-up steps before the cosine decay."""
    lr_final: float = 0.02
    """Final learning rate as a fraction of the peak (cosine decay)."""
    eval_every: int = 200
    """Steps between held-out evaluations."""
    log_every: int = 25
    """Steps between train-loss log records."""
    heldout: int = 32
    """Held-out test poses (fixed at the start from the seed; never trained on)."""
    checkpoint_every_s: float = 120.0
    """Seconds between periodic checkpoints after the first (one is always written at the end)."""
    first_checkpoint_s: float = 10.0
    """Seconds to the first checkpoint, so an early kill loses little."""
    seed: int = 0
    """Seeds model init, batch sampling, the data stream and the held-out poses."""
    threads: int = 0
    """torch threads (0: torch's default)."""
    compile: bool = False
    """Train through torch.compile (fuses the encoding and activations; costs a minute of compiling first)."""
    stream: StreamConfig = field(default_factory=StreamConfig)
    """Producer pool settings for data='stream'."""
    out_dir: str = "runs/latest"
    """Where log.jsonl and checkpoint.safetensors go."""

    def __post_init__(self):
        if isinstance(self.stream, dict):
            self.stream = StreamConfig(**self.stream)
        check_res(self.res)
        check_size(self.model, model_config(self.model, self.model_config), Scene())  # unknown, mistyped or huge: one sentence
        if self.model not in PIXEL_MODELS:
            raise RedcubeError(f"{self.model} is not trained from pixels here; use `redcube train-{self.model}`, "
                               f"or pick one of {list(PIXEL_MODELS)}.")
        if self.data not in self.DATA_MODES:
            raise RedcubeError(f"data mode {self.data!r} is not offered here; choose one of {list(self.DATA_MODES)}.")
        if self.steps is None and self.minutes is None:
            raise RedcubeError("training needs a budget; pass --steps N or --minutes M.")
        self._check_numbers()

    def _check_numbers(self) -> None:
        """Every number finite and in range (a NaN budget would train forever; --eval-every 0 divides by zero)."""
        if self.steps is not None:
            check_number("--steps", self.steps, 1, 10 ** 12, integer=True)
        if self.minutes is not None:
            check_number("--minutes", self.minutes, 0, 10 ** 7, lo_open=True)
        check_number("--batch-size", self.batch_size, 1, 2 ** 24, integer=True)
        check_number("--lr", self.lr, 0, 10, lo_open=True)
        check_number("--warmup-steps", self.warmup_steps, 0, 10 ** 9, integer=True)
        check_number("lr_final", self.lr_final, 0, 1)
        check_number("--eval-every", self.eval_every, 1, 10 ** 12, integer=True)
        check_number("log_every", self.log_every, 1, 10 ** 12, integer=True)
        check_number("--heldout", self.heldout, 1, 10 ** 5, integer=True)
        check_number("--fixed-samples", self.fixed_samples, 1, 10 ** 9, integer=True)
        check_number("--checkpoint-every", self.checkpoint_every_s, 0, 1e12, lo_open=True)
        check_number("first_checkpoint_s", self.first_checkpoint_s, 0, 1e12, lo_open=True)
        check_number("--seed", self.seed, 0, 2 ** 62, integer=True)
        check_number("--threads", self.threads, 0, 4096, integer=True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Hooks:
    """How a controller (the app, a test) talks to a running trainer; all optional."""

    on_record: Callable[[dict], None] | None = None
    """Called with every log record."""
    should_stop: Callable[[], bool] | None = None
    """Polled every step; True ends the run with a final checkpoint."""
    wait_if_paused: Callable[[], None] | None = None
    """Called every step; blocks while the controller holds training paused."""
    on_weights: Callable[[torch.nn.Module, int], None] | None = None
    """Called after every optimizer step with the model and the step (a viewer follows the weights; it decides how
    often it takes them)."""


class Trainer:
    def __init__(self, config: TrainConfig, scene: Scene | None = None, resume: bool = False, hooks: Hooks | None = None,
                 overwrite: bool = False):
        """`overwrite`: a run already in out_dir is moved aside (without it, and without `resume`, it is refused)."""
        self.config, self.hooks = config, hooks or Hooks()
        self.dist = Dist.from_env()  # a world of one unless launched by torchrun
        self.dist.check_same("training config", config.to_dict())
        if config.batch_size % self.dist.world:
            raise RedcubeError(f"batch size {config.batch_size} does not split over {self.dist.world} ranks; "
                               f"pass a --batch-size that is a multiple of {self.dist.world}.")
        self.out_dir = Path(config.out_dir)
        self.ckpt_path = self.out_dir / DEFAULT_NAME  # out_dir is a run directory, existing or not
        self.saved_step: int | None = None
        """Step of the newest checkpoint on disk (what a broken run can resume from)."""
        self.log_failed = False
        """A log line could not be written (said once)."""
        ckpt = self._resume_checkpoint() if resume else None
        # rank 0 writes the run: it alone guards and locks the directory
        self.run_lock = claim(self.out_dir, resume=resume, overwrite=overwrite) if self.dist.main else None
        self.scene = ckpt.scene if ckpt else (scene or Scene())
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.model = build_model(config.model, config.model_config, self.scene)
        self.forward = self.dist.wrap(self.model)  # DistributedDataParallel under torchrun, else the model itself
        if config.compile:
            self.forward = torch.compile(self.forward)  # weights stay in self.model
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.gen = torch.Generator().manual_seed(config.seed + self.dist.rank * 1_000_003)  # ranks draw different batches
        self.step, self.elapsed, self.metrics = 0, 0.0, {}
        if ckpt:
            self._restore(ckpt)
        if self.dist.main:
            check_free_space(self.out_dir, checkpoint_bytes(self.model))

    # ---- setup -------------------------------------------------------------------------------
    def _resume_checkpoint(self):
        if not self.ckpt_path.exists():
            raise RedcubeError(f"nothing to resume: {self.ckpt_path} does not exist; drop --resume to start a new run.")
        ckpt = load_checkpoint(self.ckpt_path)
        # the recorded fields as they are (rebuilding a config would refuse a latent run's settings as a pixel run's)
        saved = {k: ckpt.record["train"].get(k) for k in ("model", "model_config", "res")}
        if (saved["model"], saved["model_config"], saved["res"]) != (self.config.model, self.config.model_config, self.config.res):
            raise RedcubeError(
                f"{self.ckpt_path} holds a {saved['model']} {saved['model_config']} at {saved['res']}px, not the requested "
                f"{self.config.model} {self.config.model_config} at {self.config.res}px; resume with the same model or use another --out."
            )
        return ckpt

    def _restore(self, ckpt) -> None:
        self.model.load_state_dict(ckpt.build_model().state_dict())
        restore_optimizer(self.optimizer, ckpt)
        self.step = self.saved_step = ckpt.step
        self.elapsed = float(ckpt.record.get("elapsed_s", 0.0))
        self.metrics = ckpt.record.get("metrics", {})
        if "rng.batch" in ckpt.tensors and self.dist.main:  # rank 0's generator; other ranks keep their own seeds
            self.gen.set_state(ckpt.tensors["rng.batch"])

    # ---- schedule ----------------------------------------------------------------------------
    def progress(self) -> float:
        """Fraction of the budget used, by steps or by wall-clock, whichever is further along."""
        c = self.config
        fs = self.step / c.steps if c.steps else 0.0
        ft = self.elapsed / (c.minutes * 60) if c.minutes else 0.0
        return max(fs, ft)

    def lr(self) -> float:
        c = self.config
        if self.step < c.warmup_steps:
            return c.lr * (self.step + 1) / c.warmup_steps
        return cosine(c.lr, self.progress(), floor=c.lr_final)

    # ---- logging and checkpoints ---------------------------------------------------------------
    def log(self, record: dict) -> None:
        if not self.dist.main:
            return  # rank 0 speaks for the run
        record = {"step": self.step, "time": round(self.elapsed, 3), **record}
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:  # a full disk loses log lines, not the run: the checkpoint's own save says what is kept
            if not self.log_failed:
                self.log_failed = True
                if self.hooks.on_record:
                    self.hooks.on_record({"event": "log_failed", "step": self.step,
                                          "message": f"cannot append to {self.out_dir / 'log.jsonl'} ({why_write_failed(e)}); training goes on."})
        if self.hooks.on_record:
            self.hooks.on_record(record)

    def save(self) -> Path:
        """Write the checkpoint; a failed write (full disk, read-only) keeps the previous one and raises SaveFailed."""
        try:
            path = save_checkpoint(
                self.ckpt_path, self.model, self.scene, step=self.step, metrics=self.metrics,
                train=self.config.to_dict(), optimizer=self.optimizer,
                extra_tensors={"rng.batch": self.gen.get_state()}, extra=self._record_extra(),
            )
        except Exception as e:  # safetensors wraps OS errors in its own type
            kept, again = ((f"the previous checkpoint (step {self.saved_step}) is kept", "rerun with --resume")
                           if self.saved_step is not None else ("no earlier checkpoint exists", "run the command again"))
            raise SaveFailed(f"could not write the checkpoint of step {self.step} to {self.ckpt_path} ({why_write_failed(e)}); "
                             f"{kept}: free some space or fix the directory's permissions, then {again}.") from None
        self.saved_step = self.step  # written atomically: this step is whole on disk
        return path

    def _periodic_save(self) -> None:
        """A checkpoint during training; a failed one is said in the log and training goes on."""
        try:
            self.save()
        except SaveFailed as e:
            self.log({"event": "save_failed", "message": str(e)})

    def _save_on_error(self) -> None:
        """The loop broke: keep the newest weights if they are newer than the checkpoint on disk."""
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())  # never replace good weights with NaN
        if self.dist.main and self.step and self.step != self.saved_step and finite:
            try:
                self.save()
                self.log({"event": "error_checkpoint", "message": f"checkpoint of step {self.step} written before stopping"})
            except SaveFailed:
                pass  # the error being raised says what is safe

    def _record_extra(self) -> dict:
        """What the checkpoint's record holds beyond the model, config and metrics."""
        return {"elapsed_s": self.elapsed}

    # ---- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out loss, PSNR (mean over images, and pooled over all pixels) and SSIM at the training resolution."""
        s = Evaluation(self.test_poses, self.test_rgb, predict(self.model, self.test_poses, self.config.res)).summary()
        return {"test_loss": s["mse"], "test_psnr": s["psnr"], "test_psnr_pooled": s["psnr_pooled"], "test_ssim": s["ssim"]}

    # ---- the loop --------------------------------------------------------------------------------
    def run(self, until_step: int | None = None) -> dict:
        """Train until the budget (or `until_step`) is spent or a stop is requested; returns the final metrics."""
        c = self.config
        data, stream = None, None
        if self.dist.main and self.run_lock.fd is None:  # run again after an earlier run() released the directory
            self.run_lock = lock(self.out_dir)
        with Rasterizer(self.scene) as rast:
            self.test_poses = heldout_poses(self.scene, c.heldout, c.seed)
            self.test_rgb = torch.from_numpy(rast.render(self.test_poses.numpy(), c.res)[0])
            if c.data == "fixed":
                data = fixed_pixels(rast, c.res, c.fixed_samples, c.seed)
            else:
                stream = FrameStream(self.scene, c.res, c.stream, seed=c.seed + self.step, rank=self.dist.rank).start()
        return self._run_loop(data, stream, until_step)

    def _run_loop(self, data: PixelSet | None, stream: FrameStream | None, until_step: int | None) -> dict:
        """The loop, with the stream closed whatever happens and a lost peer under torchrun told in one sentence."""
        try:
            with self.dist.guard(self._what_is_safe):
                try:
                    return self._loop(data, stream, until_step)
                except Exception as e:  # every stop ends with a checkpoint (a save failure excepted; a second Ctrl-C aborts)
                    if not isinstance(e, SaveFailed):
                        self._save_on_error()
                    raise
        finally:
            if stream is not None:
                stream.close()
            if self.run_lock is not None:
                self.run_lock.release()

    def _what_is_safe(self) -> str:
        if not self.dist.main:
            return f"rank 0 keeps the run's checkpoints in {self.out_dir}: fix the cause and rerun with --resume."
        if self.saved_step is None:
            return "no checkpoint was written yet: fix the cause and run the command again."
        return f"the last checkpoint (step {self.saved_step}) in {self.out_dir} is intact: fix the cause and rerun with --resume."

    def _loop(self, data: PixelSet | None, stream: FrameStream | None, until_step: int | None) -> dict:
        c, h = self.config, self.hooks
        if stream is not None:
            data = self._next_buffer(stream, wait=60.0)
        good = self._snapshot()
        self.log({"event": "start", "data": c.data, "parameters": sum(p.numel() for p in self.model.parameters()),
                  "threads": torch.get_num_threads(), **({"backend": self.model.backend} if hasattr(self.model, "backend") else {}),
                  **self._ranks(data)})
        batch = c.batch_size // self.dist.world
        spike = LossSpikes()
        last_ckpt = last_t = time.perf_counter()
        ckpt_wait = min(c.first_checkpoint_s, c.checkpoint_every_s)  # the first comes early, then every checkpoint_every_s
        window_samples, window_t0, loss_sum, loss_n, last_loss = 0, last_t, 0.0, 0, float("nan")
        while True:
            go = self.progress() < 1.0 and (until_step is None or self.step < until_step)
            if not self.dist.all_true(go and not (h.should_stop and h.should_stop())):
                break  # every rank leaves the loop at the same step
            if h.wait_if_paused:
                t_wait = time.perf_counter()
                h.wait_if_paused()
                paused = time.perf_counter() - t_wait  # paused time is not training time
                last_t, window_t0 = last_t + paused, window_t0 + paused
            if stream is not None:
                data = self._next_buffer(stream) or data
            # 1. one Adam step on a fresh batch of pixel samples
            for g in self.optimizer.param_groups:
                g["lr"] = self.lr()
            poses, uv, target = data.batch(batch, self.gen)
            loss = torch.nn.functional.mse_loss(self.forward(poses, uv), target)
            if not self.dist.all_true(bool(torch.isfinite(loss))):
                self._rollback(good, "a non-finite loss")
                continue
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            now = time.perf_counter()
            self.elapsed += now - last_t
            last_t = now
            last_loss = loss.item()
            if not self.dist.all_true(spike.ok(last_loss, self.step > c.warmup_steps)):
                self._rollback(good, f"the training loss jumping to {last_loss:.3g}, over {SPIKE_FACTOR:g}x its recent average,")
                spike.reset()
                continue
            loss_sum, loss_n, window_samples = loss_sum + last_loss, loss_n + 1, window_samples + batch * self.dist.world
            if h.on_weights and self.dist.main:
                h.on_weights(self.model, self.step)
            # 2. logs, held-out evaluation, checkpoints
            if self.step % c.log_every == 0:
                self.log({"event": "train", "train_loss": loss_sum / loss_n, "lr": self.lr(),
                          "samples_per_s": window_samples / max(now - window_t0, 1e-9)})
                loss_sum, loss_n, window_samples, window_t0 = 0.0, 0, 0, now
            if self.step % c.eval_every == 0:
                if self.dist.main:
                    self._eval_and_log(last_loss)
                if spike.calm:
                    good = self._snapshot()
            if now - last_ckpt > ckpt_wait and self.dist.main:
                self._periodic_save()
                last_ckpt = last_t = time.perf_counter()
                ckpt_wait = c.checkpoint_every_s
        if not self.dist.main:
            return self.metrics
        if self.metrics.get("step") != self.step:
            self._eval_and_log(loss_sum / loss_n if loss_n else last_loss)
        path = self.save()
        self.log({"event": "done", "checkpoint": str(path), **self.metrics})
        return self.metrics

    def _ranks(self, data: PixelSet) -> dict:
        """Under torchrun: each rank's held-out checksum and first training poses, for the start record
        (the held-out sets must be identical, the data streams disjoint)."""
        if not self.dist.active:
            return {}
        mine = {"heldout_sum": float(self.test_poses.double().sum() + self.test_rgb.double().sum()),
                "first_pose": data.poses[0].tolist()}
        return {"world_size": self.dist.world, "dist_backend": self.dist.backend, "ranks": self.dist.gather(mine)}

    def _next_buffer(self, stream: FrameStream, wait: float = 0.0) -> PixelSet | None:
        got = stream.latest(wait=wait)
        if got is None:
            if wait:
                raise RedcubeError("the data producer delivered no frames within a minute; check `redcube render` works.")
            return None
        _, poses, rgb = got
        return PixelSet.from_frames(poses, rgb)

    def _eval_and_log(self, train_loss: float) -> None:
        self.metrics = {"train_loss": train_loss, "train_psnr": mse_to_psnr(train_loss), **self.evaluate(),
                        "res": self.config.res, "step": self.step, "elapsed_s": round(self.elapsed, 2)}
        self.log({"event": "eval", **self.metrics})

    def _snapshot(self) -> dict:
        return {"model": {k: v.clone() for k, v in self.model.state_dict().items()},
                "optim": _clone_state(self.optimizer.state_dict()), "step": self.step}

    def _rollback(self, good: dict, why: str) -> None:
        """A diverged step: restore the last good weights and optimizer state, halve the peak lr, and say so."""
        self.model.load_state_dict(good["model"])
        self.optimizer.load_state_dict(_clone_state(good["optim"]))
        bad_step, self.step = self.step, good["step"]
        self.config.lr *= 0.5
        self.log({"event": "rollback", "message": f"{why} at step {bad_step}: rolled back to step {self.step} "
                  f"and halved the learning rate to {self.config.lr:.3g}", "bad_step": bad_step})


class SaveFailed(RedcubeError):
    """A checkpoint could not be written; the message says why, where, and what is kept."""


SPIKE_FACTOR, SPIKE_STEPS = 20.0, 5
DRIFT_FACTOR = 20.0


class LossSpikes:
    """Divergence that stays finite: a field whose density collapses (an ngp run at lr 1e-2 once fell from
    31 to 10 dB train PSNR in a few steps and never came back). `ok()` is False once the loss has stayed
    over SPIKE_FACTOR times its running average for SPIKE_STEPS steps in a row, or once the running average
    itself has climbed to DRIFT_FACTOR times the lowest it reached: a collapse that creeps up over a hundred steps
    drags the running average along and never looks like a spike (three 256² ngp runs went from 6e-4 to 0.09
    that way, within 100 steps)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.avg, self.best, self.run = None, None, 0

    @property
    def calm(self) -> bool:
        return self.run == 0

    def ok(self, loss: float, armed: bool) -> bool:
        if armed and self.avg is not None and loss > SPIKE_FACTOR * self.avg:
            self.run += 1
            return self.run < SPIKE_STEPS
        self.run = 0
        self.avg = loss if self.avg is None else 0.98 * self.avg + 0.02 * loss
        self.best = self.avg if self.best is None else min(self.best, self.avg)
        return not (armed and self.avg > DRIFT_FACTOR * self.best)


def _clone_state(sd: dict) -> dict:
    """Deep copy of an optimizer state dict (tensors cloned)."""
    return {"state": {k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in v.items()} for k, v in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}
