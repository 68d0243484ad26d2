"""Streaming ground truth, as in the red-cube blog: producer processes keep a pool of shared-memory
buffers filled with freshly rendered random poses; the trainer pulls the newest full buffer.

Each producer owns a `Rasterizer` (its own EGL context) and a seeded pose generator distinct from
every other producer's and from the held-out set's. Slots are written and read under one lock, so a
reader never sees a half-written buffer; a producer always overwrites the oldest slot.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np
import torch

from renderer.camera import POSE_DIM, sample_poses
from renderer.errors import RedcubeError
from renderer.scene import Scene
from training import ipc_registry


@dataclass
class StreamConfig:
    pool_size: int = 4
    """Shared-memory buffers in the pool."""
    frames_per_buffer: int = 32
    """Random poses rendered into each buffer."""
    refresh_hz: float = 1.0
    """Buffers per second each producer delivers at most (0: as fast as it can render). At 32² one
    buffer a second is about one epoch per buffer for the trainer, the blog's smooth regime, and costs
    the producer a few percent of a core."""
    producers: int = 1
    """Producer processes."""

    def __post_init__(self):
        if self.pool_size < 2 or self.frames_per_buffer < 1 or self.producers < 1 or self.refresh_hz < 0:
            raise RedcubeError("stream needs pool_size >= 2, frames_per_buffer >= 1, producers >= 1 and refresh_hz >= 0; fix the stream config.")


def producer_seed(seed: int, producer: int, rank: int = 0) -> int:
    """Distinct pose-stream seed per (run seed, rank, producer); never equal to the held-out seed."""
    return (seed * 1_000_003 + rank * 1_009 + producer + 1) % (2 ** 63)


class _Pool:
    """Shared-memory slots: poses [S, F, 5], frames [S, F, res, res, C] (rgb, or TinyVAE latents), a sequence number per slot."""

    def __init__(self, pool_size: int, frames: int, res: int, names: tuple[str, str] | None = None, channels: int = 3):
        shapes = ((pool_size, frames, POSE_DIM), (pool_size, frames, res, res, channels))
        nbytes = [int(np.prod(s)) * 4 for s in shapes]
        if names is None:
            self.shm = [shared_memory.SharedMemory(create=True, size=n) for n in nbytes]
        else:
            self.shm = [shared_memory.SharedMemory(name=n) for n in names]
        self.poses, self.rgb = (np.ndarray(s, dtype=np.float32, buffer=m.buf) for s, m in zip(shapes, self.shm))

    @property
    def names(self) -> tuple[str, str]:
        return self.shm[0].name, self.shm[1].name

    def close(self, unlink: bool = False) -> None:
        del self.poses, self.rgb
        for m in self.shm:
            m.close()
            if unlink:
                m.unlink()


def _produce(scene_dict, res, cfg: StreamConfig, seed, names, seqs, counter, lock, stop, errors, vae=None) -> None:
    """Producer process body: render random poses (and encode them to latents when `vae` names a TinyVAE),
    copy them into the oldest slot, repeat.

    Stops when asked, or when its trainer has gone (killed without closing the stream)."""
    parent = os.getppid()
    # One rasterizer thread and one torch thread: the trainer owns the cores (Mesa reads this at context creation).
    os.environ["LP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    from renderer.rasterizer import Rasterizer

    gen = torch.Generator().manual_seed(seed)
    pool = None
    try:
        from training.vae import encode_frames, load_vae

        encoder = load_vae(vae) if vae else None
        side, channels = latent_shape(res, vae)
        pool = _Pool(cfg.pool_size, cfg.frames_per_buffer, side, names, channels)
        with Rasterizer(Scene.from_dict(scene_dict)) as rast:
            while not stop.value and os.getppid() == parent:
                t0 = time.perf_counter()
                poses = sample_poses(rast.scene, cfg.frames_per_buffer, gen).numpy()
                rgb, _ = rast.render(poses, res)
                if encoder is not None:
                    rgb = encode_frames(encoder, rgb).numpy()
                with lock:
                    slot = int(np.argmin(seqs[:]))
                    counter.value += 1
                    pool.poses[slot], pool.rgb[slot] = poses, rgb
                    seqs[slot] = counter.value
                if cfg.refresh_hz > 0:
                    until = t0 + 1.0 / cfg.refresh_hz
                    while not stop.value and time.perf_counter() < until:
                        time.sleep(min(0.02, max(0.0, until - time.perf_counter())))
    except Exception as e:
        errors.put(str(e))
    finally:
        if pool is not None:
            pool.close()


class _signals_ignored:
    """SIGINT and SIGTERM ignored while a child is spawned: the ignored disposition survives exec, so the child's
    Python starts with them ignored (its own start-up, torch's import included, cannot be cut short)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
        self.old = [signal.signal(s, signal.SIG_IGN) for s in self.SIGNALS] if main else []

    def __exit__(self, *exc):
        for s, h in zip(self.SIGNALS, self.old):
            signal.signal(s, h)


def latent_shape(res: int, vae: str | None) -> tuple[int, int]:
    """(side, channels) of what the stream carries: res² RGB, or (res/8)² TinyVAE latents."""
    from renderer.tinyvae import DOWNSCALE

    return (res // DOWNSCALE, 4) if vae else (res, 3)


class FrameStream:
    """Trainer side of the pool. `latest()` returns the newest full buffer not yet seen, or None."""

    def __init__(self, scene: Scene, res: int, config: StreamConfig | None = None, seed: int = 0, rank: int = 0,
                 vae: str | None = None):
        """`vae`: a TinyVAE source (training.vae.load_vae); the producers then deliver latents of the res² renders."""
        self.scene, self.res, self.config, self.vae = scene, res, config or StreamConfig(), vae
        self.seeds = [producer_seed(seed, i, rank) for i in range(self.config.producers)]
        self._ctx = mp.get_context("spawn")
        self._procs: list = []
        self._pool: _Pool | None = None
        self._ipc: tuple[list[str], list[str]] = ([], [])
        self.last_seq = 0

    def start(self) -> "FrameStream":
        cfg, ctx = self.config, self._ctx
        ipc_registry.reclaim()  # what a group-killed run left in /dev/shm
        side, channels = latent_shape(self.res, self.vae)
        self._pool = _Pool(cfg.pool_size, cfg.frames_per_buffer, side, channels=channels)
        self._seqs = ctx.Array("q", cfg.pool_size, lock=False)
        self._counter = ctx.Value("q", 0, lock=False)
        # The stop signal is a plain shared flag, not an Event: Event.set() waits for every process
        # sleeping in Event.wait() to wake up, so a producer killed while waiting would hang close().
        self._stop = ctx.Value("b", 0, lock=False)
        self._lock, self._errors = ctx.Lock(), ctx.Queue()
        self._ipc = (list(self._pool.names), ipc_registry.sem_names(self._lock, self._errors))
        ipc_registry.register(*self._ipc)
        # Producers ignore SIGTERM, so multiprocessing's exit handler (terminate, then join) would wait on them
        # forever: close first (atexit runs this before it, as it is registered later).
        atexit.register(self.close)
        try:
            for s in self.seeds:
                p = ctx.Process(target=_produce, daemon=True, name="redcube-producer", args=(
                    self.scene.to_dict(), self.res, cfg, s, self._pool.names, self._seqs, self._counter,
                    self._lock, self._stop, self._errors, self.vae))
                with _signals_ignored():  # from birth: a Ctrl-C or SIGTERM is the trainer's to handle, not its producers'
                    p.start()
                self._procs.append(p)
        except BaseException:
            self.close()
            raise
        return self

    def latest(self, wait: float = 0.0) -> tuple[int, np.ndarray, np.ndarray] | None:
        """(sequence number, poses [F, 5], rgb [F, res, res, 3] or latents [F, res/8, res/8, 4]) copies of the newest unseen buffer.

        Waits up to `wait` seconds for one; raises if every producer has died.
        """
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                seqs = np.frombuffer(self._seqs, dtype=np.int64)
                slot = int(np.argmax(seqs))
                if seqs[slot] > self.last_seq:
                    self.last_seq = int(seqs[slot])
                    return self.last_seq, self._pool.poses[slot].copy(), self._pool.rgb[slot].copy()
            self._check_alive()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def _check_alive(self) -> None:
        if self._procs and not any(p.is_alive() for p in self._procs):
            msg = self._errors.get() if not self._errors.empty() else "exited unexpectedly"
            raise RedcubeError(f"the data producer failed ({msg}); check that headless OpenGL works with `redcube render`.")

    def close(self) -> None:
        if self._pool is None:
            return
        self._stop.value = 1
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()  # producers ignore SIGTERM
        self._procs.clear()
        self._pool.close(unlink=True)
        self._pool = None
        ipc_registry.forget(*self._ipc)
        atexit.unregister(self.close)
