"""Background renderers for the viewport, so the GUI thread only composes and draws, and the network on screen.

A latent network (TinyVAE latents) is run at res/8 and decoded on its render thread too: that takes seconds on a CPU,
and the window stays responsive, showing the newest finished frame. `ModelSlot` swaps in new weights loaded off the
GUI thread: a whole checkpoint, or a training run's live weights into a copy of the network on screen.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from app.video import infer_chunk
from app.viewport import error_map, psnr
from renderer.errors import RedcubeError
from renderer.render import render_image
from renderer.tinyvae import TinyVAE
from training.checkpoint import load_checkpoint, load_live_weights, resolve
from training.vae import decode_latents, encode_frames, vae_for_checkpoint, vae_from

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
WARMUP_POSE = (1.5, 1.0, 1.5, 0.785, 0.0)
_threads: list[threading.Thread] = []


def start_thread(name: str, target: Callable[[], None]) -> threading.Thread:
    """Start a daemon thread that `join_threads` waits for when the app closes: one still inside torch when the
    interpreter exits aborts the process ("terminate called without an active exception")."""
    _threads[:] = [t for t in _threads if t.is_alive()]
    t = threading.Thread(target=target, name=name, daemon=True)
    _threads.append(t)
    t.start()
    return t


def join_threads(timeout: float = 120.0) -> list[str]:
    """Wait for the threads `start_thread` began (their jobs were cancelled or end on their own); the names of any
    still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    for t in list(_threads):
        t.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in _threads if t.is_alive()]


def load_in_background(name: str, load: Callable[[], None], failed: Callable[[str], None], what: str, fix: str,
                       finished: Callable[[], None]) -> None:
    """Run load() on a short daemon thread. A RedcubeError's sentence goes to failed(); any other failure (a damaged
    file may fail in ways safetensors does not name) becomes one sentence naming `what` and the `fix`; finished() last."""
    def run():
        try:
            load()
        except RedcubeError as e:
            failed(str(e))
        except Exception as e:
            failed(f"could not load {what} ({type(e).__name__}: {e}); {fix}.")
        finally:
            finished()

    start_thread(name, run)


