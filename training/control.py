"""A training engine of any kind in its own process, and the narrow control object the app holds.

The app never touches the engine's internals: it starts, pauses, resumes and stops the process,
reads log records from a queue, and reloads weights from the files the engine writes (the checkpoint,
and with `follow` the live weights every LIVE_EVERY_S seconds).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import time
import traceback
from pathlib import Path

import torch

from renderer.errors import RedcubeError
from training.checkpoint import LIVE_NAME
from training.engine import Hooks
from training.kinds import Job


LIVE_EVERY_S = 0.5
"""How often a followed run hands its weights to the app (a few milliseconds of writing each time)."""


class CpuShare:
    """Holds this process to a share of the machine's cores (nerfstudio's "train util"): after each step it sleeps
    for as long as its CPU time runs ahead of share x cores x wall time, measured over a sliding few seconds."""

    WINDOW_S = 4.0

    def __init__(self, share):
        self.share = share  # a shared mp.Value: the app may change it while the run goes on
        self._start()

    def _start(self) -> None:
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()

    def __call__(self) -> None:
        cores = os.cpu_count() or 1
        share = min(1.0, max(0.0, self.share.value))
        wall = time.perf_counter() - self.t0
        if share >= 1.0 or wall > self.WINDOW_S:
            self._start()
            return
        ahead = (time.process_time() - self.cpu0) - share * cores * wall
        if ahead > 0:
            time.sleep(min(0.5, ahead / max(share * cores, 1e-3)))


def threads_for(share: float) -> int:
    """Trainer threads for a CPU share: the cores it may use, at least one."""
    return max(1, math.ceil(share * (os.cpu_count() or 1) - 1e-9))


def _run(job_dict: dict, scene_dict: dict | None, resume: bool, records, pause, stop, threads, parent: int,
         share=None, live: str | None = None) -> None:
    """Child process body: run the job's engines, whose hooks read the shared events.

    The process is not a daemon (it starts its own data producers), so it stops by itself, with a
    final checkpoint, when its parent (the app) has gone. With `live`, the weights go to that file every
    LIVE_EVERY_S seconds (the app's view follows them); with `share`, the run keeps to that share of the CPU.
    """
    from renderer.scene import Scene
    from training.checkpoint import save_live_weights

    hold = CpuShare(share) if share is not None else None
    published, engine = [0.0], [None]

    def on_weights(model, step: int) -> None:
        if live and time.perf_counter() - published[0] > LIVE_EVERY_S:
            save_live_weights(live, model, step, engine[0].live_tensors())
            published[0] = time.perf_counter()

    def should_stop() -> bool:
        return stop.is_set() or os.getppid() != parent

    def wait_if_paused() -> None:
        while pause.is_set() and not should_stop():
            # Sleep, not stop.wait(): Event.set() in the app waits for every process sleeping in
            # Event.wait(), so a trainer killed while paused would hang TrainingProcess.stop().
            time.sleep(0.05)
        if threads.value > 0 and torch.get_num_threads() != threads.value:
            torch.set_num_threads(threads.value)
        if hold is not None:
            hold()

    hooks = Hooks(on_record=records.put, should_stop=should_stop, wait_if_paused=wait_if_paused, on_weights=on_weights)
    try:
        scene = Scene.from_dict(scene_dict) if scene_dict else None
        for engine[0] in Job.from_dict(job_dict).engines(scene, hooks, resume):
            engine[0].run()
            if should_stop():
                break
    except RedcubeError as e:
        records.put({"event": "error", "message": str(e)})
    except Exception as e:  # report, don't vanish: the app shows this line
        records.put({"event": "error", "message": f"training crashed: {type(e).__name__}: {e}",
                     "traceback": traceback.format_exc()})


class TrainingProcess:
    """Start/pause/resume/stop a training run of any kind in a background process and follow its log."""

    def __init__(self, job: Job, scene=None, resume: bool = False, cpu_share: float | None = None,
                 follow: bool = False):
        """`cpu_share`: the share of the machine's cores the run keeps to (None: no limit); `follow`: hand the
        weights to `live_path` every LIVE_EVERY_S seconds for a viewer."""
        self.job, self.scene, self.resume_run, self.follow = job, scene, resume, follow
        self._ctx = mp.get_context("spawn")
        self._proc = None
        self._records = self._ctx.Queue()
        self._pause, self._stop = self._ctx.Event(), self._ctx.Event()
        threads = getattr(self.job.parts.get("train"), "threads", 0)
        self._threads = self._ctx.Value("i", threads if cpu_share is None else threads_for(cpu_share))
        self._share = self._ctx.Value("d", 1.0 if cpu_share is None else float(cpu_share))
        self.history: list[dict] = []
        self.error: str | None = None
        self._done = False

    @property
    def live_path(self) -> Path:
        return self.job.out_dir / LIVE_NAME

    def start(self) -> "TrainingProcess":
        if self._proc is not None:
            raise RedcubeError("this training run has already been started; reset to start a new one.")
        self._proc = self._ctx.Process(
            target=_run, name="redcube-trainer", daemon=False,
            args=(self.job.to_dict(), self.scene.to_dict() if self.scene else None, self.resume_run,
                  self._records, self._pause, self._stop, self._threads, os.getpid(), self._share,
                  str(self.live_path) if self.follow else None))
        self._proc.start()
        return self

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask for a final checkpoint and wait for the process to end."""
        self._stop.set()
        self._pause.clear()
        if self._proc is not None:
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.terminate()
        self.poll()

    def set_cpu_share(self, share: float) -> None:
        """The share of the machine's cores the run keeps to from its next step on (its threads follow)."""
        self._share.value = float(share)
        self._threads.value = threads_for(share)

    def poll(self) -> list[dict]:
        """New log records since the last call."""
        new = []
        while True:
            try:
                rec = self._records.get_nowait()
            except (queue.Empty, OSError, ValueError):
                break
            new.append(rec)
            if rec.get("event") == "error":
                self.error = rec["message"]
            if rec.get("event") == "done":
                self._done = True
        self.history.extend(new)
        if self._proc is not None and not self._proc.is_alive() and not self._done and self.error is None:
            if self._records.empty():
                self.error = f"the training process died (exit code {self._proc.exitcode}); the last checkpoint is kept."
        return new

    @property
    def active(self) -> bool:
        """Running, paused or on its way out (a new run must wait)."""
        return self.state in ("running", "paused", "stopping")

    @property
    def state(self) -> str:
        if self._proc is None:
            return "idle"
        if self.error:
            return "failed"
        if not self._proc.is_alive():
            return "finished" if self._done or self._stop.is_set() else "failed"
        if self._stop.is_set():
            return "stopping"
        return "paused" if self._pause.is_set() else "running"

    @property
    def checkpoint_path(self) -> Path:
        return self.job.out_dir / self.job.spec.checkpoint_name

    def latest_checkpoint(self) -> Path | None:
        p = self.checkpoint_path
        return p if p.exists() else None
