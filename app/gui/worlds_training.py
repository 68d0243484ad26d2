"""The Worlds tab's "train on" run, without GUI calls: the loaded mNIF trains on in the background (auto-decoding
from its own weights and latents, a fresh learning-rate schedule, then its diffusion model), through the same
`training.control.TrainingProcess` as the Training tab; the tab's worlds follow the live weights and latents.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

from app.gui.training_session import BackgroundRun, _changed
from renderer.errors import RedcubeError
from renderer.models.mnif import MNIFConfig
from training.checkpoint import load_checkpoint, load_live_weights, split_live_extra
from training.control import TrainingProcess
from training.kinds import Job
from training.mnif.autodecode import MNIFTrainConfig
from training.mnif.diffusion import DenoiserConfig, DiffusionTrainConfig


def continue_job(path: Path, minutes: float, out: Path):
    """The mnif kind's job that continues the auto-decoded mNIF at `path` into `out` for `minutes` (its recorded
    training settings otherwise)."""
    record = load_checkpoint(path).record
    if record.get("method", "autodecode") != "autodecode":
        raise RedcubeError(f"{path} was meta-learned; only an auto-decoded mNIF trains on from its latents: load one.")
    names = {f.name for f in dataclasses.fields(MNIFTrainConfig)}
    train = {k: v for k, v in record.get("train", {}).items() if k in names}
    train.update(steps=None, minutes=float(minutes), init_from=str(path), out=str(out))
    return Job("mnif", {"train": MNIFTrainConfig(**train), "model": MNIFConfig(**record["model"]["config"]),
                        "diffusion": DiffusionTrainConfig(), "denoiser": DenoiserConfig()})


class WorldsTraining(BackgroundRun):
    """One background run at a time; `follow(worlds)` each frame hands its newest weights to the Worlds tab."""

    def __init__(self):
        self.minutes = 5.0
        self._seen: tuple | None = None
        self.reloaded = False

    def start(self, worlds, runs_dir: Path, cpu_share: float) -> Path:
        """Train the Worlds tab's mNIF on; returns the run folder (raises RedcubeError with nothing loaded or a run going)."""
        if worlds.mnif is None:
            raise RedcubeError("no mNIF is loaded; load one, then it can train on.")
        if self.active:
            raise RedcubeError("the mNIF is already training; stop it first.")
        if not self.minutes > 0:
            raise RedcubeError("the training budget must be a positive number of minutes.")
        out = Path(runs_dir) / time.strftime("mnif-%Y%m%d-%H%M%S")
        self.proc = TrainingProcess(continue_job(worlds.mnif.path, self.minutes, out), cpu_share=cpu_share, follow=True)
        self.proc.start()
        self._seen, self.reloaded = None, False
        return out

    def stop(self) -> None:
        if self.active:
            self.proc.stop()

    def follow(self, worlds) -> None:
        """New live weights and latents into the tab's mNIF (a copy: renders in flight keep theirs); when the run has
        ended, its checkpoint (and its new diffusion model) is loaded."""
        if self.proc is None or worlds.mnif is None:
            return
        self.proc.poll()
        if not self.active and not self.reloaded and self.proc.latest_checkpoint() is not None:
            self.reloaded = True
            worlds.load(self.proc.latest_checkpoint())
            return
        path, self._seen = _changed(self.proc.live_path, self._seen)
        if path is None:
            return
        try:
            state, kind, step = load_live_weights(path)
        except RedcubeError:
            return  # replaced while read: the next one comes in half a second
        weights, extra = split_live_extra(state)
        if kind != "mnif" or "latents" not in extra:
            return
        model = copy.deepcopy(worlds.mnif.model)
        model.load_state_dict(weights)
        worlds.follow(model, extra["latents"], step)

    def status(self) -> str:
        s = self.state
        if s == "idle":
            return "Train on: continue the loaded mNIF in the background (auto-decoding, then its diffusion model)."
        last = self.proc.history[-1] if self.proc.history else {}
        if self.proc.error:
            return f"training stopped: {self.proc.error}"
        return f"{s}: {last.get('kind', 'mnif')} step {last.get('step', 0)}, loss {last.get('train_loss', float('nan')):.4f}"
