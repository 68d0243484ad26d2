"""Issue 19's grid arm and the arms' evaluation: the rotation convention of turned feature grids, the alignment solver on
exact grids, a tiny grid net that learns, eval-weightspace's `arms`, and one sentence for data that does not fit."""

from __future__ import annotations

import json

import pytest
import torch

from app.cli import main
from renderer.hashgrid import HashGridConfig
from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.polycubes import polycube, polycube_field
from renderer.quaternions import matrix, multiply, random_quaternions
from training.ngp_dataset import DatasetConfig, generate, load_fields
from training.ngp_fields import FitConfig
from training.weightspace.axes import match, pairwise, prepared, rotation_angle_deg
from training.weightspace.grid import dense_levels, feature_grids, object_grids, probe_points, rotate_points
from training.weightspace.grid_model import GridConfig
from training.weightspace.grid_train import GridTrainConfig, load_grid, train_grid
from training.weightspace.losses import relative_rotation
from training.weightspace.model import WeightSpaceConfig
from training.weightspace.train import WeightSpaceTrainConfig, train_weightspace

pytestmark = pytest.mark.usefixtures("one_thread")
BOX = ObjectField(ObjectFieldConfig()).box


def test_reading_at_turned_points_is_the_object_turned():
    """Step 3's convention: the object of rotation q read at rotate_points(p, R) is the object of rotation R q at p."""
    q = random_quaternions(2, seed=3)
    r = matrix(q[:1])
    obj = polycube(5)
    lo, hi = (torch.tensor(v) for v in BOX)
    p = probe_points(12)[None]
    turned, _ = polycube_field(obj, q[1], lo + rotate_points(p, r)[0] * (hi - lo))
    direct, _ = object_grids([obj], multiply(q[0], q[1])[None], 12, BOX)
    assert float((turned.reshape(direct.shape) != direct).float().mean()) < 0.01  # only clamped corner cells may differ


def test_alignment_recovers_the_rotation_of_exact_grids():
    q = random_quaternions(3, seed=11)
    objects = [polycube(2), polycube(2), polycube(9)]
    occ, rgb = object_grids(objects, q, 16, BOX)
    a, b, c = (prepared(o, col) for o, col in zip(occ, rgb))
    r, same = match(a, b)
    assert rotation_angle_deg(r, matrix(relative_rotation(q[0], q[1]))) < 8
    assert same > match(a, c)[1]  # another object aligns worse
    figures = pairwise([a, b, c], q, torch.tensor([0, 0, 1]))
    assert figures["pairs"] == 2 and figures["median_rotation_error_deg"] < 8


@pytest.fixture(scope="module")
def grid_fields(tmp_path_factory):
    """4 objects x 2 rotations, fitted for 60 steps: enough for the coarse levels to hold the shape."""
    data = tmp_path_factory.mktemp("grid") / "ds"
    generate(DatasetConfig(objects=4, rotations=2, fit=FitConfig(steps=60, points=1024)), data, log=lambda s: None)
    return data


def test_dense_levels_are_read_as_grids(grid_fields):
    fields, manifest = load_fields(grid_fields)
    assert dense_levels(manifest["layout"]) == 2  # 8^3 and 12^3 fit T = 2^12; 18^3 does not
    g = feature_grids(fields["params"][:2], manifest["layout"], 2, 8)
    assert g.shape == (2, 4, 8, 8, 8) and g.std() > 0
    same = feature_grids(fields["params"][:2], manifest["layout"], 2, 8, torch.eye(3).expand(2, 3, 3))
    assert torch.allclose(g, same)


def test_a_tiny_grid_arm_learns_and_reloads(grid_fields, tmp_path):
    config = GridTrainConfig(data=str(grid_fields), steps=24, batch=4, lr=1e-2, heldout=2, eval_every=12,
                             out=str(tmp_path / "grid"), model=GridConfig(res=8, width=8, depth=2))
    records = []
    metrics = train_grid(config, log=lambda r: r["event"] == "eval" and records.append(r))
    assert [r["step"] for r in records] == [12, 24] and records[-1]["bce"] < 0.5
    assert records[-1]["train_rotation_error_deg"] < 30  # chance is 132 deg; measured 9 deg
    assert metrics["split"] == "heldout" and metrics["pairs"] == 4 and 0 <= metrics["median_rotation_error_deg"] <= 180
    model, record = load_grid(tmp_path / "grid")
    assert len(record["data"]["heldout_objects"]) == 2 and model.config.res == 8


@pytest.fixture(scope="module")
def two_arms(grid_fields, tmp_path_factory):
    """A sane-tokens and a grid-axes checkpoint trained briefly on one split of the tiny data set."""
    root = tmp_path_factory.mktemp("arms")
    train_weightspace(WeightSpaceTrainConfig(data=str(grid_fields), steps=2, batch=2, points=16, n_pos=2, heldout=2,
                                             out=str(root / "sane"), model=WeightSpaceConfig(embed=16, latent=4, heads=2, layers=1)))
    train_grid(GridTrainConfig(data=str(grid_fields), steps=2, batch=2, heldout=2, out=str(root / "grid"),
                               model=GridConfig(res=8, width=4, depth=1)))
    return root / "sane", root / "grid"


def test_eval_weightspace_reports_every_arm(grid_fields, two_arms, tmp_path, capsys):
    sane, grid = two_arms
    assert main(["eval-weightspace", str(sane), str(grid), "--data", str(grid_fields), "--res", "16", "--views", "1",
                 "--samples", "16", "--psnr-fields", "1", "--json", str(tmp_path / "e.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["arms"]) == {"sane-tokens", "grid-axes", "feature-axes", "probe-axes"} and not out["arms"]["probe-axes"]["weights_only"]
    best = out["best_weights_only_arm"]
    assert out["arms"]["feature-axes"]["weights_only"] and best != "probe-axes" and out["median_rotation_error_deg"] == out["arms"][best]["median_rotation_error_deg"]
    assert out["retrieval_top1"] == out["arms"][best]["retrieval_top1"] and out["chance_retrieval_top1"] == pytest.approx(1 / 3)
    assert {"chance_rotation_error_deg", "moment_baseline_rotation_error_deg", "decoded_psnr_drop_db"} <= set(out)


def test_data_or_checkpoints_that_do_not_fit_are_one_sentence(grid_fields, two_arms, tmp_path, capsys, error_line):
    sane, grid = two_arms
    other = tmp_path / "other"  # another table size
    generate(DatasetConfig(objects=2, rotations=2, fit=FitConfig(steps=1, points=32),
                           field=ObjectFieldConfig(grid=HashGridConfig(n_levels=8, log2_hashmap_size=13, base_resolution=8,
                                                                       per_level_scale=1.5))), other, log=lambda s: None)
    assert main(["eval-weightspace", str(grid), "--data", str(other)]) == 2
    assert "layout" in error_line(capsys.readouterr().err)
    train_grid(GridTrainConfig(data=str(grid_fields), steps=1, batch=2, heldout=2, seed=5, out=str(tmp_path / "g5"),
                               model=GridConfig(res=8, width=4, depth=1)))
    assert main(["eval-weightspace", str(sane), str(tmp_path / "g5"), "--data", str(grid_fields)]) == 2
    assert "split" in error_line(capsys.readouterr().err)


def test_train_weightspace_grid_arm_command_line(grid_fields, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train-weightspace", "--arm", "grid", "--data", str(grid_fields), "--steps", "2", "--batch", "2",
                 "--heldout", "2", "--grid-res", "8", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 2 and printed["split"] == "heldout" and (out / "curves.png").stat().st_size > 10_000
    assert load_grid(out)[0].config.res == 8
