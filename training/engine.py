"""The one training loop. Every kind of model (pixel, latent, TinyVAE, mNIF, diffusion, weight space, NGP fields)
is an `Engine` subclass that supplies only what is its own: `setup` (model, optimizer, data), `train_step` (the loss
of one batch), `evaluate`, and what its checkpoint holds beyond the model and optimizer.

The engine owns, top to bottom in `_loop`:
  1. the budget: steps or minutes, whichever is further along (`progress`); NaN and negative budgets are refused
  2. the learning rate: linear warm-up, then a cosine to a floor, on every optimizer group that names a `peak`
  3. the step: zero_grad, backward, optional gradient clip, optimizer step; a non-finite loss or a loss spike rolls
     back to the last good weights and halves the learning rate (`LossSpikes`)
  4. records: one writer of `<out_dir>/log.jsonl`, the same records to `Hooks.on_record`, a tqdm bar on a terminal
  5. checkpoints through `training.checkpoint` (periodic, on evaluation if the kind asks, final, on error)
  6. pause / resume / stop through `Hooks`, SIGINT and SIGTERM through `StopRequests`
Resuming restores weights, optimizer, step, elapsed time, the batch generator and the lr scale: a run stopped and
resumed trains the same weights as one run straight through.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch

from renderer.errors import RedcubeError
from renderer.numbers import check_number
from renderer.scene import Scene
from training.checkpoint import DEFAULT_NAME, Checkpoint, load_checkpoint, restore_optimizer, save_checkpoint
from training.disk import check_free_space, checkpoint_bytes, why_write_failed
from training.distributed import Dist
from training.run_dir import claim, lock


@dataclass
class Plan:
    """How the engine runs a kind: budget, schedule, cadence and place. Each kind fills it from its own config."""

    steps: int | None = None
    """Step budget (the schedule spans it); at least one of steps and minutes."""
    minutes: float | None = None
    """Wall-clock budget in minutes."""
    out_dir: str | None = None
    """Run directory for log.jsonl and the checkpoint; None writes nothing (a fit inside a larger job)."""
    seed: int = 0
    """Seeds the batch generator (each rank under torchrun adds its own offset)."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    warmup_share: float = 0.0
    """Or: linear warm-up over this share of the budget (from 1% of the peak)."""
    lr_floor: float = 0.05
    """Cosine decay's end as a fraction of the peak."""
    log_every: int = 25
    """Steps between train records."""
    eval_every: int | None = 200
    """Steps between evaluations (None: only at the end)."""
    save_on_eval: bool = False
    """Write the checkpoint after every evaluation (kinds whose evaluation is their progress report)."""
    checkpoint_every_s: float = 120.0
    """Seconds between periodic checkpoints after the first."""
    first_checkpoint_s: float = 10.0
    """Seconds to the first periodic checkpoint."""
    clip: float | None = None
    """Gradient-norm clip (None: none)."""
    guard: bool = True
    """Roll back a non-finite loss or a loss spike (off where a fit must follow its seed exactly, as a data set's fields)."""

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise RedcubeError("training needs a budget; pass --steps N or --minutes M.")
        if self.steps is not None:
            check_number("--steps", self.steps, 1, 10 ** 12, integer=True)
        if self.minutes is not None:
            check_number("--minutes", self.minutes, 0, 10 ** 7, lo_open=True)
        check_number("log_every", self.log_every, 1, 10 ** 12, integer=True)
        if self.eval_every is not None:
            check_number("--eval-every", self.eval_every, 1, 10 ** 12, integer=True)

    @classmethod
    def of(cls, config, **kw) -> "Plan":
        """A kind's plan from the fields its config names alike (steps, minutes, seed, eval_every, ...; `out` for
        out_dir), `kw` overriding them."""
        same = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
        if hasattr(config, "out"):
            same["out_dir"] = config.out
        return cls(**{**same, **kw})


@dataclass
class Hooks:
    """How a controller (the app, a test) talks to a running engine; all optional."""

    on_record: Callable[[dict], None] | None = None
    """Called with every log record."""
    should_stop: Callable[[], bool] | None = None
    """Polled every step; True ends the run with a final checkpoint."""
    wait_if_paused: Callable[[], None] | None = None
    """Called every step; blocks while the controller holds training paused."""
    on_weights: Callable[[torch.nn.Module, int], None] | None = None
    """Called after every optimizer step with the model and the step (a viewer follows the weights; it decides how
    often it takes them)."""
    progress_bar: bool = False
    """Draw a tqdm bar on stderr when it is a terminal (the command line)."""


