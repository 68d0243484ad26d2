"""`redcube bench`: the rasterizer group end to end (real renders, JSON out) and an unknown group.

The raster group times eight settings (~20 s) and is marked slow; the posemlp and train groups take
minutes (torch.compile included) and are left to `redcube bench` itself.
Speed itself is not asserted (DESIGN.md: performance claims live in the bench's JSON, not in tests).
"""

from __future__ import annotations

import json

import pytest

from app.bench import RASTER_RES
from app.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")


@pytest.mark.slow  # ~20 s: eight timed settings of at least 1.5 s each
def test_bench_raster_writes_json_with_renders_per_second(tmp_path, capsys):
    out = tmp_path / "deep" / "bench.json"
    code = main(["bench", "--only", "raster", "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(out.read_text())
    assert json.loads(captured.out) == result
    assert {"device", "figures", "ratios", "cores", "torch"} <= set(result)
    figs = result["figures"]
    for res in RASTER_RES:
        assert figs[f"raster_renders_per_s_{res}"] > 0 and figs[f"raster_renders_per_s_{res}_no_aa"] > 0
    # Fewer pixels render faster: 32^2 beats 512^2 by a wide margin on any machine.
    assert figs["raster_renders_per_s_32"] > 2 * figs["raster_renders_per_s_512"]
    assert figs["raster_supersample"] >= 1
    assert result["ratios"] == {}
    assert "bench raster:" in captured.err


def test_bench_unknown_group_is_one_error_line(tmp_path, capsys, error_line):
    out = tmp_path / "bench.json"
    code = main(["bench", "--only", "raster", "--only", "warp-drive", "--json", str(out)])
    captured = capsys.readouterr()
    assert code != 0 and captured.out == ""
    assert "warp-drive" in error_line(captured.err)
    assert not out.exists()


def test_bench_unwritable_json_fails_before_measuring(tmp_path, capsys, one_sentence):
    code = main(["bench", "--only", "raster", "--json", str(tmp_path)])  # a directory, not a file
    captured = capsys.readouterr()
    assert code != 0 and captured.out == ""
    assert "bench raster:" not in captured.err  # nothing was measured
    line = captured.err.strip().removeprefix("redcube: error: ")
    assert str(tmp_path) in line and "writable" in line
    one_sentence(line)


def test_hashgrid_reference_encoding_matches_the_benchmarked_shape():
    """The bench's fallback reference (used when nerfstudio does not import) encodes and back-propagates."""
    import torch

    from app.bench import GROUPS, _PerLevelHashReference

    assert "hashgrid" in GROUPS
    ref = _PerLevelHashReference(n_levels=4, base=4, scale=1.5, log2_t=8, feats=2)
    x = torch.rand(10, 3)
    y = ref(x)
    assert y.shape == (10, 8)
    y.square().sum().backward()
    assert ref.table.grad is not None and ref.table.grad.abs().sum() > 0
