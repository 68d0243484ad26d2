"""The streaming producer pool, with real producer processes and their own EGL rasterizers.

One stream with two producers runs once for the module; the tests read what it delivered and what it
left behind after `close()`. Each buffer's poses are matched to the exact draws of one producer's
seeded generator, which pins down where every pose came from (and that none is a held-out pose).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import shared_memory
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from renderer.camera import Camera, sample_poses
from renderer.errors import RedcubeError
from training.data import FIXED_SEED_OFFSET, HELDOUT_SEED_OFFSET, heldout_poses
from training.stream import FrameStream, StreamConfig, producer_seed

REPO = Path(__file__).resolve().parents[1]

RES = 16
SEED = 5
CFG = StreamConfig(pool_size=3, frames_per_buffer=4, refresh_hz=10.0, producers=2)
DRAWS = 400  # buffers per producer we can recognise (10 Hz for well under a minute)


def draws(scene, seed: int, n: int = DRAWS) -> np.ndarray:
    """The first n pose buffers [n, F, 5] a producer seeded with `seed` renders."""
    gen = torch.Generator().manual_seed(seed)
    return np.stack([sample_poses(scene, CFG.frames_per_buffer, gen).numpy() for _ in range(n)])


def source(poses: np.ndarray, tables: list[np.ndarray]) -> list[tuple[int, int]]:
    """(producer, draw index) of every table entry equal to this buffer's poses."""
    return [(p, int(i)) for p, t in enumerate(tables) for i in np.flatnonzero((t == poses).all(axis=(1, 2)))]


def shm_exists(name: str) -> bool:
    try:
        m = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return False
    m.close()
    return True


@pytest.fixture(scope="module")
def streamed(scene):
    """Run a two-producer stream until both producers have delivered, then close it."""
    stream = FrameStream(scene, RES, CFG, seed=SEED)
    tables = [draws(scene, s) for s in stream.seeds]
    buffers, origins = [], []
    stream.start()
    try:
        names, procs = stream._pool.names, list(stream._procs)
        alive_before_close = [p.is_alive() for p in procs]
        deadline = time.monotonic() + 120
        while len(buffers) < 8 or len({o[0][0] for o in origins if o}) < 2:
            assert time.monotonic() < deadline, "the producers did not both deliver within two minutes"
            got = stream.latest(wait=60)
            assert got is not None, "no buffer within a minute"
            buffers.append(got)
            origins.append(source(got[1], tables))
    finally:
        stream.close()
    return SimpleNamespace(stream=stream, buffers=buffers, origins=origins, tables=tables, names=names,
                           procs=procs, alive_before_close=alive_before_close)


def test_buffers_arrive_with_increasing_sequence_numbers(streamed):
    seqs = [b[0] for b in streamed.buffers]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), seqs
    for seq, poses, rgb in streamed.buffers:
        assert poses.shape == (CFG.frames_per_buffer, 5) and poses.dtype == np.float32
        assert rgb.shape == (CFG.frames_per_buffer, RES, RES, 3) and rgb.dtype == np.float32


def test_consecutive_buffers_hold_fresh_distinct_poses(streamed):
    all_poses = np.concatenate([b[1] for b in streamed.buffers])
    assert len(np.unique(all_poses, axis=0)) == len(all_poses)  # no pose delivered twice
    for (_, p0, i0), (_, p1, i1) in zip(streamed.buffers, streamed.buffers[1:]):
        assert not np.array_equal(p0, p1) and not np.array_equal(i0, i1)


def test_poses_lie_inside_the_scene_bounds(streamed, scene):
    poses = np.concatenate([b[1] for b in streamed.buffers])
    for p in poses:
        assert Camera.from_pose(p).problems(scene) == []
    # They spread over the whole room and every heading, not one corner.
    assert np.ptp(poses[:, 0]) > 1.0 and np.ptp(poses[:, 2]) > 1.0 and np.ptp(poses[:, 3]) > 1.0


def test_images_are_the_renders_of_their_own_poses(streamed, rasterizer):
    """No torn or mismatched buffer: every image is the rasterizer's picture of the pose beside it."""
    for _, poses, rgb in streamed.buffers:
        expected, _ = rasterizer.render(poses, RES)
        np.testing.assert_allclose(rgb, expected, atol=2e-3)
        # And not just any picture of the scene: the neighbour frame's render does not match.
        assert np.abs(rgb[0] - expected[1]).max() > 0.05


