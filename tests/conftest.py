"""Shared fixtures: one EGL rasterizer for the whole session, seeded RNGs, small file helpers.

Nothing here mocks moderngl or torch: the rasterizer fixture is the real headless renderer.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.rasterizer import Rasterizer
from renderer.scene import Scene

REPO = Path(__file__).resolve().parents[1]


def torchrun(args: list[str], cwd: Path, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone` with nproc real ranks (gloo on the CPU), this checkout on their PYTHONPATH."""
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", str(nproc), *args]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def scene() -> Scene:
    return Scene()


@pytest.fixture(scope="session")
def rasterizer(scene):
    """The real moderngl/EGL rasterizer on its own thread, shared by every test and closed at the end."""
    r = Rasterizer(scene)
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same RNG state; tests that need randomness also pass explicit generators."""
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def write_file(tmp_path):
    """write_file(name, text_or_bytes) -> Path under this test's tmp_path."""

    def write(name: str, content: str | bytes) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p

    return write


def digest(path: Path) -> str:
    """A file's SHA-256: to show that something on disk did not change."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_one_sentence(message: str) -> None:
    """A user-facing error: one line, one sentence ending in a full stop (DESIGN.md, "Bad input")."""
    assert message, "empty error message"
    assert "\n" not in message, f"error message spans several lines: {message!r}"
    assert message.rstrip().endswith("."), f"error message does not end a sentence: {message!r}"
    # A second sentence would start after ". " with a capital letter.
    assert not re.search(r"[.!?]\s+[A-Z]", message), f"error message holds more than one sentence: {message!r}"


@pytest.fixture
def one_sentence():
    return check_one_sentence


def check_error_line(err: str) -> str:
    """A refusal on stderr: one line, "redcube: error: " and one sentence (returned)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("redcube: error: "), err
    message = lines[0].removeprefix("redcube: error: ")
    check_one_sentence(message)
    return message


@pytest.fixture
def error_line():
    return check_error_line


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests (the 2-core machine is shared; two threads contending ran 10x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def load_now():
    """The app's ModelSlot's background load of a checkpoint, waited for."""
    def load(slot, path):
        got = queue.SimpleQueue()
        slot.load(path, lambda loaded, err: got.put((loaded, err)))
        loaded, err = got.get(timeout=120)
        assert err is None, err
        return loaded
    return load


@pytest.fixture(scope="session")
def tiny_fields(tmp_path_factory) -> Path:
    """4 objects x 2 rotations, barely fitted: a real NGP field data set, made in a second (read only)."""
    from training.ngp_dataset import DatasetConfig, generate
    from training.ngp_fields import FitConfig

    data = tmp_path_factory.mktemp("fields") / "ds"
    config = DatasetConfig(objects=4, rotations=2, shard_size=8, fit=FitConfig(steps=2, points=64))
    generate(config, data, log=lambda s: None)
    return data


@pytest.fixture(scope="session")
def tiny_latent(tmp_path_factory, scene) -> Path:
    """A latent checkpoint laid out as `redcube train --latent --res 512` writes one, untrained: a small posemlp with
    4 output channels and the random TinyVAE (saved as a redcube checkpoint) it records (the mechanics, not the quality)."""
    from renderer.models import build_model
    from renderer.tinyvae import TinyVAE
    from training.checkpoint import save_checkpoint
    from training.vae import load_vae, save_vae

    d = tmp_path_factory.mktemp("latent")
    torch.manual_seed(0)
    vae = save_vae(d / "vae.safetensors", TinyVAE(), scene)
    model = build_model("posemlp", {"width": 32, "layers": 2, "out_channels": 4}, scene)
    record = {"vae": {**load_vae(vae).identity(), "source": str(vae)}, "latent_res": 64}
    return save_checkpoint(d / "latent.safetensors", model, scene, step=5, train={"res": 512}, extra=record)
