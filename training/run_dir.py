"""A run directory's guard: a new run never lands on an old one, and one process at a time writes a run.

`claim(out_dir, resume, overwrite)` is called once when a trainer starts. It refuses a directory that
already holds a run unless the user resumes it or asks to overwrite it (the old run is moved aside,
never deleted), and takes the directory's lock: `flock` on `.redcube.lock`, which the kernel drops
when the holder dies, so a lock left by a killed process is taken over without a race. The PID written
into the file is only for the message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import time
from pathlib import Path

from renderer.errors import RedcubeError

LOCK_NAME = ".redcube.lock"
RUN_FILES = ("checkpoint.safetensors", "log.jsonl")
"""A directory holding either of these holds a run."""

_held: dict[Path, "RunLock"] = {}  # locks this process holds, by directory: one trainer after another may reuse them


def holds_run(out_dir: Path) -> bool:
    return any((out_dir / name).exists() for name in RUN_FILES)


def inside(path: str | Path | None, out_dir: Path) -> bool:
    """Whether `path` (a checkpoint to start from) lies in the run directory, so a run there continues itself."""
    return path is not None and Path(path).resolve().is_relative_to(Path(out_dir).resolve())


def check_place(out_dir: Path) -> Path:
    """The run directory can be made and written: a file, a path under a file, /proc or a read-only place is one sentence."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RedcubeError(f"--out {out_dir} is a file, not a directory; pass a directory for the run (new or existing).")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".probe.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        why = "a part of it is a file" if e.errno in (errno.ENOTDIR, errno.EEXIST) else (e.strerror or str(e)).lower()
        raise RedcubeError(f"cannot write the run directory {out_dir} ({why}); pass a writable --out.") from None
    return out_dir


class RunLock:
    """An exclusive lock on a run directory, held until `release()` or the process ends."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir).resolve()
        self.path = self.out_dir / LOCK_NAME
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(self.fd)
                os.close(self.fd)
                raise RedcubeError(f"another redcube process (PID {holder}) is writing the run in {out_dir}; "
                                   "wait for it to end, stop it, or pass another --out.") from None
            if _same_file(self.fd, self.path):
                break
            os.close(self.fd)  # the holder released and removed the file between our open and flock: open it anew
        # the lock is ours: a PID left in the file was a dead process's (stale lock taken over)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        _held[self.out_dir] = self

    def release(self) -> None:
        if self.fd is not None:
            _held.pop(self.out_dir, None)
            self.path.unlink(missing_ok=True)  # before the flock drops: a newcomer then finds no file or a fresh one
            os.close(self.fd)
            self.fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode().strip() or "unknown"
    except OSError:
        return "unknown"


def lock(out_dir: Path) -> RunLock:
    """This process's lock on out_dir (taken now, or the one it already holds)."""
    held = _held.get(Path(out_dir).resolve())
    return held if held is not None and held.fd is not None else RunLock(out_dir)


def move_aside(out_dir: Path) -> Path:
    """Rename an old run to `<name>.old-<time>` beside it (never deleted); returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        aside = out_dir.with_name(f"{out_dir.name}.old-{stamp}" + (f"-{n}" if n else ""))
        if not aside.exists():
            out_dir.rename(aside)
            return aside
    raise RedcubeError(f"cannot move the old run in {out_dir} aside (too many .old copies); remove some of them.")


def remove_stale_temps(out_dir: Path) -> None:
    """Temp files a killed predecessor left mid-write (`.NAME.XXXX.tmp`): safe to remove once we hold the lock."""
    for p in Path(out_dir).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


def claim(out_dir: str | Path, resume: bool = False, overwrite: bool = False) -> RunLock:
    """Make out_dir ready for a run and lock it (see the module docstring). Returns the held lock."""
    out_dir = check_place(Path(out_dir))
    run_lock = lock(out_dir)
    if holds_run(out_dir) and not resume:
        if not overwrite:
            run_lock.release()
            raise RedcubeError(f"{out_dir} already holds a run; pass --resume to continue it, --overwrite to move it "
                               "aside and start afresh, or another --out.")
        run_lock.release()
        aside = move_aside(out_dir)
        print(f"redcube: the old run in {out_dir} was moved to {aside}", file=sys.stderr, flush=True)  # stdout is for results
        out_dir.mkdir(parents=True)
        run_lock = lock(out_dir)
    remove_stale_temps(out_dir)
    return run_lock
