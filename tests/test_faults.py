"""Issue 16's fault cases on real `redcube train` processes and real signals: a stop of any kind ends with a
checkpoint, a run directory is never written by two processes nor silently replaced, a full disk keeps the
previous checkpoint, and a group kill's temp files and shared memory are reclaimed by the next run.

Every run is tiny (res 16, a width-32 posemlp, one thread). The default suite keeps SIGTERM, the lock and the
real full disk; the Ctrl-C, group-kill and file-size-limit cases are marked slow (each is a process start or
two on a loaded machine).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import main
from conftest import digest
from training import ipc_registry
from training.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = ["--batch-size", "256", "--res", "16", "--heldout", "2", "--set", "width=32", "--threads", "1", "--quiet"]
FIXED = ["--data", "fixed", "--fixed-samples", "2048"]


def train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "train", *TINY, "--out", str(out), *extra]


def start(cmd: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, **kw)


def wait_for(what, proc: subprocess.Popen, timeout: float = 180.0, why: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"timed out waiting: {why}"
        time.sleep(0.1)


def training(out: Path) -> bool:
    log = out / "log.jsonl"
    return log.exists() and '"event": "train"' in log.read_text()


def last_error(err: str, one_sentence) -> str:
    """The process's one error line (a progress line may come before it), checked to be one sentence."""
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("redcube: error: "), err
    message = line.removeprefix("redcube: error: ")
    one_sentence(message)
    return message


def test_sigterm_checkpoints_the_lock_holds_and_an_old_run_is_never_replaced(tmp_path, one_sentence):
    out = tmp_path / "run"
    proc = start(train_cmd(out, *FIXED, "--minutes", "30", "--checkpoint-every", "3600"))
    try:
        # 1. the first checkpoint comes about 10 s into training (the periodic interval is an hour here)
        wait_for(lambda: (out / "checkpoint.safetensors").exists(), proc, why="the first checkpoint")
        assert load_checkpoint(out).step > 0
        # 2. a second process cannot write the same run while the first holds it
        second = run(train_cmd(out, *FIXED, "--steps", "5", "--resume"))
        assert second.returncode == 2
        assert f"PID {proc.pid}" in last_error(second.stderr, one_sentence)
        # 3. SIGTERM (a scheduler, `timeout`, a logout) ends the run with a final checkpoint
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert "stopping: writing a final checkpoint (SIGTERM)" in stderr
    final = load_checkpoint(out)
    assert final.step == json.loads(stdout)["step"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.json", "checkpoint.safetensors", "log.jsonl"]  # lock gone
    # 4. a new run into the finished one is refused, naming both ways on; nothing changes on disk (in-process: quicker)
    before = digest(out / "checkpoint.safetensors")
    args = train_cmd(out, *FIXED, "--steps", "3")[3:]
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(args) == 2
    message = last_error(err.getvalue(), one_sentence)
    assert "--resume" in message and "--overwrite" in message
    assert digest(out / "checkpoint.safetensors") == before
    # 5. --overwrite moves the old run aside, whole, and starts afresh
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*args, "--overwrite"]) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and digest(aside[0] / "checkpoint.safetensors") == before
    assert load_checkpoint(out).step == 3
    assert all(json.loads(line)["step"] <= 3 for line in (out / "log.jsonl").read_text().splitlines())  # logs not mixed


@pytest.mark.slow
def test_ctrl_c_while_producers_start_is_a_clean_stop(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: producers still starting must not die of it
    (that used to end the run blaming headless OpenGL)."""
    out = tmp_path / "run"
    proc = start(train_cmd(out, "--minutes", "30"), start_new_session=True)
    try:
        def producers_spawning() -> bool:
            kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            return len(kids) >= 2  # multiprocessing's resource tracker and the first producer
        wait_for(producers_spawning, proc, why="the producers")
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    assert "OpenGL" not in stderr and "Traceback" not in stderr, stderr
    assert (out / "checkpoint.safetensors").exists()


@pytest.mark.slow
def test_a_group_kill_leaves_nothing_the_next_run_does_not_reclaim(tmp_path):
    """kill -9 of the trainer, its producer and the resource tracker together (the OOM killer, a group kill):
    the shared memory and semaphores stay in /dev/shm until the next run starts; a checkpoint write cut short
    leaves its temp file until the run is resumed."""
    out = tmp_path / "run"
    proc = start(train_cmd(out, "--minutes", "30"), start_new_session=True)
    try:
        wait_for(lambda: (out / "checkpoint.safetensors").exists(), proc, why="the first checkpoint")
        record = json.loads((ipc_registry.registry_dir() / f"{proc.pid}.json").read_text())
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    time.sleep(0.5)
    shm = [Path("/dev/shm") / name.lstrip("/") for name in record["shm"]]
    sems = [Path("/dev/shm") / f"sem.{name.lstrip('/')}" for name in record["sem"]]
    assert shm and sems and all(p.exists() for p in shm + sems)  # the fault: nobody was left to unlink them
    cut_short = out / ".checkpoint.safetensors.k1ll3d.tmp"  # what a kill during a checkpoint write leaves
    cut_short.write_bytes(b"\0" * 4096)
    resumed = run(train_cmd(out, "--minutes", "30", "--steps", "1", "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert not any(p.exists() for p in shm + sems)
    assert not (ipc_registry.registry_dir() / f"{proc.pid}.json").exists()
    assert not cut_short.exists()


@pytest.mark.slow
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, one_sentence):
    """A real write failure: the file-size limit (RLIMIT_FSIZE) makes every write past it fail with EFBIG, as a
    full disk fails with ENOSPC. The resumed run trains, cannot save, says so in one sentence, and the previous
    checkpoint stays whole."""
    out = tmp_path / "run"
    first = run(train_cmd(out, *FIXED, "--steps", "2"))
    assert first.returncode == 0, first.stderr
    ckpt = out / "checkpoint.safetensors"
    before, size = digest(ckpt), ckpt.stat().st_size

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.RLIM_INFINITY))

    full = run(train_cmd(out, *FIXED, "--steps", "12", "--resume"), preexec_fn=small_files)
    assert full.returncode == 2
    message = last_error(full.stderr, one_sentence)
    assert "File too large" in message and "previous checkpoint (step 2) is kept" in message and str(ckpt) in message
    assert digest(ckpt) == before and load_checkpoint(out).step == 2
    assert not list(out.glob(".*.tmp"))


def private_mounts_work() -> bool:
    """Whether this machine lets a test mount a tmpfs in its own mount namespace (root, or user namespaces)."""
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not private_mounts_work(), reason="needs a private tmpfs mount (unshare -rm)")
def test_a_disk_that_fills_during_training_keeps_the_previous_checkpoint(tmp_path, one_sentence):
    """A real full disk: a 2 MB tmpfs fills up while the run trains; SIGTERM's final save fails with ENOSPC and
    says so in one sentence, the previous checkpoint stays whole; then, read-only, a resume is refused up front."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    driver = [sys.executable, str(Path(__file__).with_name("fill_disk_driver.py")), str(mnt),
              json.dumps([sys.executable, "-m", "app.cli", "train", *TINY, *FIXED])]
    p = subprocess.run(["unshare", "-rm", *driver], cwd=REPO, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["full_rc"] == 2
    message = last_error(r["full_err"], one_sentence)
    assert "No space left on device" in message and f"previous checkpoint (step {r['first_step']}) is kept" in message
    assert r["kept_step"] == r["first_step"] and r["tmp_left"] == []
    assert r["ro_rc"] == 2 and "read-only file system" in last_error(r["ro_err"], one_sentence)
