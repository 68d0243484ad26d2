"""Shared memory and semaphores a killed run leaves in /dev/shm, reclaimed by the next run.

A stream's owner writes the names of its `psm_*` segments and `sem.mp-*` semaphores to a small file
named by its PID (`register`) and removes it when it closes them (`forget`). A group kill (`kill -9`
of the trainer, its producers and multiprocessing's resource tracker, or the OOM killer) leaves the
file behind; `reclaim()`, called when the next stream starts, unlinks what a dead PID's file lists.
"""

from __future__ import annotations

import _multiprocessing
import json
import os
import tempfile
from pathlib import Path

from multiprocessing import shared_memory


def registry_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"redcube-ipc-{os.getuid()}"


def sem_names(*objs) -> list[str]:
    """Names of the POSIX semaphores behind multiprocessing Locks, Queues and Events."""
    names = []
    for o in objs:
        inner = [o] + [getattr(o, a, None) for a in ("_rlock", "_wlock", "_sem", "_lock", "_cond")]
        for x in inner:
            name = getattr(getattr(x, "_semlock", None), "name", None)
            if name and name not in names:
                names.append(name)
    return names


def register(shm: list[str], sems: list[str]) -> Path:
    """Remember this process's IPC names (added to what it registered before)."""
    path = registry_dir() / f"{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = _read(path) or {"shm": [], "sem": []}
    record = {"shm": old["shm"] + shm, "sem": old["sem"] + sems}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    return path


def forget(shm: list[str], sems: list[str]) -> None:
    """These names were closed and unlinked properly: drop them from this process's file."""
    path = registry_dir() / f"{os.getpid()}.json"
    old = _read(path)
    if old is None:
        return
    left = {"shm": [n for n in old["shm"] if n not in shm], "sem": [n for n in old["sem"] if n not in sems]}
    if left["shm"] or left["sem"]:
        path.write_text(json.dumps(left))
    else:
        path.unlink(missing_ok=True)


def reclaim() -> int:
    """Unlink the segments and semaphores of dead processes; returns how many were reclaimed."""
    n = 0
    for path in registry_dir().glob("*.json"):
        pid = int(path.stem) if path.stem.isdigit() else None
        if pid is None or pid_alive(pid):
            continue
        record = _read(path) or {"shm": [], "sem": []}
        n += sum(_unlink_shm(name) for name in record["shm"]) + sum(_unlink_sem(name) for name in record["sem"])
        path.unlink(missing_ok=True)
    return n


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process with that PID
    return True


def _unlink_shm(name: str) -> bool:
    try:
        seg = shared_memory.SharedMemory(name=name)
    except (FileNotFoundError, OSError, ValueError):
        return False
    seg.close()
    seg.unlink()  # also unregisters it from this process's resource tracker
    return True


def _unlink_sem(name: str) -> bool:
    try:
        _multiprocessing.sem_unlink(name)
    except (FileNotFoundError, OSError):
        return False
    return True


def _read(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
        return d if isinstance(d, dict) and isinstance(d.get("shm"), list) and isinstance(d.get("sem"), list) else None
    except (OSError, ValueError):
        return None
