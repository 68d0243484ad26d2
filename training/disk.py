"""Disk faults in words: will a checkpoint fit, and why did a write fail (ENOSPC, EROFS, EFBIG ...)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from torch import nn

from renderer.errors import RedcubeError

ADAM_STATES = 2  # Adam keeps two moments per weight, saved beside the weights
SLACK = 1.25  # the JSON record, RNG state, and the temp file written before the old checkpoint goes


def checkpoint_bytes(model: nn.Module, with_optimizer: bool = True) -> int:
    """About how many bytes a checkpoint of this model (and its Adam state) takes on disk."""
    weights = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    return int(weights * (1 + (ADAM_STATES if with_optimizer else 0)) * SLACK) + 64 * 1024


def check_free_space(out_dir: Path, nbytes: int) -> None:
    """Refuse before training when the run directory's disk cannot take one checkpoint."""
    free = shutil.disk_usage(out_dir).free
    if free < nbytes:
        raise RedcubeError(f"{out_dir} has {_mb(free)} free but a checkpoint needs about {_mb(nbytes)}; "
                           "free some space or pass an --out on another disk.")


def why_write_failed(e: BaseException) -> str:
    """The OS's reason for a failed write, also when safetensors wraps it (`IoError(Os { code: 28, ... })`)."""
    if isinstance(e, OSError) and e.errno:
        return e.strerror or os.strerror(e.errno)
    m = re.search(r"code: (\d+)", str(e))
    return os.strerror(int(m.group(1))) if m else f"{type(e).__name__}: {e}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