class SaveFailed(RedcubeError):
    """A checkpoint could not be written; the message says why, where, and what is kept."""


class Engine:
    """The loop; subclasses are the kinds. A kind sets `self.model`, `self.optimizer` and `self.scene` in `setup`."""

    kind = "model"
    """The kind's name, as `redcube train KIND` spells it."""
    checkpoint_name = DEFAULT_NAME
    joins_run = False
    """True for a kind that writes into another run's directory (the diffusion model beside its mNIF)."""
    eval_is_training_time = True
    """False where evaluation costs seconds (decoding frames, rendering worlds): the budget's clock skips it."""
    config = None
    """The kind's training config (a dataclass): its checkpoint records it but for the fields in `config_skip` (a model
    config it records as the model's)."""
    config_skip: tuple[str, ...] = ()

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scene: Scene

    def __init__(self, plan: Plan, hooks: Hooks | None = None, resume: bool = False, overwrite: bool = False):
        """`overwrite`: a run already in out_dir is moved aside (without it, and without `resume`, it is refused)."""
        self.plan, self.hooks = plan, hooks or Hooks()
        self.dist = Dist.from_env()  # a world of one unless launched by torchrun
        self.out_dir = Path(plan.out_dir) if plan.out_dir else None
        self.ckpt_path = self.out_dir / self.checkpoint_name if self.out_dir else None
        self.saved_step: int | None = None
        """Step of the newest checkpoint on disk (what a broken run can resume from)."""
        self.log_failed = False
        ckpt = self.resume_checkpoint() if resume else None
        # rank 0 writes the run: it alone guards and locks the directory
        self.run_lock = (claim(self.out_dir, resume=resume or self.joins_run, overwrite=overwrite)
                         if self.dist.main and self.out_dir else None)
        self.gen = torch.Generator().manual_seed(plan.seed + self.dist.rank * 1_000_003)  # ranks draw different batches
        self.step, self.elapsed, self.metrics, self.lr_scale = 0, 0.0, {}, 1.0
        self._rng_after_step = None
        try:
            if self.config is not None:  # the kind's weights start from its seed, on its threads (0: torch's default)
                torch.manual_seed(self.config.seed)
                if getattr(self.config, "threads", 0) > 0:
                    torch.set_num_threads(self.config.threads)
            self.setup(ckpt)
            if ckpt:
                self.restore(ckpt)
            if self.dist.main and self.out_dir:
                check_free_space(self.out_dir, checkpoint_bytes(self.model))
        except BaseException:
            self._release()
            raise

    # ---- what a kind supplies ------------------------------------------------------------------
    def setup(self, ckpt: Checkpoint | None) -> None:
        """Build self.model, self.optimizer and self.scene (torch is seeded from the config's seed before; the
        checkpoint, when resuming, is restored after). `Fit` is handed them built."""

    def open(self) -> dict:
        """Before the loop: make the data ready; returns fields for the start record."""
        return {}

    def close(self) -> None:
        """After the loop, whatever happened: release the data (producer processes, files)."""

    def train_step(self) -> tuple[torch.Tensor, dict]:
        """The loss of one batch (the engine steps the optimizer) and scalar parts for the train record."""
        raise NotImplementedError

    def evaluate(self) -> dict:
        """Held-out metrics."""
        return {}

    def eval_record(self, train_loss: float) -> dict:
        """The metrics an evaluation records (a kind may add figures derived from the train loss)."""
        return {"train_loss": train_loss, **self.evaluate()}

    def saved_extra(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, record entries) a checkpoint holds beyond model, optimizer, generators, config and metrics."""
        return {}, {}

    def live_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors a viewer following the run needs beside the model's weights (an mNIF's latents)."""
        return {}

    def resume_checkpoint(self) -> Checkpoint:
        """The checkpoint a resumed run continues (a kind checks that it fits the request)."""
        if self.ckpt_path is None or not self.ckpt_path.exists():
            raise RedcubeError(f"nothing to resume: {self.ckpt_path} does not exist; drop --resume to start a new run.")
        ckpt = load_checkpoint(self.ckpt_path)
        if ckpt.record.get("run_kind", self.kind) != self.kind:
            raise RedcubeError(f"{self.ckpt_path} holds a {ckpt.record['run_kind']} run, not a {self.kind} run; resume with the same kind or use another --out.")
        return ckpt

    def restore(self, ckpt: Checkpoint) -> None:
        """Weights, optimizer, step, clock, generator and lr scale from a checkpoint (a kind adds its own tensors)."""
        self.model.load_state_dict(ckpt.prefixed("model."))
        restore_optimizer(self.optimizer, ckpt)
        self.step = self.saved_step = ckpt.step
        self.elapsed = float(ckpt.record.get("elapsed_s", 0.0))
        self.metrics = ckpt.record.get("metrics", {})
        self.lr_scale = float(ckpt.record.get("lr_scale", 1.0))
        if "rng.batch" in ckpt.tensors and self.dist.main:  # rank 0's generator; other ranks keep their own seeds
            self.gen.set_state(ckpt.tensors["rng.batch"])
        if "rng.torch" in ckpt.tensors:  # dropout and other draws from torch's own generator
            torch.set_rng_state(ckpt.tensors["rng.torch"])

    def rng_torch(self) -> torch.Tensor:
        """torch's global generator as the last step left it (an evaluation after it must not move a resumed run)."""
        return self._rng_after_step if self._rng_after_step is not None else torch.get_rng_state()

    # ---- budget and schedule -------------------------------------------------------------------
    def progress(self) -> float:
        """Fraction of the budget used, by steps or by wall-clock, whichever is further along."""
        p = self.plan
        fs = self.step / p.steps if p.steps else 0.0
        ft = self.elapsed / (p.minutes * 60) if p.minutes else 0.0
        return max(fs, ft)

    def lr_factor(self) -> float:
        """Warm-up, then a half cosine from the peak to lr_floor x peak, over the budget's progress."""
        p, done = self.plan, self.progress()
        if self.step < p.warmup_steps:
            return (self.step + 1) / p.warmup_steps
        if done < p.warmup_share:
            return max(done / p.warmup_share, 0.01)
        along = min((done - p.warmup_share) / max(1 - p.warmup_share, 1e-9), 1.0)  # how far down the cosine
        return p.lr_floor + (1 - p.lr_floor) * 0.5 * (1 + math.cos(math.pi * along))

    def set_lr(self) -> None:
        """Groups with a `peak` follow the schedule; the others (an mNIF's latents, meta rates) keep their rate."""
        f = self.lr_factor() * self.lr_scale
        for g in self.optimizer.param_groups:
            if "peak" in g:
                g["lr"] = g["peak"] * f

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    # ---- records and checkpoints ------------------------------------------------------------------
    def log(self, record: dict) -> None:
        """The one writer of log.jsonl; every record also goes to the hook."""
        if not self.dist.main:
            return  # rank 0 speaks for the run
        record = {"step": self.step, "time": round(self.elapsed, 3), **record}
        if self.out_dir is not None:
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

    def save(self) -> Path | None:
        """Write the checkpoint; a failed write (full disk, read-only) keeps the previous one and raises SaveFailed."""
        if self.ckpt_path is None:
            return None
        try:
            config = asdict(self.config) if self.config is not None else {}
            tensors, record = self.saved_extra()
            path = save_checkpoint(
                self.ckpt_path, self.model, self.scene, step=self.step, metrics=self.metrics,
                train={k: v for k, v in config.items() if k not in self.config_skip},
                optimizer=self.optimizer,
                extra_tensors={"rng.batch": self.gen.get_state(), "rng.torch": self.rng_torch(), **tensors},
                extra={"elapsed_s": self.elapsed, "run_kind": self.kind, **({"lr_scale": self.lr_scale} if self.lr_scale != 1.0 else {}),
                       **record})
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

    def _eval_and_log(self, train_loss: float) -> None:
        self.metrics = {**self.eval_record(train_loss), "step": self.step, "elapsed_s": round(self.elapsed, 2)}
        self.log({"event": "eval", **self.metrics})

    # ---- the loop ---------------------------------------------------------------------------------
    def run(self, until_step: int | None = None) -> dict:
        """Train until the budget (or `until_step`) is spent or a stop is requested; returns the final metrics."""
        if self.dist.main and self.out_dir and (self.run_lock is None or self.run_lock.fd is None):
            self.run_lock = lock(self.out_dir)  # run again after an earlier run() released the directory
        try:
            with self.dist.guard(self._what_is_safe):
                start = self.open()
                try:
                    return self._loop(start, until_step)
                except Exception as e:  # every stop ends with a checkpoint (a save failure excepted; a second Ctrl-C aborts)
                    if not isinstance(e, SaveFailed):
                        self._save_on_error()
                    raise
        finally:
            self.close()
            self._release()

    def _release(self) -> None:
        if getattr(self, "run_lock", None) is not None:
            self.run_lock.release()

    def _what_is_safe(self) -> str:
        if not self.dist.main:
            return f"rank 0 keeps the run's checkpoints in {self.out_dir}: fix the cause and rerun with --resume."
        if self.saved_step is None:
            return "no checkpoint was written yet: fix the cause and run the command again."
        return f"the last checkpoint (step {self.saved_step}) in {self.out_dir} is intact: fix the cause and rerun with --resume."

    def _loop(self, start: dict, until_step: int | None) -> dict:
        p, h = self.plan, self.hooks
        good = self._snapshot() if p.guard else None
        self.log({"event": "start", "kind": self.kind, "parameters": sum(x.numel() for x in self.model.parameters()),
                  "threads": torch.get_num_threads(), **start})
        spike, bar = LossSpikes(), progress_bar(p) if h.progress_bar else None
        samples = getattr(self, "samples_per_step", 0) * self.dist.world
        last_ckpt = last_t = time.perf_counter()
        ckpt_wait = min(p.first_checkpoint_s, p.checkpoint_every_s)  # the first comes early, then every checkpoint_every_s
        window_t0, loss_sum, loss_n, last_loss, parts = last_t, 0.0, 0, float("nan"), {}
        while True:
            self._rng_after_step = None
            go = self.progress() < 1.0 and (until_step is None or self.step < until_step)
            if not self.dist.all_true(go and not (h.should_stop and h.should_stop())):
                break  # every rank leaves the loop at the same step
            if h.wait_if_paused:
                t_wait = time.perf_counter()
                h.wait_if_paused()
                paused = time.perf_counter() - t_wait  # paused time is not training time
                last_t, window_t0 = last_t + paused, window_t0 + paused
            # 1-3. one optimizer step at the scheduled learning rate
            self.set_lr()
            loss, parts = self.train_step()
            if p.guard and not self.dist.all_true(bool(torch.isfinite(loss))):
                self._rollback(good, "a non-finite loss")
                continue
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if p.clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), p.clip)
            self.optimizer.step()
            self.step += 1
            now = time.perf_counter()
            self.elapsed += now - last_t
            last_t = now
            last_loss = loss.item()
            if p.guard and not self.dist.all_true(spike.ok(last_loss, self.step > p.warmup_steps)):
                self._rollback(good, f"the training loss jumping to {last_loss:.3g}, over {SPIKE_FACTOR:g}x its recent average,")
                spike.reset()
                continue
            loss_sum, loss_n = loss_sum + last_loss, loss_n + 1
            if h.on_weights and self.dist.main:
                h.on_weights(self.model, self.step)
            if bar is not None:
                bar.update(self.step - bar.n)
            # 4. records and held-out evaluation
            if self.step % p.log_every == 0:
                rate = {"samples_per_s": loss_n * samples / max(now - window_t0, 1e-9)} if samples else {}
                self.log({"event": "train", "train_loss": loss_sum / loss_n, "lr": self.lr(), **rate, **parts})
                if bar is not None:
                    bar.set_postfix(loss=f"{loss_sum / loss_n:.4g}", refresh=False)
                loss_sum, loss_n, window_t0 = 0.0, 0, now
            if p.eval_every and self.step % p.eval_every == 0:
                if self.dist.main:
                    self._eval_and_log(last_loss)
                    if p.save_on_eval:
                        self._periodic_save()
                if p.guard and spike.calm:
                    good = self._snapshot()
                if not self.eval_is_training_time:
                    last_t = time.perf_counter()  # the budget's clock skips the evaluation
            # 5. periodic checkpoints (their writing time is not training time)
            if self.ckpt_path and now - last_ckpt > ckpt_wait and self.dist.main:
                self._periodic_save()
                last_ckpt = last_t = time.perf_counter()
                ckpt_wait = p.checkpoint_every_s
        self._rng_after_step = torch.get_rng_state()
        if bar is not None:
            bar.close()
        stopped = bool(h.should_stop and h.should_stop())
        return self._finish(loss_sum / loss_n if loss_n else last_loss, stopped)

    def _finish(self, train_loss: float, stopped: bool = False) -> dict:
        """The final checkpoint: the weights are safe before a slow evaluation, and saved again with its metrics. A stop
        request skips a slow evaluation (rendering worlds, decoding frames): the user asked to stop, not to wait."""
        if not self.dist.main:
            return self.metrics
        slow = not self.eval_is_training_time
        if self.metrics.get("step") != self.step and not (stopped and slow):
            if slow and self.step != self.saved_step:
                self.save()
            self._eval_and_log(train_loss)
        path = self.save()
        self.log({"event": "done", "checkpoint": str(path) if path else None, **self.metrics})
        return self.metrics

    # ---- rollback -----------------------------------------------------------------------------------
    def _snapshot(self) -> dict:
        """Everything the optimizer moves (an mNIF's latents too) and the model's buffers, cloned."""
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        return {"model": {k: v.clone() for k, v in self.model.state_dict().items()},
                "params": [p.detach().clone() for p in params],
                "optim": copy.deepcopy(self.optimizer.state_dict()), "step": self.step}

    @torch.no_grad()
    def _rollback(self, good: dict, why: str) -> None:
        """A diverged step: restore the last good weights and optimizer state, halve the learning rate, and say so."""
        self.model.load_state_dict(good["model"])
        for p, saved in zip((p for g in self.optimizer.param_groups for p in g["params"]), good["params"]):
            p.copy_(saved)
        self.optimizer.load_state_dict(copy.deepcopy(good["optim"]))
        bad_step, self.step = self.step, good["step"]
        self.lr_scale *= 0.5
        self.on_rollback()
        self.log({"event": "rollback", "message": f"{why} at step {bad_step}: rolled back to step {self.step} "
                  f"and halved the learning rate to {self.lr_scale:g} of its schedule", "bad_step": bad_step})

    def on_rollback(self) -> None:
        """A kind that records its learning rate in its config keeps it in step with the halving."""