def test_each_buffer_comes_from_exactly_one_producer_seed_and_both_contribute(streamed):
    assert all(len(o) == 1 for o in streamed.origins), streamed.origins
    producers = {o[0][0] for o in streamed.origins}
    assert producers == {0, 1}
    # Each producer's draws are consumed in order: what arrives from one producer moves forward.
    for p in producers:
        idx = [o[0][1] for o in streamed.origins if o[0][0] == p]
        assert idx == sorted(idx) and len(set(idx)) == len(idx)


def test_producers_and_ranks_get_distinct_seeds_and_disjoint_poses(scene):
    seeds = {}
    for rank in range(3):
        s = FrameStream(scene, RES, StreamConfig(producers=2), seed=SEED, rank=rank).seeds
        assert s == [producer_seed(SEED, i, rank) for i in range(2)]
        seeds.update({(rank, i): v for i, v in enumerate(s)})
    assert len(set(seeds.values())) == len(seeds)
    assert not {SEED + HELDOUT_SEED_OFFSET, SEED + FIXED_SEED_OFFSET} & set(seeds.values())
    poses = np.concatenate([draws(scene, s, 5).reshape(-1, 5) for s in seeds.values()])
    assert len(np.unique(poses, axis=0)) == len(poses)


def test_no_heldout_pose_reaches_the_stream(streamed, scene):
    held = heldout_poses(scene, 256, SEED).numpy()
    delivered = np.concatenate([b[1] for b in streamed.buffers])
    # Closest delivered pose to any held-out pose is far from equal.
    gap = np.abs(delivered[:, None, :] - held[None, :, :]).max(axis=2).min()
    assert gap > 1e-4
    # The held-out generator's own draws are not the producers' draws either.
    assert not any(source(held[i:i + CFG.frames_per_buffer], streamed.tables)
                   for i in range(0, 256, CFG.frames_per_buffer))


def test_close_stops_the_producers_and_frees_the_shared_memory(streamed):
    assert all(streamed.alive_before_close)
    assert not any(p.is_alive() for p in streamed.procs)
    for name in streamed.names:
        assert not os.path.exists(f"/dev/shm/{name.lstrip('/')}")
        assert not shm_exists(name)
    streamed.stream.close()  # a second close is harmless


def test_a_producer_that_dies_is_one_clear_error(scene, one_sentence):
    stream = FrameStream(scene, RES, StreamConfig(pool_size=2, frames_per_buffer=2, refresh_hz=5.0), seed=1).start()
    try:
        assert stream.latest(wait=120) is not None
        (proc,) = stream._procs
        with stream._lock:  # kill it outside its slot-writing critical section
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(30)
        assert not proc.is_alive()
        with pytest.raises(RedcubeError) as e:
            for _ in range(3):  # a buffer written just before the kill may still be unread
                stream.latest(wait=1.0)
        assert "producer" in str(e.value)
        one_sentence(str(e.value))
        names = stream._pool.names
    finally:
        # close() must not hang on the dead producer (it once did: Event.set() waited for it).
        closer = threading.Thread(target=stream.close, daemon=True)
        closer.start()
        closer.join(60)
    assert not closer.is_alive(), "close() hangs after a producer died"
    assert not any(shm_exists(n) for n in names)


def test_a_producer_error_carries_its_reason(scene, one_sentence):
    stream = FrameStream(scene, 8, StreamConfig(pool_size=2, frames_per_buffer=1), seed=2).start()
    try:
        with pytest.raises(RedcubeError) as e:
            stream.latest(wait=120)
    finally:
        stream.close()
    assert "producer failed" in str(e.value) and "resolution 8" in str(e.value)
    one_sentence(str(e.value))


ORPHAN_SCRIPT = """
import os
from renderer.scene import Scene
from training.stream import FrameStream, StreamConfig
if __name__ == "__main__":
    s = FrameStream(Scene(), 16, StreamConfig(pool_size=2, frames_per_buffer=2, refresh_hz=5.0)).start()
    assert s.latest(wait=120) is not None
    print(" ".join(str(p.pid) for p in s._procs), flush=True)
    os.kill(os.getpid(), 9)  # the trainer dies without closing its stream
"""


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[:2] == ["State:", "Z"] for line in f)  # a zombie has exited
    except FileNotFoundError:
        return True


def test_producers_exit_when_their_trainer_is_killed():
    r = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    pids = [int(p) for p in r.stdout.split()]
    assert len(pids) == 1
    deadline = time.monotonic() + 30
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [p for p in pids if not gone(p)]
    for p in alive:  # don't leave an orphan behind when the test fails
        os.kill(p, signal.SIGKILL)
    assert not alive, "an orphaned producer kept running after its trainer died"
