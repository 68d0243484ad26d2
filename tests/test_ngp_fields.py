"""NGP fields of rotated polycubes: a short fit, the flat parameter vector, and the resumable sharded data set."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import torchrun
from renderer.errors import RedcubeError
from renderer.hashgrid import HashGridConfig
from renderer.models.object_field import ObjectField, ObjectFieldConfig, field_layout
from renderer.polycubes import polycube
from renderer.quaternions import random_quaternions
from training.distributed import Dist
from training.ngp_dataset import DatasetConfig, generate, load_fields, read_shard, shard_path
from training.ngp_fields import FitConfig, fit_field, point_batch

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_FIT = FitConfig(steps=15, points=512)


def test_a_short_fit_lowers_the_loss_and_learns_the_occupancy():
    obj, q = polycube(1), random_quaternions(1, seed=4)[0]
    field, rec = fit_field(obj, q, FitConfig(steps=100, points=512, lr=3e-2), seed=0)
    assert rec["last"]["loss"] < 0.5 * rec["first"]["loss"]
    assert rec["last"]["bce"] < rec["first"]["bce"] and rec["last"]["rgb_mse"] < rec["first"]["rgb_mse"]
    held_out = point_batch(obj, q, 4000, 0.0, torch.Generator().manual_seed(99), field.box)  # uniform points never trained on
    with torch.no_grad():
        guess = field.raw(held_out["points"])[:, 0] > 0
    assert (guess == (held_out["occ"] > 0)).float().mean() > 0.9


def test_flat_vector_round_trips_and_wrong_sizes_are_one_sentence(one_sentence):
    torch.manual_seed(1)
    a = ObjectField(ObjectFieldConfig())
    with torch.no_grad():
        a.encoding.params.normal_()
    layout = a.layout()
    assert a.flat().shape == (layout["n_params"],) and layout["hash_params"] == a.encoding.n_params
    assert layout["mlp"] == [[32, 16], [32, 32], [4, 32]] and len(layout["levels"]) == 8
    b = ObjectField(ObjectFieldConfig()).load_flat(a.flat())
    x = torch.rand(64, 3) + torch.tensor([-0.5, 0.5, -0.5])
    assert torch.equal(a.raw(x), b.raw(x))
    with pytest.raises(RedcubeError) as e:
        b.load_flat(torch.zeros(10))
    one_sentence(str(e.value))


def _config(**kw) -> DatasetConfig:
    return DatasetConfig(objects=1, rotations=2, shard_size=1, seed=3, fit=TINY_FIT, **kw)


def test_dataset_two_workers_then_a_partial_shard_resumes(tmp_path, one_sentence):
    config, out = _config(), tmp_path / "ds"
    summary = generate(config, out, workers=2, log=lambda s: None)
    assert summary["shards_made"] == 2 and summary["fields_made"] == 2
    fields, manifest = load_fields(out, field_layout(config.field))
    assert fields["params"].shape == (2, manifest["layout"]["n_params"])
    assert fields["object_ids"].tolist() == [0, 0] and fields["rotation_ids"].tolist() == [0, 1]
    assert torch.allclose(fields["quaternions"].norm(dim=1), torch.ones(2)) and not torch.equal(*fields["quaternions"])
    record = read_shard(shard_path(out, 0))[1]
    assert record["layout"] == manifest["layout"] and record["settings"]["seed"] == 3 and "0" in record["object_seeds"]
    # an interrupted run: shard 1 half written (a copy cut short); shard 0 finished
    whole = shard_path(out, 1).read_bytes()
    shard_path(out, 1).write_bytes(whole[: len(whole) // 2])
    (out / ".shard_00001.safetensors.x1y2.tmp").write_bytes(whole[:100])  # a write killed before its rename
    with pytest.raises(RedcubeError) as e:
        load_fields(out)
    one_sentence(str(e.value))
    before = shard_path(out, 0).stat().st_mtime_ns
    lines = []
    summary = generate(config, out, workers=1, log=lines.append)
    assert summary["shards_made"] == 1 and summary["shards_skipped"] == 1
    assert any("partial" in l and "shard_00001" in l for l in lines)
    one_sentence(next(l for l in lines if "partial" in l))
    assert shard_path(out, 0).stat().st_mtime_ns == before  # the finished shard was skipped, not rewritten
    assert not list(out.glob(".*.tmp"))
    again, _ = load_fields(out)
    assert torch.equal(again["params"], fields["params"])  # seeded fits: the regenerated field is the same field


def test_other_layouts_and_unsplittable_worlds_are_one_sentence(tmp_path, one_sentence):
    out = tmp_path / "ds"
    generate(DatasetConfig(objects=1, rotations=1, fit=FitConfig(steps=2, points=64)), out, log=lambda s: None)
    saved = {p.name: p.read_bytes() for p in out.iterdir()}
    other = ObjectFieldConfig(grid=HashGridConfig(n_levels=6, n_features_per_level=2, log2_hashmap_size=12, base_resolution=8,
                                                  per_level_scale=1.5))
    for call in (lambda: generate(DatasetConfig(objects=1, rotations=1, fit=FitConfig(steps=2, points=64), field=other), out),
                 lambda: load_fields(out, field_layout(other)),
                 lambda: generate(DatasetConfig(objects=1, rotations=1), tmp_path / "x", dist=Dist(rank=0, world=2)),
                 lambda: read_shard(tmp_path / "missing.safetensors")):
        with pytest.raises(RedcubeError) as e:
            call()
        one_sentence(str(e.value))
    assert "layout" in str(pytest.raises(RedcubeError, lambda: load_fields(out, field_layout(other))).value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == saved  # nothing lost


def test_ranks_take_disjoint_shards(tmp_path):
    config, out = DatasetConfig(objects=1, rotations=3, shard_size=1, fit=FitConfig(steps=2, points=64)), tmp_path / "ds"
    summary = generate(config, out, dist=Dist(rank=1, world=2), log=lambda s: None)
    assert summary["shards_made"] == 1 and sorted(p.name for p in out.glob("shard_*")) == ["shard_00001.safetensors"]
    assert not (out / "dataset.json").exists()  # rank 0 writes the manifest
    generate(config, out, dist=Dist(rank=0, world=2), log=lambda s: None)
    assert len(load_fields(out)[0]["field_ids"]) == 3 and json.loads((out / "dataset.json").read_text())["n_shards"] == 3


@pytest.mark.slow
def test_torchrun_ranks_split_the_shards(tmp_path):
    """Two real gloo ranks under torchrun: each makes its own shards, rank 0 reports the totals."""
    out = tmp_path / "ds"
    p = torchrun(["-m", "app.cli", "ngp-dataset", "--objects", "2", "--rotations", "2", "--shard-size", "1",
                  "--fit-steps", "3", "--points", "64", "--out", str(out), "--quiet"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    assert summary["world_size"] == 2 and summary["fields_made"] == 4
    assert [r["shards_made"] for r in summary["ranks"]] == [2, 2]
    assert sorted(load_fields(out)[0]["field_ids"].tolist()) == [0, 1, 2, 3]


def test_fields_of_a_data_set_share_one_start_unless_asked_not_to(tmp_path):
    """Two objects fitted for one tiny step: from the shared start their weights nearly agree; from their own, not."""
    def spread(init_seed, out):
        fit = FitConfig(steps=1, points=64, lr=1e-7)
        generate(DatasetConfig(objects=2, rotations=1, fit=fit, init_seed=init_seed), out, log=lambda s: None)
        params = load_fields(out)[0]["params"]
        return float((params[0] - params[1]).abs().max())
    assert spread(0, tmp_path / "shared") < 1e-4 < 1e-2 < spread(None, tmp_path / "own")
