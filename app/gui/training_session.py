"""The Training tab's state, without GUI calls: the run's choices, its controller and its curves.

Talks to the trainer only through `training.control.TrainingProcess` (start, pause, resume, stop, poll, state, its
newest files); never reaches into the trainer.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.gui.settings import outputs_dir
from renderer.errors import RedcubeError
from training.control import TrainingProcess, threads_for
from training.kinds import Job
from training.trainer import TrainConfig

ASSETS = Path(__file__).resolve().parents[2] / "assets"
BUDGET_UNITS = ("minutes", "steps")
RECIPES = ("shipped", "defaults")
TRAIN_KINDS = ("pixel", "latent", "vae")  # the chosen model on pixels or on TinyVAE latents, or the TinyVAE itself
RECIPE_FIELDS = ("model_config", "batch_size", "lr", "warmup_steps", "lr_final", "eval_every")
TRAIN_RESOLUTIONS = (32, 64, 128, 256)
CHECKPOINT_EVERY_S = 5.0  # the viewport picks up new weights this often


@dataclass
class TrainChoices:
    """What the panel's widgets hold; remembered in the settings file."""

    kind: str = "pixel"
    """'pixel': the model learns pictures; 'latent': it learns the scene TinyVAE's latents of res² renders (res at
    least 128), decoded to pictures; 'vae': the scene TinyVAE itself learns the renders (the model is not used; the
    viewport shows its round trip of the ground truth)."""
    model: str = "posemlp"
    res: int = 64
    data: str = "stream"
    budget: float = 10.0
    unit: str = "minutes"
    recipe: str = "shipped"
    """'shipped': the settings that trained the default network in assets/ (e.g. Plücker input + skip);
    'defaults': the model's own defaults (for posemlp, the blog's recipe)."""
    cpu_share: float = 0.5
    """Share of the machine's CPU the run keeps to (nerfstudio's "train util"); the viewport renders with the rest.
    On 2 cores, 0.5 leaves one core to the window and its network picture."""

    def __post_init__(self):
        check_share(self.cpu_share)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainChoices":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def check_share(share) -> float:
    """A CPU share in [0.1, 1], or one sentence."""
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0.1 <= share <= 1.0:
        raise RedcubeError(f"training CPU share {share!r} is out of range; choose a number from 0.1 to 1.")
    return float(share)


def shipped_recipe(model: str, res: int) -> dict:
    """Training settings recorded in the shipped checkpoint of this model (the nearest resolution), or {}."""
    found = []
    for path in ASSETS.glob(f"{model}_*.json"):
        try:
            train = json.loads(path.read_text()).get("train", {})
        except (OSError, ValueError):
            continue
        if train.get("model") == model:
            found.append((abs(int(train.get("res", 0)) - res), train))
    if not found:
        return {}
    train = min(found, key=lambda f: f[0])[1]
    return {k: train[k] for k in RECIPE_FIELDS if k in train}


@dataclass
class Curves:
    """Log records collected for the plots."""

    train_step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_psnr: list = field(default_factory=list)
    test_step: list = field(default_factory=list)
    test_psnr: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)

    def add(self, r: dict) -> None:
        if "train_loss" in r and r["train_loss"] is not None:
            self.train_step.append(r["step"])
            self.train_loss.append(r["train_loss"])
            self.train_psnr.append(-10 * math.log10(max(r["train_loss"], 1e-12)))
        # Held-out PSNR pooled over all pixels, the same average as the held-out MSE (the per-image mean PSNR climbs
        # with the easy sky-only views while the pooled MSE barely moves).
        psnr = r.get("test_psnr_pooled", r.get("test_psnr"))
        if psnr is not None:
            self.test_step.append(r["step"])
            self.test_psnr.append(psnr)
            self.test_loss.append(r.get("test_loss") or 10 ** (-psnr / 10))


class BackgroundRun:
    """What the Training tab and the Worlds tab's Train on share: one run (`proc`, a `training.control.TrainingProcess`;
    None before the first) with its state and Pause / Resume."""

    proc = None

    @property
    def state(self) -> str:
        return "idle" if self.proc is None else self.proc.state

    @property
    def active(self) -> bool:
        return self.proc is not None and self.proc.active

    def pause(self) -> None:
        if self.state == "running":
            self.proc.pause()

    def resume(self) -> None:
        if self.state == "paused":
            self.proc.resume()


