"""Data-parallel training under torchrun: the process group, and the few collectives the trainer needs.

`redcube train` runs unchanged under `torchrun ... --no-python redcube train ...`: torchrun sets
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR in the environment, `Dist.from_env()` joins the group
(gloo: the trainer trains on the CPU), and the trainer wraps its model in DistributedDataParallel. Without
torchrun every call here is a no-op on a world of one, so the single-process path pays nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import hashlib
import json
import os
import signal
import threading
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist

from renderer.errors import RedcubeError

TIMEOUT = datetime.timedelta(minutes=10)  # a rank that waits this long for its peers gives up
BARRIER_TIMEOUT = datetime.timedelta(seconds=30)  # how long a leaving rank waits for its peers to leave too


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Rank 0 writes logs and checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls) -> "Dist":
        """Join torchrun's process group (gloo) when launched by it (WORLD_SIZE > 1), else a world of one."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=TIMEOUT)
            # A rank that leaves without destroying the group (a refused config raised before training)
            # aborts at exit in gloo's destructor (SIGABRT), and torchrun then kills its peers mid-sentence.
            atexit.register(_destroy_group)
        return cls(int(os.environ["RANK"]), world, "gloo")

    # -- collectives (no-ops on a world of one) ---------------------------------------------------
    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around `model` (gradients averaged over ranks each step), or the model itself."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def all_true(self, flag: bool) -> bool:
        """True on every rank only if `flag` is True on every rank (keeps loop exits and rollbacks in step)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item() > 0.5)

    def gather(self, obj) -> list:
        """Every rank's `obj` (small, JSON-able), in rank order, on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def check_same(self, what: str, value: dict) -> None:
        """All ranks must hold the same `value` (e.g. the training config); one sentence if not."""
        digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
        digests = self.gather(digest)
        if len(set(digests)) > 1:
            odd = [r for r, d in enumerate(digests) if d != digests[0]]
            raise RedcubeError(f"ranks {odd} were started with a different {what} than rank 0; "
                               f"launch every rank with the same redcube train arguments.")

    @contextlib.contextmanager
    def guard(self, safe: Callable[[], str]):
        """Under torchrun, a peer that died (a collective breaks) or torchrun's SIGTERM (sent to every rank's process
        group once one fails) ends this rank with one sentence, not a traceback; `safe()` says what is intact on disk.
        Once stopping, further SIGTERMs are ignored so the sentence and the stream's cleanup are not cut short."""
        if not self.active:
            yield
            return
        main = threading.current_thread() is threading.main_thread()
        stopping = {"now": False}

        def stop_quietly() -> None:  # no SIGTERM from here on: this rank is already on its way out
            stopping["now"] = True
            if main:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)

        def stopped(*_):
            stop_quietly()
            raise RedcubeError(f"rank {self.rank} received SIGTERM (torchrun sends it to every rank once one fails); {safe()}")

        old = signal.signal(signal.SIGTERM, stopped) if main else None
        try:
            yield
        except RuntimeError as e:  # gloo reports a vanished peer as a plain RuntimeError, NCCL as a DistError
            if not (isinstance(e, dist.DistError) or "gloo" in str(e) or "NCCL" in str(e)):
                raise
            stop_quietly()
            raise RedcubeError(f"rank {self.rank} lost contact with its peers (another rank stopped or died); {safe()}") from None
        finally:
            if main and not stopping["now"]:
                signal.signal(signal.SIGTERM, old)

    def close(self) -> None:
        if self.active:
            _destroy_group()


def _destroy_group() -> None:
    """Leave the group together: a rank that destroys it while a peer's last collective is still in flight can abort
    at exit inside gloo (SIGABRT, 1 run in 8 under load), so ranks meet at a barrier first; a peer that is already
    gone (the barrier times out or breaks) does not stop this rank from leaving."""
    if not dist.is_initialized():
        return
    with contextlib.suppress(RuntimeError):
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=BARRIER_TIMEOUT)
        else:
            dist.barrier()
    dist.destroy_process_group()

