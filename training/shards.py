"""Resumable safetensors shard sets, shared by the NGP field data set and the pre-encoded latents.

A shard set is a directory: a JSON manifest and `shard_00000.safetensors`, ... Each shard holds its tensors and a
JSON record in its metadata (key `redcube`, with a `format` naming the kind of set). Shards are written atomically,
so a shard on disk is either whole or the leftover of a copy cut short, which `read_shard` names in one sentence.
Work fans out over spawned worker processes on one machine and over ranks under torchrun: rank r of W takes shards
r, r + W, r + 2W, ...
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from renderer.errors import RedcubeError
from training.checkpoint import atomic_write
from training.distributed import Dist


class PartialShard(RedcubeError):
    """A shard that is missing, empty or cut short: a rerun regenerates it."""


def derived_seed(*parts: int) -> int:
    """A seed of its own for one item of a set (a field, a frame), from the set's seed and the item's indices."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


class Sharded:
    """A set's config: `n_items` items (a property of the config) in shards of `shard_size` consecutive ones."""

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_items / self.shard_size)

    def shard_items(self, j: int) -> range:
        """The item indices of shard j (the last shard is the shorter one)."""
        return range(j * self.shard_size, min((j + 1) * self.shard_size, self.n_items))


def shard_path(out: Path, j: int) -> Path:
    return Path(out) / f"shard_{j:05d}.safetensors"


def write_shard(path: Path, tensors: dict[str, torch.Tensor], record: dict) -> None:
    """Tensors and their JSON record, written atomically (a crash leaves only a hidden .tmp file)."""
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"redcube": json.dumps(record)}))


def read_shard(path: Path, fmt: str, check: Callable[[dict, dict], bool], regenerate: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, record) of one shard of format `fmt`, or one sentence when it is missing, empty, partial or not such a
    shard (`check(tensors, record)` is the format's own test that it is whole); `regenerate` ends the sentence."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise PartialShard(f"shard {path} is {'missing' if not path.exists() else 'empty'}; {regenerate}.")
    try:
        with safe_open(str(path), framework="pt") as f:
            record = json.loads((f.metadata() or {})["redcube"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        assert record["format"] == fmt and check(tensors, record)
    except Exception:
        raise PartialShard(f"shard {path} is partial or corrupt (it does not read back as a whole {fmt}); {regenerate}.") from None
    return tensors, record


def rows_match(tensors: dict[str, torch.Tensor], n: int) -> bool:
    """Every tensor of a shard has n rows."""
    return all(len(t) == n for t in tensors.values())


def my_shards(n_shards: int, dist: Dist) -> list[int]:
    """This rank's shards: r, r + W, ...; one sentence when there are fewer shards than ranks."""
    if dist.world > n_shards:
        raise RedcubeError(f"the data set's {n_shards} shard(s) cannot be split over {dist.world} ranks; "
                           "lower --shard-size or launch fewer ranks.")
    return list(range(dist.rank, n_shards, dist.world))


def shards_to_make(out: Path, shards: Iterable[int], read: Callable[[Path], dict], regenerate: str,
                   log: Callable[[str], None]) -> list[int]:
    """The shards among `shards` that are missing, or present but empty or partial (said in one line each).
    `read(path)` reads a shard back and returns its record; it may also refuse one made with other settings."""
    todo = []
    for j in shards:
        path = shard_path(out, j)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run killed mid-write; only this rank makes shard j
            stale.unlink(missing_ok=True)
        if not path.exists():
            todo.append(j)
            continue
        try:
            read(path)
        except PartialShard as e:
            log(str(e).replace(regenerate, "regenerating it"))
            todo.append(j)
    return todo


def run_tasks(make: Callable, task: Callable, args: list[tuple], workers: int) -> Iterator[dict]:
    """Results of make(*a) for each a in `args`, as they finish: in this process for one worker, else in a spawned
    pool running `task(a)` (a module-level function, so a spawned process can import it)."""
    if workers == 1 or len(args) <= 1:
        for a in args:
            yield make(*a)
        return
    with mp.get_context("spawn").Pool(min(workers, len(args))) as pool:
        yield from pool.imap_unordered(task, args)


def read_manifest(out: Path, name: str, what: str) -> dict | None:
    """The manifest in `out`, None when there is none; one sentence when it is not JSON."""
    path = Path(out) / name
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise RedcubeError(f"{path} is not readable JSON; delete it or pass another {what}.") from None


def write_manifest(out: Path, name: str, record: dict) -> None:
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(Path(out) / name, lambda tmp: Path(tmp).write_text(text))


def differs(old: dict, new: dict) -> list[str]:
    """Keys whose values differ between two settings dicts."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