class TrainingSession(BackgroundRun):
    def __init__(self, choices: TrainChoices | None = None, runs_dir: Path | None = None):
        self.choices = choices or TrainChoices()
        self.runs_dir = runs_dir or outputs_dir() / "runs"
        self.curves = Curves()
        self.last: dict = {}
        self.out_dir: Path | None = None
        self._ckpt_seen: tuple | None = None
        self._live_seen: tuple | None = None
        self._stopping: threading.Thread | None = None
        self.reported_failure = False

    # -- buttons -------------------------------------------------------------------------------
    def config(self):
        c = self.choices
        if c.unit not in BUDGET_UNITS or not c.budget > 0:
            raise RedcubeError("the training budget must be a positive number of minutes or steps.")
        self.out_dir = self.runs_dir / time.strftime("gui-%Y%m%d-%H%M%S")
        recipe = shipped_recipe(c.model, int(c.res)) if c.recipe == "shipped" else {}
        return TrainConfig(model=c.model, res=int(c.res), data=c.data, threads=threads_for(c.cpu_share),
                           minutes=float(c.budget) if c.unit == "minutes" else None,
                           steps=int(c.budget) if c.unit == "steps" else None,
                           checkpoint_every_s=CHECKPOINT_EVERY_S, out_dir=str(self.out_dir), **recipe)

    def job(self):
        """The chosen kind's run (training.kinds.Job) with the budget, CPU share and run folder of the choices."""
        c = self.choices
        if c.kind not in TRAIN_KINDS:
            raise RedcubeError(f"training kind {c.kind!r} is unknown here; choose one of {list(TRAIN_KINDS)}.")
        pixel = self.config()
        if c.kind == "pixel":
            return Job("pixel", {"train": pixel})
        budget = {"minutes": pixel.minutes, "steps": pixel.steps, "threads": pixel.threads}
        if c.kind == "latent":
            from training.latent.trainer import LatentTrainConfig

            return Job("latent", {"train": LatentTrainConfig(model=c.model, res=max(int(c.res), 128), heldout=4, **budget,
                                                             checkpoint_every_s=CHECKPOINT_EVERY_S, out_dir=pixel.out_dir)})
        from training.vae_train import VAETrainConfig

        return Job("vae", {"train": VAETrainConfig(**budget, out=pixel.out_dir)})

    def start(self) -> None:
        """Start a new run with the current choices (raises RedcubeError on bad choices)."""
        if self.active:
            raise RedcubeError("a training run is already going; press Stop or Reset first.")
        proc = TrainingProcess(self.job(), cpu_share=self.choices.cpu_share, follow=True)
        proc.start()
        self.proc, self.curves, self.last = proc, Curves(), {}
        self._ckpt_seen, self._live_seen, self.reported_failure = None, None, False

    def set_cpu_share(self, share: float) -> None:
        """The training CPU share, for the next run and the one going (raises RedcubeError out of range)."""
        self.choices.cpu_share = check_share(share)
        if self.active:
            self.proc.set_cpu_share(share)

    def toggle(self) -> None:
        self.pause() if self.state == "running" else self.resume()

    def stop(self) -> None:
        """End the run with a final checkpoint; the curves and the run stay on the panel (its state turns
        'stopping', then 'finished'). The stop waits for the trainer's checkpoint, so it runs off the GUI thread."""
        if self.active and (self._stopping is None or not self._stopping.is_alive()):
            self._stopping = threading.Thread(target=self.proc.stop, name="redcube-stop", daemon=True)
            self._stopping.start()

    def reset(self) -> None:
        """Stop the run (its final checkpoint is kept on disk) and clear the panel for a new one."""
        self.stop()
        self.proc, self.curves, self.last, self.out_dir = None, Curves(), {}, None

    def close(self) -> None:
        """At exit: stop a running trainer and wait for its final checkpoint."""
        if self.active:
            self.proc.stop()
        if self._stopping is not None:
            self._stopping.join(60)

    # -- polling -------------------------------------------------------------------------------
    def poll(self) -> list[dict]:
        if self.proc is None:
            return []
        records = self.proc.poll()
        for r in records:
            self.curves.add(r)
            self.last.update({k: v for k, v in r.items() if v is not None})
        return records

    def new_files(self) -> tuple[Path | None, Path | None]:
        """(live weights, newest checkpoint) of the run, each only if it changed since the last call (cheap: a stat,
        no read)."""
        if self.proc is None:
            return None, None
        live, self._live_seen = _changed(self.proc.live_path, self._live_seen)
        ckpt, self._ckpt_seen = _changed(self.proc.latest_checkpoint(), self._ckpt_seen)
        return live, ckpt

    # -- reading -------------------------------------------------------------------------------
    def owns(self, path: Path | None) -> bool:
        """Whether a file belongs to the current run's folder."""
        return path is not None and self.out_dir is not None and Path(path).parent == Path(self.out_dir)

    @property
    def error(self) -> str | None:
        return None if self.proc is None else self.proc.error

    def time_left(self) -> float | None:
        """Seconds of budget left, from the trainer's own clock (minutes) or its step rate (steps)."""
        c, last = self.choices, self.last
        if "time" not in last:
            return None
        if c.unit == "minutes":
            return max(0.0, c.budget * 60 - last["time"])
        step, t = last.get("step", 0), last["time"]
        return max(0.0, (c.budget - step) * t / step) if step and t else None

    def status(self, shown_step: int | None = None) -> str:
        """One line; `shown_step`: the step of the run's weights on screen, the number the viewport shows too (the
        log's figures come from the last logged step, said as such when it differs)."""
        s = self.state
        if s == "idle":
            return "idle: choose a model and press Start"
        last = self.last
        logged = last.get("step", 0)
        step = shown_step if shown_step is not None else logged
        parts = [s, f"step {step}"]
        if "samples_per_s" in last:
            parts.append(f"{last['samples_per_s'] / 1000:.1f}k samples/s")
        figures = []
        if "train_loss" in last:
            figures.append(f"loss {last['train_loss']:.4f}")
        held = last.get("test_psnr_pooled", last.get("test_psnr"))
        if held is not None:
            figures.append(f"held-out {held:.2f} dB")
        if figures:
            parts.append(", ".join(figures) + (f" (logged at step {logged})" if logged != step else ""))
        left = self.time_left()
        if left is not None and s in ("running", "paused"):
            parts.append(f"{int(left // 60)}:{int(left % 60):02d} left")
        return " | ".join(parts)


def _changed(path: Path | None, seen: tuple | None) -> tuple[Path | None, tuple | None]:
    """(path, its stat key) when the file exists and its key differs from `seen`, else (None, seen)."""
    try:
        st = Path(path).stat() if path is not None else None
    except OSError:
        st = None
    if st is None:
        return None, seen
    key = (str(path), st.st_mtime_ns, st.st_size)
    return (None, seen) if key == seen else (Path(path), key)
