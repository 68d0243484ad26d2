"""Exact resume, the same for every kind: a run stopped half way and resumed ends with the same tensors (weights,
optimizer moments, generator, the kind's own state) as one run straight through."""

from __future__ import annotations

import torch

from training.checkpoint import load_checkpoint


def check_exact_resume(make, tmp_path, steps: int = 4) -> None:
    """make(out_dir, resume) -> an engine with a budget of `steps` steps writing to out_dir."""
    make(tmp_path / "a", False).run()
    make(tmp_path / "b", False).run(until_step=steps // 2)
    assert load_checkpoint(tmp_path / "b" / make.checkpoint_name).step == steps // 2
    again = make(tmp_path / "b", True)
    assert again.step == steps // 2
    again.run()
    ta = load_checkpoint(tmp_path / "a" / make.checkpoint_name).tensors
    tb = load_checkpoint(tmp_path / "b" / make.checkpoint_name).tensors
    assert set(ta) == set(tb)
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