class LatestWorker:
    """Calls fn(request) on a private thread; a newer submit replaces a pending one; `take()` returns new results."""

    def __init__(self, name: str, fn: Callable[[Any], Any]):
        self._fn = fn
        self._cv = threading.Condition()
        self._pending: Any = None
        self._result: Any = None
        self._fresh = False
        self._busy = False
        self._closed = False
        self.error: str | None = None
        start_thread(name, self._loop)

    def submit(self, request: Any) -> None:
        with self._cv:
            self._pending = request
            self._cv.notify()

    def take(self) -> Any:
        """The newest finished result if it was not taken yet, else None."""
        with self._cv:
            if not self._fresh:
                return None
            self._fresh = False
            return self._result

    @property
    def idle(self) -> bool:
        with self._cv:
            return self._pending is None and not self._busy

    def superseded(self) -> bool:
        """A newer request waits: the job in hand may stop early (it would be shown late)."""
        with self._cv:
            return self._pending is not None or self._closed

    def _loop(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                request, self._pending, self._busy = self._pending, None, True
            try:
                result, error = self._fn(request), None
            except Exception as e:  # shown in the window; the worker keeps serving
                result, error = None, str(e) if isinstance(e, RedcubeError) else f"{type(e).__name__}: {e}"
            with self._cv:
                self._busy = False
                self.error = error
                if result is not None:
                    self._result, self._fresh = result, True

    def close(self) -> None:
        """Stop after the current job (`join_threads` waits for it)."""
        with self._cv:
            self._closed = True
            self._pending = None
            self._cv.notify()


@dataclass
class LoadedModel:
    model: torch.nn.Module
    record: dict
    path: Path | None
    step: int
    version: int
    vae: Any = None  # the TinyVAE that decodes a latent network's output (None for pixel networks)
    network: int = 0
    """The version of the checkpoint load this network came from: live weights loaded into it keep it (same
    network, same cost per pixel), another checkpoint changes it."""


class ModelSlot:
    """The network on screen. Loads run on a short-lived thread; readers take a consistent snapshot."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current: LoadedModel | None = None
        self._version = 0
        self.loading: Path | None = None

    def load(self, path: Path, on_done: Callable[[LoadedModel | None, str | None], None] | None = None,
             publish: bool = True) -> None:
        """Load a checkpoint in the background; errors become a message, the old model stays. With publish=False the
        new network waits for `publish` (the app shows it in the same frame as the network resolution it wants, so
        no frame is rendered at the old network's resolution: a pixel network at 512² takes many seconds on a CPU)."""
        def run():
            done = None
            try:
                ckpt = load_checkpoint(path)
                vae = None
                if ckpt.kind == TinyVAE.kind:  # a TinyVAE (a run of one followed): the viewport shows its round trip
                    model = vae_from(ckpt).to(DEVICE).requires_grad_(False)
                else:
                    model = ckpt.build_model(DEVICE).eval().requires_grad_(False)
                    render_image(model, torch.tensor(WARMUP_POSE), 16)  # builds any kernel now, not in the first frame
                    if ckpt.record.get("vae"):  # a latent network: the VAE it was trained with, or one sentence
                        vae = vae_for_checkpoint(ckpt.record).to(DEVICE)
                with self._lock:
                    self._version += 1
                    done, err = LoadedModel(model, ckpt.record, resolve(path), ckpt.step, self._version, vae, self._version), None
            except RedcubeError as e:
                err = str(e)
            except Exception as e:  # a damaged file may fail in ways safetensors does not name
                err = f"could not load {path} ({type(e).__name__}: {e}); pick another checkpoint."
            finally:
                if done is None or publish:
                    self.publish(done)
            if on_done:
                on_done(done, err)

        self.loading = Path(path)
        start_thread("redcube-load", run)

    def publish(self, loaded: LoadedModel | None) -> None:
        """Show a loaded network (None: a load that failed, the old one stays); the load has ended."""
        with self._lock:
            if loaded is not None:
                self.current = loaded
            self.loading = None

    def load_weights(self, path: Path, on_done: Callable[[LoadedModel | None], None]) -> None:
        """A training run's live weights (`save_live_weights`) into a copy of the network on screen, off the GUI
        thread: no model build, no optimizer state. A file that does not fit the network on screen (another kind or
        shape) changes nothing and on_done gets None; the run's next full checkpoint then takes over."""
        def run():
            done = None
            try:
                current = self.snapshot()
                state, kind, step = load_live_weights(path)
                if current is not None and kind == current.record["model"]["kind"]:
                    model = copy.deepcopy(current.model)
                    model.load_state_dict(state)
                    with self._lock:
                        self._version += 1
                        done = replace(current, model=model, step=step, version=self._version)
                        self.current = done
            except (RedcubeError, RuntimeError, OSError):  # a mismatched or vanished file: the next checkpoint
                done = None
            on_done(done)

        start_thread("redcube-weights", run)

    def snapshot(self) -> LoadedModel | None:
        with self._lock:
            return self.current


@dataclass
class NetFrame:
    pose: tuple
    res: int
    version: int
    net: np.ndarray
    gt: np.ndarray | None  # same-resolution ground truth, for a still camera or the error view (None while flying)
    err: np.ndarray | None
    psnr: float | None
    ms: float  # inference time of the network alone (latent networks: network and TinyVAE decoding)
    threads: int
    latent: np.ndarray | None = None
    """Latent networks: the first three latent channels as a picture [res/8, res/8, 3] (the blog's latent view)."""
    still: bool = True  # a still camera's full-resolution picture (else a flying frame at the dynamic resolution)
    step: int = 0  # the training step of the weights that drew it
    done_at: float = 0.0  # time.perf_counter() when it finished
    network: int = 0  # `LoadedModel.network` of the weights that drew it


@dataclass
class GTFrame:
    pose: tuple
    size: int
    supersample: int
    rgb: np.ndarray
    ms: float
    still: bool  # the final picture for a still camera (full size, anti-aliased), not the quick one of flying


@dataclass
class NetworkView:
    """Network image + same-res ground truth for the newest (pose, res, weights) request."""

    rasterizer: Any
    slot: ModelSlot
    gain: Callable[[], float] = lambda: 4.0
    threads: int = 2  # torch threads for inference (the Training tab sets them: the cores a training run leaves)
    worker: LatestWorker = field(init=False)

    def __post_init__(self):
        self.worker = LatestWorker("redcube-net", self._render)

    def request(self, pose: tuple, res: int, still: bool = True, truth: bool = True) -> None:
        """Render pose at res; `still`: the full-resolution picture of a still camera (cancelled if the camera
        moves on); `truth`: also the same-resolution ground truth, PSNR and error map."""
        self.worker.submit((pose, res, still, truth))

    def _render(self, req) -> NetFrame | None:
        pose, res, still, truth = req
        loaded = self.slot.snapshot()
        if loaded is None:
            return None
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # set on this thread: the OpenMP setting is per thread
        t = torch.tensor(pose, dtype=torch.float32)
        cancel = self.worker.superseded if still else None  # a flying frame is the newest picture there is: keep it
        t0 = time.perf_counter()
        vae = loaded.vae  # a latent network: latents at res/8 (at least 16²), decoded to 8x that
        rendered = None  # the ground truth this picture is made from (a TinyVAE's), reused for the PSNR
        if isinstance(loaded.model, TinyVAE):  # what a TinyVAE learnt: the ground truth encoded and decoded
            res = max(64, res // 8 * 8)
            rendered, _ = self.rasterizer.render(t.numpy(), res)
            out = decode_latents(loaded.model, encode_frames(loaded.model, rendered[None]))[0]
        else:
            out = render_image(loaded.model, t, max(16, res // 8) if vae is not None else res,
                               chunk=infer_chunk(loaded.model), cancelled=cancel)
        if out is None:
            return None
        latent = None
        if vae is not None:
            with torch.inference_mode():
                net = vae.decode(out[None])[0].cpu().numpy()
                latent = vae.latent_picture(out).cpu().numpy()
            res = net.shape[0]
        else:
            net = out.clamp(0, 1).cpu().numpy()
        ms = (time.perf_counter() - t0) * 1000
        gt = err = score = None
        if truth:
            gt = rendered if rendered is not None else self.rasterizer.render(t.numpy(), res)[0]  # anti-aliased
            err, score = error_map(net, gt, self.gain()), psnr(net, gt)
        return NetFrame(pose, res, loaded.version, net, gt, err, score, ms, self.threads, latent, still, loaded.step,
                        time.perf_counter(), loaded.network)


@dataclass
class GroundTruthView:
    """The displayed ground truth at screen size: aliased while moving, anti-aliased once still."""

    rasterizer: Any
    worker: LatestWorker = field(init=False)

    def __post_init__(self):
        self.worker = LatestWorker("redcube-gt", self._render)

    def request(self, pose: tuple, size: int, supersample: int, still: bool) -> None:
        self.worker.submit((pose, size, supersample, still))

    def _render(self, req) -> GTFrame:
        pose, size, ss, still = req
        t0 = time.perf_counter()
        rgb, _ = self.rasterizer.render(np.asarray(pose, dtype=np.float32), size, supersample=ss)
        return GTFrame(pose, size, ss, rgb, (time.perf_counter() - t0) * 1000, still)