class Fit(Engine):
    """A small fit in memory through the engine (nothing written, no rollback: it follows its seed exactly): a module,
    its optimizer (groups with a `peak` follow the cosine, the others keep their rate) and a loss of no arguments.
    `evaluate` (optional) runs every `eval_every` steps and at the end; its records reach `hooks.on_record`. `seed`
    seeds the engine's batch generator (`self.gen`)."""

    kind = "fit"

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: Callable[[], torch.Tensor], steps: int,
                 evaluate: Callable[[], dict] | None = None, eval_every: int | None = None, seed: int = 0):
        self.model, self.optimizer, self.loss, self._evaluate, self.scene = model, optimizer, loss, evaluate, Scene()
        super().__init__(Plan(steps, seed=seed, log_every=steps, eval_every=eval_every, guard=False))

    def train_step(self) -> tuple[torch.Tensor, dict]:
        return self.loss(), {}

    def evaluate(self) -> dict:
        return self._evaluate() if self._evaluate else {}


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


def progress_bar(plan: Plan):
    """A tqdm bar over the step budget on a terminal (records go to the hook either way); None elsewhere."""
    if not (plan.out_dir and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=plan.steps, unit="step", dynamic_ncols=True, leave=True)


class StopRequests:
    """SIGINT and SIGTERM (a scheduler, `timeout`, a logout) both end the run with a final checkpoint;
    a second Ctrl-C aborts. Install it before the engine is built, so an early signal is not lost."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = None

    def __call__(self, signum, _frame) -> None:
        if self.requested == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.requested is None:
            again = "; Ctrl-C again to abort" if signum == signal.SIGINT else ""
            print(f"\nstopping: writing a final checkpoint ({signal.Signals(signum).name}{again})", file=sys.stderr, flush=True)
        self.requested = self.requested or signum

    def __enter__(self) -> "StopRequests":
        self.old = [signal.signal(s, self) for s in self.SIGNALS]
        return self

    def __exit__(self, *exc) -> None:
        for s, h in zip(self.SIGNALS, self.old):
            signal.signal(s, h)
